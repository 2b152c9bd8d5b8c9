//! One home per rule (SPEC §7): what blocks a removal, whether a branch's commits are merged
//! or integrated, and when a worktree's lock is flowloom's own. Pure functions over the facts
//! `src/read` found; the planner calls them on what it read, and apply's just-in-time
//! re-check, under the lock, on what it reads again right before it deletes anything. The
//! re-check is the never-lose-work guard: it must never be laxer than the plan, so both
//! decide with the same function.

use crate::names::INITIALIZING;
use crate::plan::{DirtKind, Reason};
pub use crate::read::inspect::{Integration, Nested, Process};
pub use crate::read::state::Dirt;

/// Whether a worktree's lock is the one a checkout flowloom started holds while it is made
/// (`initializing`, as `git worktree add` locks it): a kill left that checkout half-made.
pub fn own_checkout_lock(lock: Option<&str>) -> bool {
    lock == Some(INITIALIZING)
}

/// The lock that keeps flowloom's hands off a worktree, if any: every lock, except its own
/// `initializing` lock on a checkout it left `half_made` (that one is no lock).
pub fn blocking_lock(lock: Option<&str>, half_made: bool) -> Option<&str> {
    lock.filter(|l| !(half_made && own_checkout_lock(Some(l))))
}

/// What a removal check reads of a worktree (SPEC §7), in the reader's own types.
#[derive(Debug, Clone, Default)]
pub struct WorktreeFacts {
    /// Its lock (`locked` in its administration folder).
    pub lock: Option<String>,
    /// A checkout flowloom's own killed apply left half-made.
    pub half_made: bool,
    /// flowloom runs inside it.
    pub started_inside: bool,
    /// An initialized submodule inside it.
    pub submodule: Option<String>,
    /// Its `.git` link does not lead back to its registration.
    pub foreign_git: Option<String>,
    pub nested: Vec<Nested>,
    pub processes: Vec<Process>,
    /// A detached `HEAD`, and how many commits only it keeps alive (`None`: not counted).
    pub detached: Option<(String, Option<usize>)>,
    /// Its changes (git status plus what flowloom's excludes hide); `None`: not read.
    pub dirt: Option<Dirt>,
    /// Why its changes could not be read (with `dirt` `None`).
    pub unreadable: Option<String>,
    /// Its folder is gone (nothing in it to lose).
    pub missing: bool,
}

/// What the plan already accepted losing when apply checks again: the files a forced
/// removal discards (kept in its archive) and the commits its archive keeps.
#[derive(Debug, Clone, Copy)]
pub struct Accepted<'a> {
    pub discard: &'a [String],
    pub keep: &'a [String],
}

/// SPEC §7: everything that blocks removing the worktree `facts` describes, in one order.
/// `session`: the session's id (its session files are named by it). Planning (`accepted`
/// `None`), changes block by kind and count; checking again before the removal
/// (`accepted` the plan's), whatever the plan did not accept blocks as new since the plan.
pub fn removal_blockers(facts: &WorktreeFacts, session: &str, accepted: Option<Accepted<'_>>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if let Some(lock) = blocking_lock(facts.lock.as_deref(), facts.half_made) {
        reasons.push(Reason::Locked { lock: lock.to_owned() });
    }
    if facts.started_inside {
        reasons.push(Reason::StartedInside);
    }
    if let Some(what) = &facts.submodule {
        reasons.push(Reason::Submodule { what: what.clone() });
    }
    if let Some(why) = &facts.foreign_git {
        reasons.push(Reason::ForeignGit { why: why.clone() });
    }
    reasons.extend(facts.nested.iter().map(|found| Reason::NestedRepository {
        path: found.path.clone(),
        unpushed: found.unpushed,
        uncommitted: found.uncommitted,
    }));
    reasons.extend(facts.processes.iter().map(|p| Reason::Process {
        pid: p.pid,
        name: p.name.clone(),
        uses: p.uses.clone(),
    }));
    if let Some((head, Some(count))) = &facts.detached
        && *count > 0
        && !accepted.is_some_and(|a| a.keep.contains(head))
    {
        reasons.push(Reason::DetachedCommits { count: *count });
    }
    match accepted {
        None => reasons.extend(dirt_blockers(facts, session)),
        Some(accepted) => {
            let new: Vec<String> = facts
                .dirt
                .iter()
                .flat_map(Dirt::all_paths)
                .filter(|p| !accepted.discard.contains(p))
                .collect();
            if !new.is_empty() {
                reasons.push(Reason::NewSincePlan { files: new });
            }
        }
    }
    reasons
}

/// The planner's view of a worktree's changes: each kind, with how many files.
fn dirt_blockers(facts: &WorktreeFacts, session: &str) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let Some(dirt) = &facts.dirt else {
        if !facts.missing {
            reasons.push(Reason::Unreadable {
                why: facts.unreadable.clone().unwrap_or_else(|| "not checked".to_owned()),
            });
        }
        return reasons;
    };
    for (files, what) in [
        (&dirt.modified, DirtKind::Modified),
        (&dirt.staged, DirtKind::Staged),
        (&dirt.deleted, DirtKind::Deleted),
        (&dirt.untracked, DirtKind::Untracked),
    ] {
        if !files.is_empty() {
            reasons.push(Reason::Dirty {
                what,
                count: files.len(),
            });
        }
    }
    if !dirt.session_files.is_empty() {
        reasons.push(Reason::SessionFiles {
            id: session.to_owned(),
            count: dirt.session_files.len(),
        });
    }
    reasons
}

