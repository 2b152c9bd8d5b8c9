//! The apply lock (SPEC §8): `flowloom.lock` in the git common dir, held with an OS file
//! lock for the whole run. The kernel drops the lock when its holder dies, so a killed
//! apply can never block the next one forever; the holder's pid, host and start time are
//! written inside only so that a second apply can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use miette::Diagnostic;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LockError {
    #[error("another flowloom apply holds {}: {holder}", path.display())]
    #[diagnostic(
        code(flowloom::locked),
        help("wait for it to finish; the lock is released the moment that process ends, even if it is killed")
    )]
    Held { path: PathBuf, holder: String },

    #[error("could not lock {}: {source}", path.display())]
    #[diagnostic(code(flowloom::lock))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held until dropped.
#[derive(Debug)]
pub struct ApplyLock {
    file: File,
    stale: Option<Stale>,
}

/// The record a holder left when it died without releasing the lock (a killed apply).
#[derive(Debug, Clone)]
pub struct Stale {
    pub description: String,
    /// When that apply started: what it left behind is no older than this.
    pub started: Option<jiff::Timestamp>,
}

pub const FILE_NAME: &str = "flowloom.lock";

impl ApplyLock {
    /// Take the lock or fail at once. `stale` receives the description of a holder that
    /// died without releasing its record (the OS lock itself was already free).
    pub fn acquire(common_dir: &Path, stale: impl FnOnce(&str)) -> Result<ApplyLock, LockError> {
        let path = common_dir.join(FILE_NAME);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    path: path.clone(),
                    holder: describe(&read_holder(&mut file)),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let previous = read_holder(&mut file);
        let stale_holder = (!previous.trim().is_empty()).then(|| Stale {
            description: describe(&previous),
            started: previous
                .lines()
                .find_map(|l| l.trim().strip_prefix("started "))
                .and_then(|t| t.parse().ok()),
        });
        if let Some(s) = &stale_holder {
            stale(&s.description);
        }
        // To the nanosecond: a later apply cleans up only what is no older than this.
        let info = format!(
            "pid {}\nhost {}\nstarted {}\n",
            std::process::id(),
            hostname(),
            jiff::Timestamp::now()
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(info.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        Ok(ApplyLock {
            file,
            stale: stale_holder,
        })
    }

    /// The holder this lock was taken over from, if it had died without releasing it.
    pub fn stale(&self) -> Option<&Stale> {
        self.stale.as_ref()
    }
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        // An empty file tells the next apply that this run ended cleanly.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    text
}

fn describe(holder: &str) -> String {
    let fields: Vec<&str> = holder.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if fields.is_empty() {
        "holder unknown".to_owned()
    } else {
        fields.join(", ")
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".to_owned())
}
