//! What a folder's entries look like now, to tell later whether anyone wrote in it.

use std::collections::BTreeMap;
use std::path::Path;

/// Every entry below a folder (files, symlinks, folders, special files), with what changes
/// when anyone writes: size, modification time, inode, mode. Symlinks are not followed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stamps(BTreeMap<String, (u64, i128, u64, u32)>);

impl Stamps {
    pub fn read(dir: &Path) -> Stamps {
        let mut stamps = Stamps::default();
        stamps.walk(dir, Path::new(""));
        stamps
    }

    fn walk(&mut self, base: &Path, rel: &Path) {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir(base.join(rel)) else {
            return;
        };
        for entry in entries.flatten() {
            let child = rel.join(entry.file_name());
            let Ok(m) = entry.path().symlink_metadata() else {
                continue;
            };
            let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
            self.0.insert(
                child.to_string_lossy().into_owned(),
                (m.len(), mtime, m.ino(), m.mode()),
            );
            if m.is_dir() {
                self.walk(base, &child);
            }
        }
    }

    /// A digest of every stamp, to record and compare later.
    pub fn digest(&self) -> String {
        let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
        for (path, (len, mtime, ino, mode)) in &self.0 {
            hasher.update(path.as_bytes());
            hasher.update(b"\0");
            hasher.update(&len.to_le_bytes());
            hasher.update(&mtime.to_le_bytes());
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
