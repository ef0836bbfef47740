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
    // A new commit moves HEAD or the ref it points at; either reruns this script.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{reference}");
        }
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
    println!("cargo:rerun-if-env-changed=AQIQAT_GIT_COMMIT");
}
