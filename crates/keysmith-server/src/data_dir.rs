//! What a SQLite database needs before the server serves from it: a directory and
//! files this process can write, and no other server using them.
//!
//! Two servers on one SQLite file would each keep their own verification cache, so a
//! key deleted through one would keep working on the other until its cache entry aged
//! out. So the first server takes an exclusive OS lock (`flock`) on `<database>.lock`
//! and holds it until it exits; the kernel releases it when the process dies, even by
//! `kill -9`, so a crash never leaves a stale lock. The lock file names the holder's
//! process ID and address, so the second server can say who has it. Several replicas
//! need PostgreSQL, whose fan-out keeps their caches in step.
//!
//! The admin commands (`keysmith admin …`) do not take the lock: they write through the
//! database itself, which SQLite serializes, and touch nothing a server caches.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file of the database at `db`: `<db>.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// An exclusive lock on a SQLite database, held while this value lives.
#[derive(Debug)]
pub struct DatabaseLock {
    file: File,
    db: PathBuf,
}

impl DatabaseLock {
    /// Takes the lock of `db`, or says which server holds it. `address` is where this
    /// server will listen, recorded for the message another server would give.
    pub fn acquire(db: &Path, address: &str) -> Result<Self, String> {
        let path = lock_path(db);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(held_by_another(db, &holder));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        let mut lock = Self {
            file,
            db: db.to_owned(),
        };
        lock.record_address(address);
        Ok(lock)
    }

    /// Records where this server listens, once it knows (a port of 0 is chosen by the
    /// system when binding).
    pub fn record_address(&mut self, address: &str) {
        let text = format!("pid={}\naddress={address}\n", std::process::id());
        let written = self
            .file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)))
            .and_then(|_| self.file.write_all(text.as_bytes()));
        if let Err(e) = written {
            // The lock holds either way; only another server's message is poorer.
            tracing::warn!(path = %lock_path(&self.db).display(), error.detail = %e, "could not record this server in the lock file");
        }
    }
}

fn held_by_another(db: &Path, holder: &str) -> String {
    let field = |name: &str| {
        holder
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let who = match (field("pid"), field("address")) {
        (Some(pid), Some(address)) => format!("another Keysmith server (process {pid}, listening on {address})"),
        (Some(pid), None) => format!("another Keysmith server (process {pid})"),
        _ => "another Keysmith server".to_owned(),
    };
    format!(
        "{who} is already using the database {}. A SQLite database belongs to one server process: \
         a second one would keep accepting keys the first has deleted. Stop the other server, or give \
         this one its own --data-dir; to run several replicas, use PostgreSQL (--database-url postgres://…)",
        db.display()
    )
}

/// Checks that this process can write the directory of `db` (SQLite creates its
/// journal files there) and the database files that exist, naming the file and its
/// permissions when it cannot.
pub fn check_writable(db: &Path) -> Result<(), String> {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "the directory of the database {} does not exist; create it, or choose another with --data-dir",
            db.display()
        ));
    }
    let probe = dir.join(format!(".keysmith-write-check-{}", std::process::id()));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            return Err(format!(
                "the data directory {} is not writable by this process{}: {}; SQLite writes its journal there, \
                 so make the directory writable by the user Keysmith runs as",
                dir.display(),
                describe(&dir),
                os_error(&e)
            ));
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        if !file.exists() {
            continue;
        }
        if let Err(e) = OpenOptions::new().read(true).write(true).open(&file) {
            return Err(format!(
                "the database file {} is not writable by this process{}: {}; make it writable by the user \
                 Keysmith runs as (chmod u+rw, or chown), or run Keysmith as its owner",
                file.display(),
                describe(&file),
                os_error(&e)
            ));
        }
    }
    Ok(())
}

/// An I/O error without Rust's doubled wording.
fn os_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::ReadOnlyFilesystem => "the file system is mounted read-only".into(),
        _ => e.to_string(),
    }
}

/// ` (owner uid 1000, mode 0444)`, where the platform tells.
fn describe(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata(path) {
            return format!(" (owner uid {}, mode {:04o})", meta.uid(), meta.mode() & 0o7777);
        }
    }
    let _ = path;
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("keysmith.db");
        let mut first = DatabaseLock::acquire(&db, "http://127.0.0.1:0").unwrap();
        first.record_address("http://127.0.0.1:8080");
        let err = DatabaseLock::acquire(&db, "http://127.0.0.1:8081").unwrap_err();
        assert!(err.contains("listening on http://127.0.0.1:8080"), "{err}");
        assert!(err.contains(&format!("process {}", std::process::id())), "{err}");
        assert!(err.contains("PostgreSQL"), "{err}");
        drop(first);
        DatabaseLock::acquire(&db, "http://127.0.0.1:8081").unwrap();
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_writable(&dir.path().join("nope/keysmith.db")).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        check_writable(&dir.path().join("keysmith.db")).unwrap();
    }
}
