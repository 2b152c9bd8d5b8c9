//! What flowloom keeps per user on this machine, outside any repository (SPEC §10): which
//! `setup` lists this machine trusts (the user's config folder) and which TCP ports sessions
//! hold (the user's state folder). Both are small JSON files, edited under a file lock and
//! replaced atomically, so that flowloom processes of every repository can share them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use etcetera::BaseStrategy;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::RepoError;

/// The largest file of this kind flowloom reads.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// `$XDG_CONFIG_HOME/flowloom` (else `~/.config/flowloom`).
pub fn config_dir() -> Result<PathBuf, RepoError> {
    let base = etcetera::choose_base_strategy().map_err(|e| no_home(&e))?;
    Ok(base.config_dir().join("flowloom"))
}

/// `$XDG_STATE_HOME/flowloom` (else `~/.local/state/flowloom`).
pub fn state_dir() -> Result<PathBuf, RepoError> {
    let base = etcetera::choose_base_strategy().map_err(|e| no_home(&e))?;
    Ok(base.state_dir().unwrap_or_else(|| base.data_dir()).join("flowloom"))
}

fn no_home(e: &dyn std::fmt::Display) -> RepoError {
    RepoError::message(format!(
        "cannot find your home folder ({e}): set HOME, or XDG_CONFIG_HOME and XDG_STATE_HOME"
    ))
}

/// An exclusive lock on `<file>.lock`, held until dropped. The holders are flowloom
/// processes that read and write one small file, so the wait is short; it gives up after
/// [`LOCK_WAIT`] or on Ctrl-C, and a lock file that is not a regular file is refused
/// (a FIFO there must not hang flowloom).
struct FileLock {
    _file: File,
}

/// How long to wait for another flowloom's hold on the trust or port file.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl FileLock {
    fn acquire(target: &Path) -> Result<FileLock, RepoError> {
        let dir = target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| RepoError::io("create", dir, e))?;
        let path = target.with_extension("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| RepoError::io("open", &path, e))?;
        let meta = file.metadata().map_err(|e| RepoError::io("inspect", &path, e))?;
        if !meta.is_file() {
            return Err(RepoError::message(format!(
                "{} is not a regular file: move it away (flowloom makes it again)",
                path.display()
            )));
        }
        let started = std::time::Instant::now();
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(FileLock { _file: file }),
                Err(rustix::io::Errno::WOULDBLOCK) => {}
                Err(e) => return Err(RepoError::io("lock", &path, e.into())),
            }
            if crate::store::lock::interrupted() {
                return Err(RepoError::message(format!(
                    "interrupted while waiting for {}",
                    path.display()
                )));
            }
            if started.elapsed() >= LOCK_WAIT {
                return Err(RepoError::message(format!(
                    "another process has held {} for {} s: if no flowloom is running, find the holder with `fuser {}`",
                    path.display(),
                    LOCK_WAIT.as_secs(),
                    path.display()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

use std::os::unix::fs::OpenOptionsExt;

/// Reads `path` (missing: the default), lets `edit` change it, and writes it back when it
/// changed, all under the file's lock.
fn edit<T, R>(path: &Path, edit: impl FnOnce(&mut T) -> R) -> Result<R, RepoError>
where
    T: Default + Serialize + for<'de> Deserialize<'de> + PartialEq + Clone,
{
    let _lock = FileLock::acquire(path)?;
    let mut value: T = read(path)?;
    let before = value.clone();
    let result = edit(&mut value);
    if value != before {
        let mut text = serde_json::to_string_pretty(&value).map_err(|e| RepoError::message(e.to_string()))?;
        text.push('\n');
        crate::fsutil::write_atomic(path, text.as_bytes())?;
    }
    Ok(result)
}

fn read<T: Default + for<'de> Deserialize<'de>>(path: &Path) -> Result<T, RepoError> {
    match crate::fsutil::read_regular(path, MAX_BYTES) {
        Ok(None) => Ok(T::default()),
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).map_err(|e| {
            RepoError::message(format!(
                "{} is not what flowloom wrote ({e}): fix it (moving it away forgets which ports and trust every repository's sessions hold)",
                path.display()
            ))
        }),
        Err(e) => Err(RepoError::message(format!("cannot read {}: {e}", path.display()))),
    }
}

/// How a repository is named in these files: its git common dir, resolved.
pub fn repository_key(common_dir: &Path) -> String {
    std::fs::canonicalize(common_dir)
        .unwrap_or_else(|_| common_dir.to_owned())
        .to_string_lossy()
        .into_owned()
}

// ---------------------------------------------------------------------------------------
// Trust

/// The trusted `setup` lists, by repository.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct TrustFile {
    #[serde(default)]
    repositories: BTreeMap<String, BTreeSet<String>>,
}

/// What trusting a session's `setup` covers: the commands, and the `env` they run with
/// (a changed variable, `PATH` say, changes what the same commands do).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SetupScript {
    pub commands: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The `teardown` commands (SPEC §11.3): one trust covers both lists. Left out of the
    /// hash when empty, so a trust given before teardown existed still holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teardown: Vec<String>,
}

/// The hash that stands for one exact script: SHA-256 of its JSON.
pub fn setup_hash(script: &SetupScript) -> String {
    let json = serde_json::to_vec(script).unwrap_or_default();
    let digest = sha2::Sha256::digest(&json);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    format!("sha256:{hex}")
}

pub fn trust_file() -> Result<PathBuf, RepoError> {
    Ok(config_dir()?.join("trusted.json"))
}

/// The setup lists this machine trusts for the repository `key`. A trust file that someone
/// else owns or may write is not believed: whoever can write it decides what runs.
pub fn trusted(key: &str) -> Result<BTreeSet<String>, RepoError> {
    let path = trust_file()?;
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::MetadataExt;
        let mine = meta.uid() == rustix::process::geteuid().as_raw();
        if !mine || meta.mode() & 0o022 != 0 {
            return Err(RepoError::message(format!(
                "{} is {}: flowloom does not trust a trust file others can change; `chmod go-w` it (and make it yours), or remove it",
                path.display(),
                if mine { "writable by others" } else { "not yours" }
            )));
        }
    }
    let file: TrustFile = read(&path)?;
    Ok(file.repositories.get(key).cloned().unwrap_or_default())
}

