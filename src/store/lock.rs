//! The apply lock (SPEC §8): `flowloom.lock` in the git common dir, held with an OS file
//! lock for the whole run. The kernel drops the lock when its holder dies, so a killed
//! apply can never block the next one forever; the holder's pid, host and start time are
//! written inside only so that a second apply can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use miette::Diagnostic;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LockError {
    #[error("another flowloom apply holds {}: {holder}", path.display())]
    #[diagnostic(
        code(flowloom::locked),
        help(
            "wait for it to finish (the lock is released the moment that process ends, even if it is killed), or wait longer with --lock-timeout"
        )
    )]
    Held { path: PathBuf, holder: String },

    #[error("refusing to use the lock file {}: it is {what}, not a regular file", path.display())]
    #[diagnostic(
        code(flowloom::lock),
        help(
            "flowloom never writes through a symlink or into a special file. Move it away (`rm {}`, if no \
             flowloom runs); flowloom makes a new lock file on its next run",
            path.display()
        )
    )]
    NotRegular { path: PathBuf, what: &'static str },

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

/// The record a holder left when it died without releasing it (a killed apply).
#[derive(Debug, Clone)]
pub struct Stale {
    pub description: String,
    /// When that apply started: what it left behind is no older than this.
    pub started: Option<jiff::Timestamp>,
}

/// The holder text is a few short lines; more is not ours and is not read.
const MAX_HOLDER: u64 = 4096;

pub const FILE_NAME: &str = "flowloom.lock";

impl ApplyLock {
    /// Take the lock, waiting up to `timeout` while another flowloom holds it (`waiting`
    /// hears once who that is). `stale` receives the description of a holder that died
    /// without releasing its record (the OS lock itself was already free).
    pub fn acquire(
        common_dir: &Path,
        timeout: std::time::Duration,
        waiting: impl FnOnce(&str),
        stale: impl FnOnce(&str),
    ) -> Result<ApplyLock, LockError> {
        let path = common_dir.join(FILE_NAME);
        let mut file = open_regular(&path)?;
        wait_for(&mut file, &path, timeout, waiting)?;
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
            .map_err(|source| LockError::Io {
                path: path.clone(),
                source,
            })?;
        // For the Ctrl-C handler: it empties the holder text before the process exits.
        if let Ok(clone) = file.try_clone() {
            *HELD.lock().unwrap_or_else(PoisonError::into_inner) = Some(clone);
        }
        test_pause();
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
        HELD.lock().unwrap_or_else(PoisonError::into_inner).take();
        // An empty file tells the next apply that this run ended cleanly.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Opens the lock file, made if missing, refusing a symlink or anything but a regular file.
fn open_regular(path: &Path) -> Result<std::fs::File, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    let not_regular = |what| LockError::NotRegular {
        path: path.to_owned(),
        what,
    };
    // Look before opening: opening a device or a FIFO can block or have effects.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(not_regular("a symlink")),
        Ok(meta) if !meta.file_type().is_file() => return Err(not_regular(kind(&meta))),
        _ => {}
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => not_regular("a symlink"),
            _ => io(e),
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(not_regular(kind(&meta)));
    }
    // `core.sharedRepository`: git's mode, as for a file git makes in its folder.
    crate::fsutil::shared::adjust(path);
    Ok(file)
}

/// Takes the OS lock on the file, waiting up to `timeout` while another flowloom holds it;
/// `waiting` hears once who that is.
fn wait_for(
    file: &mut std::fs::File,
    path: &Path,
    timeout: std::time::Duration,
    waiting: impl FnOnce(&str),
) -> Result<(), LockError> {
    let started = std::time::Instant::now();
    let mut waiting = Some(waiting);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {
                // The holder writes its name right after it takes the lock: give it a
                // moment before saying "holder unknown".
                let holder = read_holder(file);
                let elapsed = started.elapsed();
                if elapsed >= timeout {
                    return Err(LockError::Held {
                        path: path.to_owned(),
                        holder: describe(&holder),
                    });
                }
                if (!holder.trim().is_empty() || elapsed.as_millis() > 500)
                    && let Some(say) = waiting.take()
                {
                    say(&describe(&holder));
                }
                std::thread::sleep(std::time::Duration::from_millis(50).min(timeout - elapsed));
            }
            Err(TryLockError::Error(e)) => {
                return Err(LockError::Io {
                    path: path.to_owned(),
                    source: e,
                });
            }
        }
    }
}