/// Whether deleting a branch loses commits (`git branch -d` semantics, SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Its base or upstream reaches every commit.
    Merged,
    /// Commits remain, but their changes are in the base or upstream already.
    Integrated(Integration),
    /// This many commits would be lost.
    Unmerged(usize),
}

/// The merge rule: `unmerged` commits the branch's tip reaches that neither its base nor its
/// upstream reaches; when there are some, `integration` (asked only then: it reads history)
/// says whether their changes are in one of those already.
pub fn merge(unmerged: usize, integration: impl FnOnce() -> Option<Integration>) -> Merge {
    if unmerged == 0 {
        return Merge::Merged;
    }
    match integration() {
        Some(how) => Merge::Integrated(how),
        None => Merge::Unmerged(unmerged),
    }
}

/// What a branch's unmerged commits are counted against, and integration looked for in:
/// its base's commit, then its upstream's (either may be unknown).
pub fn merge_targets<'a>(base: Option<&'a str>, upstream: Option<&'a str>) -> Vec<&'a str> {
    base.into_iter().chain(upstream).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_flowloom_s_initializing_lock_on_a_half_made_checkout_is_no_lock() {
        assert!(own_checkout_lock(Some("initializing")));
        assert!(!own_checkout_lock(Some("initializing by hand")));
        assert!(!own_checkout_lock(None));
        assert_eq!(blocking_lock(Some("initializing"), true), None);
        assert_eq!(blocking_lock(Some("initializing"), false), Some("initializing"));
        assert_eq!(blocking_lock(Some("on a USB disk"), true), Some("on a USB disk"));
        assert_eq!(blocking_lock(None, false), None);
    }

    fn dirty() -> Dirt {
        Dirt {
            modified: vec!["a".into()],
            untracked: vec!["b".into()],
            session_files: vec![".flowloom/notes".into()],
            ..Dirt::default()
        }
    }

    #[test]
    fn planning_blocks_on_each_kind_of_change_and_checking_again_only_on_what_the_plan_did_not_accept() {
        let facts = WorktreeFacts {
            dirt: Some(dirty()),
            detached: Some(("c0ffee".into(), Some(2))),
            ..WorktreeFacts::default()
        };
        let planned = removal_blockers(&facts, "s", None);
        assert_eq!(planned.len(), 4, "{planned:?}");
        assert!(matches!(planned[0], Reason::DetachedCommits { count: 2 }));
        assert!(matches!(
            planned[1],
            Reason::Dirty {
                what: DirtKind::Modified,
                count: 1
            }
        ));
        assert!(matches!(planned[3], Reason::SessionFiles { count: 1, .. }));

        let everything = dirty().all_paths();
        let keep = ["c0ffee".to_owned()];
        let accepted = Accepted {
            discard: &everything,
            keep: &keep,
        };
        assert!(removal_blockers(&facts, "s", Some(accepted)).is_empty());
        let part = Accepted {
            discard: &everything[..1],
            keep: &[],
        };
        let again = removal_blockers(&facts, "s", Some(part));
        assert!(matches!(again[0], Reason::DetachedCommits { count: 2 }));
        assert!(matches!(&again[1], Reason::NewSincePlan { files } if files.len() == everything.len() - 1));
    }

    #[test]
    fn what_forbids_a_removal_outright_blocks_in_both_modes() {
        let facts = WorktreeFacts {
            lock: Some("mine".into()),
            started_inside: true,
            submodule: Some("sub".into()),
            foreign_git: Some("elsewhere".into()),
            processes: vec![Process {
                pid: 7,
                name: "vim".into(),
                uses: "cwd".into(),
            }],
            dirt: Some(Dirt::default()),
            ..WorktreeFacts::default()
        };
        for accepted in [
            None,
            Some(Accepted {
                discard: &[],
                keep: &[],
            }),
        ] {
            assert_eq!(removal_blockers(&facts, "s", accepted).len(), 5);
        }
        let unread = WorktreeFacts::default();
        assert!(matches!(
            removal_blockers(&unread, "s", None)[..],
            [Reason::Unreadable { .. }]
        ));
        let gone = WorktreeFacts {
            missing: true,
            ..WorktreeFacts::default()
        };
        assert!(removal_blockers(&gone, "s", None).is_empty());
    }

    #[test]
    fn a_branch_is_merged_when_nothing_is_left_or_its_changes_are_in_already() {
        let never = || -> Option<Integration> { panic!("integration is only asked with commits left") };
        assert_eq!(merge(0, never), Merge::Merged);
        assert_eq!(
            merge(3, || Some(Integration::PatchId)),
            Merge::Integrated(Integration::PatchId)
        );
        assert_eq!(merge(3, || None), Merge::Unmerged(3));
        assert_eq!(merge_targets(Some("b"), Some("u")), ["b", "u"]);
        assert_eq!(merge_targets(None, Some("u")), ["u"]);
        assert!(merge_targets(None, None).is_empty());
    }
}
