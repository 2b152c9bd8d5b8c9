//! Property tests: plans are deterministic, and carrying a plan out (modelled on plain
//! values, as apply does it on disk) then planning again leaves nothing to do.
use super::housekeep::moved_from;
use super::*;
use crate::read::state::Worktree;
use crate::read::state::{Branch, Dirt};
use crate::store::metadata::Metadata;
use crate::store::metadata::MetadataFile;
use crate::store::metadata::Wanted;
use crate::store::ownership::OwnedSession;
use crate::store::ownership::OwnedState;
use crate::store::ownership::Record;
use proptest::prelude::*;
use std::path::PathBuf;

const IDS: [&str; 4] = ["a", "b", "c", "d"];
const COMMIT: &str = "1111111111111111111111111111111111111111";

#[derive(Debug, Clone)]
struct Case {
    declared: Vec<Option<String>>, // per id: declared with this purpose?
    sessions: Vec<SessionState>,
}

#[derive(Debug, Clone)]
struct SessionState {
    worktree: u8, // 0 none, 1 present, 2 folder gone
    branch: bool,
    owned: Option<OwnedState>,
    dirty: bool,
    unmerged: usize,
    metadata: u8, // 0 missing, 1 matching, 2 other purpose
    locked: bool,
    on_other_branch: bool,
}

fn session_state() -> impl Strategy<Value = SessionState> {
    (
        0u8..3,
        any::<bool>(),
        prop_oneof![
            Just(None),
            Just(Some(OwnedState::Created)),
            Just(Some(OwnedState::Creating)),
            Just(Some(OwnedState::Removing))
        ],
        any::<bool>(),
        0usize..2,
        0u8..3,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(worktree, branch, owned, dirty, unmerged, metadata, locked, on_other_branch)| SessionState {
                worktree,
                branch: branch || worktree > 0,
                owned,
                dirty,
                unmerged,
                metadata,
                locked,
                on_other_branch,
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(
            prop::option::of(prop_oneof![Just("one".to_owned()), Just("two".to_owned())]),
            4,
        ),
        prop::collection::vec(session_state(), 4),
    )
        .prop_map(|(declared, sessions)| Case { declared, sessions })
}

fn manifest(case: &Case) -> Manifest {
    let mut text = String::new();
    for (id, purpose) in IDS.iter().zip(&case.declared) {
        if let Some(p) = purpose {
            text.push_str(&format!("[sessions.{id}]\npurpose = \"{p}\"\n"));
        }
    }
    Manifest::from_source(Path::new("/repo/flowloom.toml"), text).expect("generated manifests are valid")
}

fn metadata_for(id: &str, purpose: &str, path: &Path) -> MetadataFile {
    let w = Wanted {
        session_id: id.to_owned(),
        purpose: purpose.to_owned(),
        working_directory: path.to_string_lossy().into_owned(),
        git_branch: format!("session/{id}"),
        worktree_name: format!("shell-instance-{id}"),
    };
    parse(&w.create(1, "2026-01-01T00:00:00Z"))
}

fn parse(text: &str) -> MetadataFile {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(fields)) => MetadataFile::Valid(Metadata {
            fields,
            text: text.to_owned(),
        }),
        _ => MetadataFile::Invalid("bad".into()),
    }
}

fn state(case: &Case) -> State {
    let root = PathBuf::from("/repo/sessions");
    let mut state = State {
        root: root.clone(),
        ..State::default()
    };
    state.bases.insert("main".into(), Ok(COMMIT.into()));
    for (id, s) in IDS.iter().zip(&case.sessions) {
        let path = root.join(format!("shell-instance-{id}"));
        let branch = format!("session/{id}");
        if s.worktree > 0 {
            let missing = s.worktree == 2;
            let metadata = match s.metadata {
                _ if missing => MetadataFile::Missing,
                0 => MetadataFile::Missing,
                1 => metadata_for(id, "one", &path),
                _ => metadata_for(id, "other", &path),
            };
            let dirt = Dirt {
                modified: if s.dirty { vec!["README.md".into()] } else { vec![] },
                ..Dirt::default()
            };
            state.worktrees.insert(
                path.clone(),
                Worktree {
                    path: path.clone(),
                    admin_id: format!("shell-instance-{id}"),
                    branch: Some(if s.on_other_branch {
                        format!("other-{id}")
                    } else {
                        branch.clone()
                    }),
                    lock: s.locked.then(|| "on a usb disk".to_owned()),
                    missing,
                    session_id: Some((*id).to_owned()),
                    metadata,
                    has_artifacts: !missing,
                    dirt: (!missing).then_some(dirt),
                    unreadable: None,
                    stray: None,
                    switching_to: None,
                    switch_resumable: false,
                    detached: None,
                    head: Some(COMMIT.into()),
                    unreachable: None,
                    submodule: None,
                    foreign_git: None,
                    nested: Vec::new(),
                    processes: Vec::new(),
                    unsafe_session: None,
                    copy_settled: None,
                    device: None,
                },
            );
        }
        if s.branch {
            state.branches.insert(
                branch.clone(),
                Branch {
                    name: branch.clone(),
                    commit: COMMIT.into(),
                    upstream: None,
                    unmerged: Some(s.unmerged),
                    integrated: None,
                },
            );
        }
        if let Some(owned) = s.owned {
            state.owned.sessions.push(OwnedSession {
                id: (*id).to_owned(),
                branch,
                path,
                base: "main".into(),
                state: owned,
                trash: None,
                trash_digest: None,
                branch_created: true,
            });
        }
    }
    state
}

