//! The just-in-time checks under the lock, right before a checkout or a deletion: what the
//! plan saw still holds (SPEC §7), decided with the planner's own rules.

use std::path::{Path, PathBuf};

use super::{Executor, Failure};
use crate::error::RepoError;
use crate::plan::{Change, Reason, Removal};

impl Executor<'_> {
    /// Checked again under the lock, right before a checkout, as `git worktree add` checks:
    /// the plan saw the branch checked out nowhere else and (for a new session, `!ours`) no
    /// registration at the path, but git (or a person) may have acted since (during the
    /// prompt, or a long apply). `ours`: the session's own registration is there, to be made
    /// again.
    pub(super) fn recheck_before_checkout(&mut self, change: &Change, ours: bool) -> Result<(), Failure> {
        let admins: Vec<PathBuf> = std::fs::read_dir(self.common_dir.join("worktrees"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .collect();
        let own = registered_at(&change.path, &admins);
        let except = own.clone().filter(|_| ours);
        // The first creation of an apply reads every worktree's `HEAD` (what the prompt gave
        // git time for); later ones the main worktree's and those of registrations made
        // since, so that an apply making a thousand sessions stays linear.
        let dirs: Vec<PathBuf> = match &self.seen_admins {
            None => std::iter::once(self.common_dir.clone())
                .chain(admins.iter().cloned())
                .collect(),
            Some(seen) => std::iter::once(self.common_dir.clone())
                .chain(admins.iter().filter(|a| !seen.contains(*a)).cloned())
                .collect(),
        };
        self.seen_admins = Some(admins.into_iter().collect());
        if let Some(other) = self.branch_in(&change.branch, dirs, except.as_deref()) {
            return Err(Failure::Blocked(vec![Reason::BranchCheckedOutElsewhere {
                branch: change.branch.clone(),
                path: self.worktree_of(&other),
            }]));
        }
        if let Some(admin) = own.filter(|_| !ours) {
            return Err(Failure::Error(RepoError::message(format!(
                "git registered a worktree at {} since the plan ({}); nothing was made: run `flowloom plan` again",
                change.path.display(),
                admin.display()
            ))));
        }
        Ok(())
    }

    /// The worktree an administration folder belongs to (the main worktree for the common
    /// dir), for messages; the folder itself when that cannot be read.
    pub(super) fn worktree_of(&self, admin: &Path) -> PathBuf {
        if admin == self.common_dir {
            return self
                .repo
                .main_repo()
                .ok()
                .and_then(|r| r.workdir().map(crate::fsutil::canonical))
                .unwrap_or_else(|| admin.to_path_buf());
        }
        crate::fsutil::read_small(&admin.join("gitdir"))
            .map(|text| PathBuf::from(String::from_utf8_lossy(&text).trim()))
            .and_then(|gitdir| gitdir.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| admin.to_path_buf())
    }

    /// SPEC §7, just in time: under the lock, right before the worktree is touched, it holds
    /// nothing the plan did not show — including what flowloom's own excludes hide.
    pub(super) fn recheck(
        &self,
        change: &Change,
        admin_id: &str,
        half_made: bool,
        removal: &Removal,
    ) -> Result<crate::fsutil::stamps::Stamps, Failure> {
        // Every file as it is now, before anything is looked at: a change after this moment
        // is found when the folder is in the trash.
        let stamps = crate::fsutil::stamps::Stamps::read(&change.path);
        let proxy = self
            .repo
            .worktree_proxy_by_id(gix::bstr::BStr::new(admin_id.as_bytes()))
            .map_err(|e| RepoError::git("find worktree", &change.path, e))?;
        let Some(proxy) = proxy else {
            return Err(
                RepoError::message(format!("{} is no longer a registered worktree", change.path.display())).into(),
            );
        };
        let registered_here = proxy.base().is_ok_and(|b| crate::fsutil::canonical(&b) == change.path);
        if !registered_here {
            return Err(RepoError::message(format!(
                "the registration {admin_id} no longer points at {}",
                change.path.display()
            ))
            .into());
        }
        let hidden = crate::store::exclude::line_paths(&crate::store::exclude::read(&self.common_dir).lines);
        let facts = crate::plan::rules::WorktreeFacts {
            lock: proxy.lock_reason().map(|l| l.to_string()),
            half_made,
            started_inside: self.start_dir.starts_with(&change.path),
            ..self
                .probe
                .worktree(self.repo, admin_id, &change.path, &change.session, &hidden)?
        };
        let keep = removal.archive.as_ref().map_or(&[][..], |a| a.keep.as_slice());
        let accepted = crate::plan::rules::Accepted {
            discard: &removal.discard,
            keep,
        };
        let reasons = crate::plan::rules::removal_blockers(&facts, &change.session, Some(accepted));
        if reasons.is_empty() {
            Ok(stamps)
        } else {
            Err(Failure::Blocked(reasons))
        }
    }

    /// `git branch -d` semantics at the moment of deletion: the plan found the branch's
    /// commits in its base or upstream; if those moved since (a fetch pruned the upstream,
    /// the base was reset), the branch stays.
    pub(super) fn recheck_merged(&self, change: &Change, tip: &str, base: &str) -> Result<(), Failure> {
        let tip_id = gix::ObjectId::from_hex(tip.as_bytes())
            .map_err(|e| RepoError::git("parse object id", Path::new(tip), e))?;
        let mut hidden = Vec::new();
        if let Ok(id) = self.repo.rev_parse_single(crate::names::commit_spec(base).as_str()) {
            hidden.push(id.detach());
        }
        let full: gix::refs::FullName = crate::names::branch_ref(&change.branch)
            .try_into()
            .map_err(|e| RepoError::git("name branch", Path::new(&change.branch), e))?;
        if let Some(Ok(tracking)) = self
            .repo
            .branch_remote_tracking_ref_name(full.as_ref(), gix::remote::Direction::Fetch)
            && let Ok(Some(mut r)) = self.repo.try_find_reference(tracking.as_ref())
            && let Ok(id) = r.peel_to_id()
        {
            hidden.push(id.detach());
        }
        let count = self.probe.unmerged(self.repo, &change.branch, tip_id, hidden.clone())?;
        let merge = crate::plan::rules::merge(count, || self.probe.integration(self.repo, tip_id, &hidden));
        if let crate::plan::rules::Merge::Unmerged(count) = merge {
            return Err(Failure::Blocked(vec![Reason::Unmerged {
                branch: change.branch.clone(),
                count,
                base: base.to_owned(),
                upstream: None,
            }]));
        }
        Ok(())
    }

    /// Where another worktree (or the main one) has `branch` checked out now, if anywhere.
    /// Every `HEAD` is looked at again, each time (git could have switched any of them
    /// since the plan); one this apply already read and whose stat has not changed since
    /// is not read again.
    pub(super) fn checked_out_at(&mut self, branch: &str) -> Option<PathBuf> {
        self.checked_out_at_except(branch, None)
    }

    /// Where `branch` is checked out (its `HEAD`), or being rebased (git counts that as
    /// checked out too), leaving out the administration folder `except`.
    pub(super) fn checked_out_at_except(&mut self, branch: &str, except: Option<&Path>) -> Option<PathBuf> {
        let linked = std::fs::read_dir(self.common_dir.join("worktrees"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path());
        let dirs: Vec<PathBuf> = std::iter::once(self.common_dir.clone()).chain(linked).collect();
        self.branch_in(branch, dirs, except)
    }

    /// Of the administration folders `dirs`, the first where `branch` is checked out or
    /// being rebased, leaving out `except`.
    pub(super) fn branch_in(&mut self, branch: &str, dirs: Vec<PathBuf>, except: Option<&Path>) -> Option<PathBuf> {
        let full = crate::names::branch_ref(branch);
        for dir in dirs {
            if except.is_some_and(|e| e == dir) {
                continue;
            }
            let content = self.head_content(dir.join("HEAD"));
            let head = content.map(|t| String::from_utf8_lossy(t).trim().to_owned());
            match head.as_deref().map(|h| h.strip_prefix("ref: ")) {
                Some(Some(name)) if name == full.as_str() => return Some(dir),
                // A rebase detaches `HEAD`: only then can the branch be being rebased there.
                Some(None) if self.probe.rebasing(&dir).as_deref() == Some(full.as_str()) => {
                    return Some(dir);
                }
                _ => {}
            }
        }
        None
    }

    /// A `HEAD` file's content as it is now: read again when its stat differs from the one
    /// taken before it was last read (taken before, so that a write during the read shows
    /// as a change next time), else as read then.
    pub(super) fn head_content(&mut self, head: PathBuf) -> Option<&[u8]> {
        use std::collections::hash_map::Entry;
        let Some(stamp) = HeadStamp::of(&head) else {
            self.heads.remove(&head);
            return None;
        };
        // Read, with whether the stat can vouch for the content from now on: not when the
        // file had changed just before.
        let read = |path: &Path| {
            let content = crate::fsutil::read_small(path);
            (stamp, !stamp.racy(std::time::SystemTime::now()), content)
        };
        let slot = match self.heads.entry(head) {
            Entry::Occupied(o) if o.get().0 == stamp && o.get().1 => o.into_mut(),
            Entry::Occupied(mut o) => {
                let fresh = read(o.key());
                o.insert(fresh);
                o.into_mut()
            }
            Entry::Vacant(v) => {
                let fresh = read(v.key());
                v.insert(fresh)
            }
        };
        slot.2.as_deref()
    }
}

/// What a file's stat says about its content: a `HEAD` rewritten (git renames a new file
/// over it: new inode) or edited in place (new times, size) differs in one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HeadStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl HeadStamp {
    /// Whether the file changed too shortly before `read_at` for its stat to tell a later
    /// change: file times are kept at a clock tick's grain, so a same-size write in place
    /// within that tick would leave the stat as it was (git's "racy clean" case). Such a file
    /// is read again each time.
    fn racy(&self, read_at: std::time::SystemTime) -> bool {
        let secs = read_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.mtime.0.max(self.ctime.0) >= secs.saturating_sub(2)
    }

    fn of(path: &Path) -> Option<HeadStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(HeadStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// Of the administration folders `admins`, one whose `gitdir` points at `path`. git names
/// a worktree's folder after the worktree's folder name (with a number when taken), so only
/// folders whose name starts with it are read.
pub(super) fn registered_at(path: &Path, admins: &[PathBuf]) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let wanted = crate::fsutil::canonical(&path.join(".git"));
    admins
        .iter()
        .filter(|admin| {
            admin
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&name))
        })
        .find(|admin| {
            crate::fsutil::read_small(&admin.join("gitdir")).is_some_and(|text| {
                let text = String::from_utf8_lossy(&text);
                let gitdir = Path::new(text.trim());
                let gitdir = if gitdir.is_absolute() {
                    gitdir.to_path_buf()
                } else {
                    admin.join(gitdir)
                };
                crate::fsutil::canonical(&gitdir) == wanted
            })
        })
        .cloned()
}
