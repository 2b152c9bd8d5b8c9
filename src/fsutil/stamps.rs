//! What a folder's entries look like now, to tell later whether anyone wrote in it.

use std::collections::BTreeMap;
use std::path::Path;

use super::walk::{self, Folder};

/// Every entry below a folder (files, symlinks, folders, special files), with what changes
/// when anyone writes: size, modification time, change time (which no one can set back,
/// unlike the modification time), inode, mode. Symlinks are not followed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stamps(BTreeMap<String, Stamp>);

/// `(size, mtime ns, ctime ns, inode, mode)`.
type Stamp = (u64, i128, i128, u64, u32);

impl Stamps {
    /// Read on up to [`STAMP_THREADS`] threads sharing one queue of folders (a worktree's
    /// files are mostly in a few deep subtrees); each entry is looked up from its open
    /// folder, not by its whole path again.
    pub fn read(dir: &Path) -> Stamps {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(STAMP_THREADS));
        let queue = FolderQueue::new(Folder::default());
        let parts: Vec<BTreeMap<String, Stamp>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| queue.work(|rel, found| stamp_folder(dir, rel, found))))
                .collect();
            workers.into_iter().filter_map(|w| w.join().ok()).collect()
        });
        let mut stamps = Stamps::default();
        for part in parts {
            stamps.0.extend(part);
        }
        stamps
    }

    /// A digest of every stamp, to record and compare later.
    pub fn digest(&self) -> String {
        let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
        for (path, (len, mtime, ctime, ino, mode)) in &self.0 {
            hasher.update(path.as_bytes());
            hasher.update(b"\0");
            hasher.update(&len.to_le_bytes());
            hasher.update(&mtime.to_le_bytes());
            hasher.update(&ctime.to_le_bytes());
            hasher.update(&ino.to_le_bytes());
            hasher.update(&mode.to_le_bytes());
        }
        hasher.try_finalize().map(|id| id.to_string()).unwrap_or_default()
    }

    /// Paths added, removed or changed in `now`, sorted.
    pub fn changed(&self, now: &Stamps) -> Vec<String> {
        let mut out: Vec<String> = self
            .0
            .iter()
            .filter(|(path, stamp)| now.0.get(*path) != Some(stamp))
            .map(|(path, _)| path.clone())
            .chain(now.0.keys().filter(|p| !self.0.contains_key(*p)).cloned())
            .collect();
        // A folder's time changes with its entries: report the entries, not their folders.
        let all = out.clone();
        out.retain(|p| {
            !all.iter()
                .any(|q| q.len() > p.len() && q.starts_with(p.as_str()) && q.as_bytes()[p.len()] == b'/')
        });
        out.sort();
        out.dedup();
        out
    }
}

/// How many threads read a folder's stamps: the stat calls are the kernel's CPU work, so
/// more than a few cores gain nothing.
const STAMP_THREADS: usize = 4;

/// Stamp each entry of `folder` (below `base`, opened from its parent's descriptor: past
/// `PATH_MAX` too) into `found`; the folders among them are handed back for the queue.
fn stamp_folder(base: &Path, folder: &Folder, found: &mut BTreeMap<String, Stamp>) -> Vec<Folder> {
    let mut folders = Vec::new();
    let Ok(fd) = folder.open(base) else {
        return folders;
    };
    let Ok(entries) = walk::entries(&fd) else {
        return folders;
    };
    for (name, _) in entries {
        let child = folder.rel.join(&name);
        let Ok(m) = walk::stat_at(&fd, &name) else {
            continue;
        };
        let nanos = |s: i128, ns: i128| s * 1_000_000_000 + ns;
        let stamp = (
            field(m.st_size),
            nanos(field(m.st_mtime), field(m.st_mtime_nsec)),
            nanos(field(m.st_ctime), field(m.st_ctime_nsec)),
            field(m.st_ino),
            field(m.st_mode),
        );
        found.insert(child.to_string_lossy().into_owned(), stamp);
        if rustix::fs::FileType::from_raw_mode(m.st_mode) == rustix::fs::FileType::Directory {
            folders.push(folder.child(&fd, &name));
        }
    }
    folders
}

/// A field of `stat` as a stamp holds it (the fields' types differ between targets).
fn field<F: TryInto<T>, T: Default>(value: F) -> T {
    value.try_into().unwrap_or_default()
}

/// Folders still to read, shared by the threads of a walk: a thread waits while others
/// may still find more, and all stop once the queue is empty and no one is reading.
struct FolderQueue {
    state: std::sync::Mutex<(Vec<Folder>, usize)>,
    more: std::sync::Condvar,
}

impl FolderQueue {
    fn new(first: Folder) -> FolderQueue {
        FolderQueue {
            state: std::sync::Mutex::new((vec![first], 0)),
            more: std::sync::Condvar::new(),
        }
    }

    /// Take folders until none is left, reading each with `read`, which returns the
    /// folders it found; what `read` gathered is returned.
    fn work<T: Default>(&self, read: impl Fn(&Folder, &mut T) -> Vec<Folder>) -> T {
        let mut out = T::default();
        loop {
            let folder = {
                let Ok(mut state) = self.state.lock() else { return out };
                loop {
                    if let Some(folder) = state.0.pop() {
                        state.1 += 1;
                        break folder;
                    }
                    if state.1 == 0 {
                        self.more.notify_all();
                        return out;
                    }
                    state = match self.more.wait(state) {
                        Ok(state) => state,
                        Err(_) => return out,
                    };
                }
            };
            // Counted out even if `read` panics, so that the other threads never wait on it.
            let mut done = Done {
                queue: self,
                found: Vec::new(),
            };
            done.found = read(&folder, &mut out);
        }
    }
}

/// A folder read: what it found joins the queue, and the reader no longer counts as busy.
struct Done<'a> {
    queue: &'a FolderQueue,
    found: Vec<Folder>,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        let mut state = match self.queue.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.0.append(&mut self.found);
        state.1 -= 1;
        self.queue.more.notify_all();
    }
}
