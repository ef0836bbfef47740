//! Records the git commit the binary is built from, for `aqiqat --version`: an evidence record
//! names the model that decided, and the commit names the code around it. A build outside a
//! git checkout (a source tarball) says "unknown" rather than failing.
use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=AQIQAT_GIT_COMMIT={commit}");
    // A new commit moves HEAD or the ref it points at; either reruns this script. Only files
    // that exist are named: cargo takes a missing one as changed on every build, which rebuilt
    // the binary each time in a checkout without packed-refs. The ref is watched through its
    // folder (cargo scans a folder's files), which also sees it written loose after being
    // packed, and through packed-refs.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = std::path::PathBuf::from(dir);
        let mut watched = vec![dir.join("HEAD"), dir.join("packed-refs")];
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.extend(
                dir.join(reference)
                    .parent()
                    .map(std::path::Path::to_path_buf),
            );
        }
        for path in watched.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-env-changed=AQIQAT_GIT_COMMIT");
}
