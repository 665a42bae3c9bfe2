//! An exclusive lock on a file (`flock`), so that processes asking for the same cache at
//! once (the ranks of a distributed run on one machine) build it once: the first builds,
//! the others wait and then find it built.

use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::error::{Error, Result};

/// Holds an exclusive `flock` on a lock file until dropped.
///
/// The lock belongs to the open file, not to the process, so two threads of one process
/// that each take it exclude each other too. It is released when the process dies, so a
/// build that was killed never leaves the cache locked. The lock file itself is left in
/// place: removing it while another process waits on it would let a third lock a new file
/// of the same name at the same time.
#[derive(Debug)]
pub struct CacheLock {
    // Closing the file releases the lock.
    _file: File,
}

impl CacheLock {
    /// Blocks until the exclusive lock on `path` (created if missing) is held.
    pub fn exclusive(path: &Path) -> Result<CacheLock> {
        let file = open_lock_file(path)?;
        loop {
            // SAFETY: flock on a file descriptor that `file` keeps open.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(CacheLock { _file: file });
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::io(path, error));
            }
        }
    }

    /// The lock if no one else holds it, else `None`, without waiting.
    pub fn try_exclusive(path: &Path) -> Result<Option<CacheLock>> {
        let file = open_lock_file(path)?;
        // SAFETY: as above.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(CacheLock { _file: file }));
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EWOULDBLOCK) => Ok(None),
            _ => Err(Error::io(path, error)),
        }
    }
}

/// The lock file at `path`, created if missing, never truncated.
fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = CacheLock::exclusive(&path).unwrap();
        assert!(CacheLock::try_exclusive(&path).unwrap().is_none());
        drop(held);
        assert!(CacheLock::try_exclusive(&path).unwrap().is_some());
    }
}