/// What apply does, on values.
fn carry_out(plan: &Plan, state: &State) -> State {
    let mut next = state.clone();
    let mut record = Record::new(1, next.owned.sessions.clone());
    carry_out_housekeeping(plan, &mut next, &mut record);
    for change in &plan.changes {
        match &change.action {
            Action::Create { wanted, base, .. } => {
                next.branches.entry(change.branch.clone()).or_insert_with(|| Branch {
                    name: change.branch.clone(),
                    commit: COMMIT.into(),
                    upstream: None,
                    unmerged: Some(0),
                    integrated: None,
                });
                next.worktrees
                    .insert(change.path.clone(), created(change, fresh(wanted)));
                record.upsert(OwnedSession {
                    id: change.session.clone(),
                    branch: change.branch.clone(),
                    path: change.path.clone(),
                    base: base.clone(),
                    state: OwnedState::Created,
                    trash: None,
                    trash_digest: None,
                    branch_created: true,
                });
            }
            Action::Update { repairs, wanted, .. } => carry_out_update(change, repairs, wanted, &mut next, &mut record),
            Action::Retain { removal, .. } => {
                if removal.worktree != WorktreeRemoval::None {
                    next.worktrees.remove(&change.path);
                }
                next.exclude.lines.retain(|l| !removal.exclude_drop.contains(l));
            }
            Action::Remove(r) => {
                if r.worktree != WorktreeRemoval::None {
                    next.worktrees.remove(&change.path);
                }
                if let Some(expected) = &r.delete_branch
                    && next.branches.get(&change.branch).is_some_and(|b| &b.commit == expected)
                {
                    next.branches.remove(&change.branch);
                }
                record.remove_path(&change.path);
                next.exclude.lines.retain(|l| !r.exclude_drop.contains(l));
            }
            Action::Restore { from, .. } => {
                next.trash.retain(|t| t != from);
                if let Some(o) = record.sessions.iter_mut().find(|o| o.path == change.path) {
                    o.trash = None;
                    o.state = OwnedState::Created;
                }
            }
            Action::Blocked { .. } => {}
        }
    }
    next.owned = record;
    next
}

/// The metadata apply writes for a session it makes.
fn fresh(wanted: &Wanted) -> MetadataFile {
    parse(&wanted.create(1, "2026-01-01T00:00:00Z"))
}

/// Housekeeping, as apply carries it out (first).
fn carry_out_housekeeping(plan: &Plan, next: &mut State, record: &mut Record) {
    for step in &plan.housekeeping {
        match step {
            Housekeeping::Excludes { new, .. } => {
                next.exclude.lines = new.clone();
                next.exclude.legacy = false;
            }
            Housekeeping::DropRecord { path, .. } => record.remove_path(path),
            Housekeeping::EmptyTrash { path } => {
                next.trash.retain(|t| t != path);
                next.deleting.retain(|t| t != path);
            }
            Housekeeping::Leftover(l) => next.leftovers.retain(|x| x != l),
            Housekeeping::FinishMove { to, .. } => record.moving.retain(|m| m.to != *to),
            Housekeeping::RepairLinks { to, .. } => next.broken_links.retain(|r| r.to != *to),
        }
    }
}

/// The worktree apply makes for a created session: clean, on its branch.
fn created(change: &Change, metadata: MetadataFile) -> Worktree {
    Worktree {
        path: change.path.clone(),
        admin_id: String::new(),
        branch: Some(change.branch.clone()),
        lock: None,
        missing: false,
        session_id: Some(change.session.clone()),
        metadata,
        has_artifacts: true,
        dirt: Some(Dirt::default()),
        unreadable: None,
        stray: None,
        switching_to: None,
        switch_resumable: false,
        detached: None,
        head: Some(COMMIT.into()),
        unreachable: None,
        submodule: None,
        foreign_git: None,
        nested: Vec::new(),
        processes: Vec::new(),
        unsafe_session: None,
        copy_settled: None,
        device: None,
    }
}

