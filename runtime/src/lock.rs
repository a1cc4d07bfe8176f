//! The store's owner lock: an exclusive advisory lock (`flock`) on a file in the store's folder, so that a second
//! engine on the same store (another process, or the same one) is refused instead of writing alongside the
//! first. Readers ([`crate::engine::Engine::open_read_only`]) never take it. The kernel drops the lock when the
//! holder exits, even after `kill -9`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The lock file's name in a store's folder.
pub const LOCK_FILE_NAME: &str = "anthill.lock";

/// Held for the engine's lifetime; dropping it releases the lock.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

impl StoreLock {
    /// Takes the lock of the store in `folder`, or fails with [`Error::Locked`] naming the lock file and what the
    /// holder wrote in it (its process id).
    pub fn acquire(folder: &Path) -> Result<StoreLock, Error> {
        let path = folder.join(LOCK_FILE_NAME);
        let io_error = |e: std::io::Error| Error::Store { message: format!("{}: {e}", path.display()) };
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Bounded: the holder writes one short line.
                let _ = (&file).take(256).read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Error::Locked {
                    path: path.display().to_string(),
                    holder: if holder.is_empty() { "an unknown process".into() } else { holder.to_owned() },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_error(e)),
        }
        let stamp = format!("process {}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(stamp.as_bytes()))
            .map_err(io_error)?;
        Ok(StoreLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
