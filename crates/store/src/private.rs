//! Files only their owner may read: keys and other secrets under the data directory.

use std::fs;
use std::io;
use std::path::Path;

/// Creates `dir` (and its parents) with mode 0700 where it does not exist.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates `path` exclusively, owner-only (0600): fails if it exists.
pub fn create_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// The permission bits of `path` when others than its owner may read or write it.
pub fn open_to_others(path: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Ok(Some(mode & 0o777));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(None)
}

/// Writes `bytes` to a new owner-only file at `path`, atomically and exclusively: when another
/// process wrote it first, theirs stays and `Ok(false)` says so.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("secret");
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    {
        let mut f = create_file(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    // A hard link fails if the name exists: two processes cannot both win.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}