/// Records that this machine trusts these lists for the repository `key`.
pub fn trust(key: &str, hashes: &BTreeSet<String>) -> Result<(), RepoError> {
    edit(&trust_file()?, |file: &mut TrustFile| {
        file.repositories
            .entry(key.to_owned())
            .or_default()
            .extend(hashes.iter().cloned());
    })
}

// ---------------------------------------------------------------------------------------
// Ports

/// The first and last port handed out: below Linux's ephemeral range (32768-60999), so an
/// outgoing connection never takes a session's port, and above the usual development ports.
pub const PORT_RANGE: std::ops::RangeInclusive<u16> = 20000..=29999;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct PortFile {
    /// Port number → holder.
    #[serde(default)]
    ports: BTreeMap<u16, PortHolder>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortHolder {
    pub repository: String,
    pub session: String,
    pub name: String,
}

pub fn port_file() -> Result<PathBuf, RepoError> {
    Ok(state_dir()?.join("ports.json"))
}

/// Ports for `names` of session `session` in repository `key`: the ones it already holds,
/// new ones for the rest, each unique in the registry and free to bind when handed out.
/// Entries of repositories that no longer exist are dropped on the way.
/// `held`: ports known to be taken that the registry may not list (this repository's
/// sessions' `metadata.json`).
pub fn allocate_ports(
    key: &str,
    session: &str,
    names: &[String],
    held: &BTreeSet<u16>,
) -> Result<BTreeMap<String, u16>, RepoError> {
    edit(&port_file()?, |file: &mut PortFile| {
        file.ports.retain(|_, h| Path::new(&h.repository).exists());
        // All or nothing (SPEC §11.3): the new ports go into a copy, which replaces the
        // registry only once every name has one; the file is written once, atomically, so
        // a kill or Ctrl-C leaves either all of them or none.
        let mut taken = file.ports.clone();
        let given = take_ports(&mut taken, key, session, names, held)?;
        file.ports = taken;
        Ok(given)
    })?
}

/// [`allocate_ports`] on the registry's ports `taken`, which it extends.
fn take_ports(
    taken: &mut BTreeMap<u16, PortHolder>,
    key: &str,
    session: &str,
    names: &[String],
    held: &BTreeSet<u16>,
) -> Result<BTreeMap<String, u16>, RepoError> {
    let most = crate::names::MAX_PORTS_PER_REPOSITORY;
    let holds = taken.values().filter(|h| h.repository == key).count();
    let new = names
        .iter()
        .filter(|n| {
            !taken
                .values()
                .any(|h| h.repository == key && h.session == session && h.name == **n)
        })
        .count();
    if holds + new > most {
        return Err(RepoError::message(format!(
            "session `{session}` needs {new} more ports, and this repository's sessions hold {holds}: no repository holds more than {most} (SPEC §11.3); remove sessions or `ports` you no longer need"
        )));
    }
    let mut given = BTreeMap::new();
    for name in names {
        let own = taken
            .iter()
            .find(|(_, h)| h.repository == key && h.session == session && h.name == *name)
            .map(|(p, _)| *p);
        let Some(port) = own.or_else(|| free_port(taken, held, &format!("{key}\0{session}\0{name}"))) else {
            return Err(RepoError::message(format!(
                "no free port left in {}-{} for session `{session}`: remove sessions you no longer need",
                PORT_RANGE.start(),
                PORT_RANGE.end()
            )));
        };
        taken.insert(
            port,
            PortHolder {
                repository: key.to_owned(),
                session: session.to_owned(),
                name: name.clone(),
            },
        );
        given.insert(name.clone(), port);
    }
    Ok(given)
}

/// Gives back every port of `session` in repository `key`.
pub fn release_ports(key: &str, session: &str) -> Result<(), RepoError> {
    let path = port_file()?;
    if !path.exists() {
        return Ok(());
    }
    edit(&path, |file: &mut PortFile| {
        file.ports.retain(|_, h| !(h.repository == key && h.session == session));
    })
}

/// A port nobody in the registry holds and nothing on this machine listens on, starting
/// from a place that depends on `seed` (so that sessions keep to their own part of the
/// range) and walking on from there.
fn free_port(taken: &BTreeMap<u16, PortHolder>, held: &BTreeSet<u16>, seed: &str) -> Option<u16> {
    let (low, high) = (*PORT_RANGE.start(), *PORT_RANGE.end());
    let span = u32::from(high - low) + 1;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let start = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % span;
    (0..span)
        .map(|i| low + u16::try_from((start + i) % span).unwrap_or(0))
        .find(|p| !taken.contains_key(p) && !held.contains(p) && free_to_bind(*p))
}

/// Whether a listener could bind `port` now, on loopback and on every address, IPv4 and
/// IPv6 (development servers often listen on `[::1]` only). A machine without IPv6 cannot
/// have the port taken there: only "in use" counts against it.
pub fn free_to_bind(port: u16) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
    let v4 = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok();
    let v6_free = |addr: Ipv6Addr| match TcpListener::bind((addr, port)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrInUse,
    };
    v4 && v6_free(Ipv6Addr::LOCALHOST) && v6_free(Ipv6Addr::UNSPECIFIED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(commands: &[&str], env: &[(&str, &str)]) -> SetupScript {
        SetupScript {
            commands: commands.iter().map(|c| (*c).to_owned()).collect(),
            env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            teardown: Vec::new(),
        }
    }

    #[test]
    fn setup_hash_tells_scripts_apart() {
        let a = setup_hash(&script(&["npm ci"], &[]));
        assert_eq!(a, setup_hash(&script(&["npm ci"], &[])));
        assert_ne!(a, setup_hash(&script(&["npm ci "], &[])));
        // No ambiguity between one command and two.
        assert_ne!(
            setup_hash(&script(&["a\",\"b"], &[])),
            setup_hash(&script(&["a", "b"], &[]))
        );
        // The same commands with another PATH are another script.
        assert_ne!(a, setup_hash(&script(&["npm ci"], &[("PATH", "./bin")])));
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64);
    }

    #[test]
    fn free_port_skips_taken_and_bound_ports() {
        let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).expect("test setup");
        let busy = listener.local_addr().expect("test setup").port();
        assert!(!free_to_bind(busy));
        // A server on IPv6 loopback only (where the machine has IPv6).
        if let Ok(v6) = std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)) {
            let port = v6.local_addr().expect("test setup").port();
            assert!(!free_to_bind(port), "[::1]:{port} is in use");
        }
        let mut taken = BTreeMap::new();
        let first = free_port(&taken, &BTreeSet::new(), "x").expect("test setup");
        assert!(PORT_RANGE.contains(&first));
        taken.insert(
            first,
            PortHolder {
                repository: "r".into(),
                session: "s".into(),
                name: "n".into(),
            },
        );
        let second = free_port(&taken, &BTreeSet::new(), "x").expect("test setup");
        assert_ne!(first, second);
        // A port a session of this repository holds by its metadata, though the registry
        // lost it, is not handed out either.
        let third = free_port(&BTreeMap::new(), &BTreeSet::from([first]), "x").expect("test setup");
        assert_ne!(third, first);
    }
}
