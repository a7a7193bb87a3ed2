//! Private, durable files for the runtime's state (the session token in the file store, the
//! software device key): directories 0700 and files 0600 on Unix, contents written to a
//! unique temporary file, synced, and then moved into place, the directory synced after.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Temporary files start with this; nothing else the runtime stores does.
pub(crate) const TEMP_PREFIX: &str = ".keyway-tmp-";

/// Temporaries older than this are left over from a crash, not being written.
pub(crate) const STALE_TEMP: Duration = Duration::from_secs(60);

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `err` with `what` and the path in front, so a failure names the file it is about.
pub(crate) fn context(err: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
}

/// Creates `dir` (and missing parents, 0700 on Unix) if needed.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| context(e, "create directory", dir))
}

/// Creates `dir` like [`create_dir`] and makes it 0700 on Unix even when it already existed
/// with a looser mode.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    create_dir(dir)?;
    restrict(dir, 0o700).map_err(|e| context(e, "restrict directory", dir))
}

/// Removes group and other permissions from `path` when it has any (Unix; nothing elsewhere).
#[cfg_attr(not(unix), allow(unused_variables))]
pub(crate) fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::symlink_metadata(path)?;
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

/// Syncs a directory, so that a rename or link in it survives a crash (Unix; elsewhere the
/// file system offers no such call and this does nothing).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| context(e, "sync directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The directory a file path lives in (`.` for a bare file name).
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to a new temporary file in `dir` (unique to this process and write, 0600),
/// synced to disk. The caller moves it into place or removes it.
fn write_temp(dir: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = match opts.open(&tmp) {
            Ok(f) => f,
            // Left by an earlier process with this id: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(context(e, "create", &tmp)),
        };
        if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
            drop(file);
            let _ = fs::remove_file(&tmp);
            return Err(context(e, "write", &tmp));
        }
        return Ok(tmp);
    }
}

/// Replaces `path` with `bytes` atomically and durably: readers see the old contents or the
/// new, never a mixture, also with concurrent writers, and after a crash one of the two.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    let tmp = write_temp(dir, bytes)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(context(e, "replace", path));
    }
    sync_dir(dir)
}

/// Creates `path` with `bytes` unless it exists, durably and never partially written.
/// `Ok(false)`: another writer created it first (its contents are left alone).
pub(crate) fn create_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let dir = parent(path);
    let tmp = write_temp(dir, bytes)?;
    // A hard link, unlike a rename, fails when the target exists.
    let created = match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        // No hard links here (Android's SELinux refuses them in app storage; FAT, some
        // network mounts): rename if nothing is there yet. Two processes creating the same
        // file at the same instant could then both succeed, the later one's contents kept:
        // one app process per data directory makes that moot.
        Err(_) if fs::symlink_metadata(path).is_ok() => Ok(false),
        Err(_) => fs::rename(&tmp, path).map(|()| true),
    };
    let _ = fs::remove_file(&tmp);
    match created {
        Ok(true) => sync_dir(dir).map(|()| true),
        Ok(false) => Ok(false),
        Err(e) => Err(context(e, "create", path)),
    }
}

/// Removes temporaries in `dir` older than `age` (left by a crash mid-write). Best effort.
pub(crate) fn sweep_temps(dir: &Path, age: Duration) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d >= age));
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The permission bits of `path` (Unix).
    #[cfg(unix)]
    pub(crate) fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Runs the ignored test `name` of this test binary in a child process under umask 022
    /// (the process's own umask cannot be set here: no unsafe code) and asserts it passed.
    #[cfg(unix)]
    pub(crate) fn run_under_umask_022(name: &str) {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"umask 022 && exec "$0" "$@""#)
            .arg(exe)
            .args([name, "--exact", "--ignored", "--test-threads", "1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{name} under umask 022: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn replace_and_create_new_leave_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(create_new(&path, b"one").unwrap());
        assert!(!create_new(&path, b"two").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"one");
        replace(&path, b"three").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f"]);
    }

    #[test]
    fn sweep_removes_only_old_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(format!("{TEMP_PREFIX}1-1"));
        let fresh = dir.path().join(format!("{TEMP_PREFIX}1-2"));
        let other = dir.path().join("session");
        for p in [&old, &fresh, &other] {
            fs::write(p, b"x").unwrap();
        }
        let past = SystemTime::now() - Duration::from_secs(120);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(past)
            .unwrap();
        File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(past)
            .unwrap();
        sweep_temps(dir.path(), STALE_TEMP);
        assert!(!old.exists());
        assert!(fresh.exists() && other.exists());
    }
}