/// An update's repairs, as apply carries them out.
fn carry_out_update(change: &Change, repairs: &[Repair], wanted: &Wanted, next: &mut State, record: &mut Record) {
    if let Some(from) = moved_from(change)
        && let Some(mut moved) = next.worktrees.remove(from)
    {
        moved.path = change.path.clone();
        next.worktrees.insert(change.path.clone(), moved);
    }
    let wt = next.worktrees.get_mut(&change.path).expect("updates have a worktree");
    for r in repairs {
        match r {
            Repair::Worktree { .. } => {
                wt.branch = Some(change.branch.clone());
                wt.missing = false;
                wt.lock = None;
                wt.dirt = Some(Dirt::default());
            }
            Repair::Metadata { new: Some(text), .. } => wt.metadata = parse(text),
            Repair::Metadata { new: None, .. } => wt.metadata = fresh(wanted),
            Repair::SwitchBranch { .. } => wt.branch = Some(change.branch.clone()),
            Repair::Artifacts => wt.has_artifacts = true,
            Repair::Restore { from } => {
                wt.missing = false;
                next.trash.retain(|t| t != from);
            }
            Repair::Ports { names } => {
                if let MetadataFile::Valid(m) = &wt.metadata {
                    let ports = names.iter().map(|n| (n.clone(), 20000)).collect();
                    wt.metadata = parse(&m.with_ports(&ports));
                }
            }
            Repair::FinishRecord => {
                if let Some(o) = record.sessions.iter_mut().find(|o| o.path == change.path) {
                    o.state = OwnedState::Created;
                }
            }
            Repair::Move { from, .. } => {
                if let Some(o) = record.sessions.iter_mut().find(|o| o.path == *from) {
                    o.path = change.path.clone();
                }
            }
            Repair::Copies { .. } | Repair::RunSetup { .. } => {}
        }
    }
}

proptest! {
    #[test]
    fn plans_are_deterministic(case in case()) {
        let (m, s) = (manifest(&case), state(&case));
        prop_assert_eq!(plan(&m, &s), plan(&m, &s));
    }

    #[test]
    fn applying_a_plan_converges(case in case(), force in any::<bool>()) {
        let (m, s) = (manifest(&case), state(&case));
        let options = Options { force, ..Options::default() };
        let first = plan_with(&m, &s, &options);
        let after = carry_out(&first, &s);
        let second = plan_with(&m, &after, &options);
        prop_assert!(!second.has_changes(), "first plan {:#?}\nsecond plan {:#?}", first, second);
        // Whatever stayed blocked is blocked for the same reasons.
        let blocked = |p: &Plan| p.changes.iter().filter(|c| matches!(c.action, Action::Blocked { .. })).cloned().collect::<Vec<_>>();
        prop_assert_eq!(blocked(&first), blocked(&second));
    }

    #[test]
    fn blocked_sessions_keep_their_work(case in case(), force in any::<bool>()) {
        let (m, s) = (manifest(&case), state(&case));
        let p = plan_with(&m, &s, &Options { force, ..Options::default() });
        for change in &p.changes {
            if let Action::Remove(Removal { archive, discard, delete_branch, .. }) = &change.action {
                // Only owned sessions are ever removed, never locked ones; without
                // --force never dirty or unmerged ones; with it, what would be lost is
                // archived (commits) or listed (files).
                prop_assert!(s.owned.by_path(&change.path).is_some());
                if let Some(wt) = s.worktrees.get(&change.path) {
                    prop_assert!(wt.lock.is_none());
                    let dirt = wt.dirt.clone().unwrap_or_default();
                    prop_assert_eq!(discard, &dirt.all_paths());
                    prop_assert!(force || dirt.is_clean());
                    // Uncommitted work is committed into the archive before it goes.
                    prop_assert_eq!(archive.as_ref().and_then(|a| a.snapshot.as_ref()).is_some(), !dirt.is_clean());
                }
                if let (Some(_), Some(b)) = (delete_branch, s.branches.get(&change.branch)) {
                    let unmerged = b.unmerged.expect("checked");
                    prop_assert!(force || unmerged == 0);
                    if unmerged > 0 {
                        let a = archive.as_ref().expect("unmerged commits are archived");
                        prop_assert!(a.keep.contains(&b.commit) && a.commits >= unmerged);
                    }
                }
            }
        }
    }
}
