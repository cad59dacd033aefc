//! One writer per database file: the store holds an exclusive lock on `<database>.lock` for as
//! long as its writer runs, so a second `nexero serve`, or `nexero reprocess` while the appliance
//! runs, stops with a clear message instead of opening a second writer.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::StoreError;

/// Held while the writer runs; dropping it releases the lock.
pub struct FileLock {
    _file: File,
}

pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock, or says which process holds it (where the OS lets us read that).
pub fn acquire(database: &Path) -> Result<FileLock, StoreError> {
    let path = lock_path(database);
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| {
        StoreError::Unavailable(format!("cannot open the lock file {}: {e}. Fix: make the data directory writable", path.display()))
    })?;
    match file.try_lock() {
        Ok(()) => {
            // Name this process in the file for the next one that finds it locked.
            let _ = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| write!(file, "{}", std::process::id()));
            Ok(FileLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let holder = match File::open(&path).and_then(|mut f| f.read_to_string(&mut holder)) {
                Ok(_) if !holder.trim().is_empty() => format!("process {}", holder.trim()),
                _ => "another process".to_owned(),
            };
            Err(StoreError::Locked(format!(
                "the database {} is in use by another Nexero ({holder}). Fix: stop it first (`nexero service stop`, \
                 or Ctrl-C where it runs), or use another --data-dir",
                database.display()
            )))
        }
        Err(TryLockError::Error(e)) => {
            Err(StoreError::Unavailable(format!("cannot lock {}: {e}", path.display())))
        }
    }
}