fn read_holder(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let _ = file
        .rewind()
        .and_then(|()| Read::by_ref(file).take(MAX_HOLDER).read_to_end(&mut bytes));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

// ---- Ctrl-C (SPEC §4: the lock is released on Ctrl-C) ----
//
// SIGINT, SIGTERM and SIGHUP run `on_signal` on a thread of their own. Outside a critical
// phase nothing is half-written, so it empties the held lock's holder text (the next apply
// then sees a clean end, not a dead apply to clean up after) and exits 130 at once. Inside
// one (`set_critical(true)`: apply's executor while it writes, import while it writes the
// manifest and the record) it only raises a flag that the writer checks between steps
// (`interrupted()`); a second Ctrl-C exits at once and leaves the holder text, so that the
// next apply cleans up after this one as after a kill.

/// A duplicate of the held lock file, for the signal handler.
static HELD: Mutex<Option<File>> = Mutex::new(None);
/// Whether something is being written; the handler waits on this mutex, so a phase never
/// starts while the handler is deciding to exit.
static CRITICAL: Mutex<bool> = Mutex::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The exit code of a process ended by Ctrl-C, as shells report it.
pub const INTERRUPTED_EXIT: i32 = 130;

/// Install the Ctrl-C/SIGTERM handler; once per process, from `commands::main`.
pub fn install_interrupt_handler() {
    // Fails only when a handler is already installed: the first one stays.
    let _ = ctrlc::set_handler(on_signal);
}

#[allow(clippy::print_stderr)]
fn on_signal() {
    let critical = CRITICAL.lock().unwrap_or_else(PoisonError::into_inner);
    if *critical {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: stopping now; the next apply finishes what this one left half-done");
            std::process::exit(INTERRUPTED_EXIT);
        }
        eprintln!("\ninterrupted: stopping after the current step (Ctrl-C again to stop at once)");
        return;
    }
    release_held();
    eprintln!();
    // The critical mutex stays held: no phase can start while the process exits.
    std::process::exit(INTERRUPTED_EXIT);
}

/// Empty the held lock's holder text: this run ends cleanly.
fn release_held() {
    if let Some(file) = HELD.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
        let _ = file.set_len(0);
        let _ = file.sync_all();
    }
}

/// Mark the start (`true`) or end (`false`) of a phase that writes, during which Ctrl-C
/// must not end the process at once.
pub fn set_critical(critical: bool) {
    *CRITICAL.lock().unwrap_or_else(PoisonError::into_inner) = critical;
}

/// The flag Ctrl-C raises during a critical phase, for long steps that can stop part-way
/// (a checkout), leaving what the next apply recognises and redoes.
pub fn interrupt_flag() -> &'static AtomicBool {
    &INTERRUPTED
}

/// Whether Ctrl-C (or SIGTERM) arrived during a critical phase: the writer should stop at
/// the next step boundary, leave the phase and call [`exit_if_interrupted`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Outside a critical phase: when Ctrl-C arrived meanwhile, release the lock and exit 130.
pub fn exit_if_interrupted() {
    if interrupted() && !*CRITICAL.lock().unwrap_or_else(PoisonError::into_inner) {
        release_held();
        std::process::exit(INTERRUPTED_EXIT);
    }
}

/// A critical phase for as long as the guard lives.
#[derive(Debug)]
pub struct Critical(());

impl Critical {
    pub fn enter() -> Critical {
        set_critical(true);
        Critical(())
    }
}

impl Drop for Critical {
    fn drop(&mut self) {
        set_critical(false);
    }
}

/// Debug builds only (the tests' binary): `FLOWLOOM_TEST_PAUSE=lock` waits, holding the lock,
/// as apply does at its `[y/N]` prompt, so that a test can send it Ctrl-C there.
#[allow(clippy::print_stderr)]
fn test_pause() {
    if cfg!(debug_assertions) && std::env::var("FLOWLOOM_TEST_PAUSE").is_ok_and(|v| v == "lock") {
        eprintln!("paused holding the lock");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
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
