//! One row per blocked reason the planner gives: plain values in, the reason out, and
//! whether `--force` lifts it. (`NewSincePlan` is apply's, found when it checks again.)
use super::orphan::name_archives;
use super::*;
use crate::names::INITIALIZING;
use crate::read::inspect::Process;
use crate::read::state::Worktree;
use crate::read::state::{Branch, Dirt};
use crate::store::metadata::MetadataFile;
use crate::store::ownership::OwnedSession;
use crate::store::ownership::OwnedState;
use std::path::PathBuf;

const COMMIT: &str = "1111111111111111111111111111111111111111";
const ROOT: &str = "/repo/sessions";

fn path(id: &str) -> PathBuf {
    Path::new(ROOT).join(format!("shell-instance-{id}"))
}

fn worktree(id: &str) -> Worktree {
    Worktree {
        path: path(id),
        admin_id: format!("shell-instance-{id}"),
        branch: Some(format!("session/{id}")),
        lock: None,
        missing: false,
        session_id: Some(id.to_owned()),
        metadata: MetadataFile::Missing,
        has_artifacts: true,
        dirt: Some(Dirt::default()),
        unreadable: None,
        stray: None,
        switching_to: None,
        switch_resumable: false,
        detached: None,
        head: Some(COMMIT.to_owned()),
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

fn branch(id: &str, unmerged: Option<usize>) -> Branch {
    Branch {
        name: format!("session/{id}"),
        commit: COMMIT.to_owned(),
        upstream: None,
        unmerged,
        integrated: None,
    }
}

fn owned(id: &str, state: OwnedState) -> OwnedSession {
    OwnedSession {
        id: id.to_owned(),
        branch: format!("session/{id}"),
        path: path(id),
        base: "main".to_owned(),
        state,
        trash: None,
        trash_digest: None,
        branch_created: true,
    }
}

/// `x` declared (not created yet); `o` an owned orphan with a clean worktree and a
/// merged branch.
fn start() -> (Manifest, State) {
    let manifest = Manifest::from_source(
        Path::new("/repo/flowloom.toml"),
        "[sessions.x]\nsetup = [\"make setup\"]\n".to_owned(),
    )
    .expect("valid");
    let mut state = State {
        root: PathBuf::from(ROOT),
        ..State::default()
    };
    state
        .trusted
        .insert(crate::store::machine::setup_hash(&crate::store::machine::SetupScript {
            commands: vec!["make setup".to_owned()],
            env: BTreeMap::new(),
            teardown: Vec::new(),
        }));
    state.bases.insert("main".into(), Ok(COMMIT.into()));
    state.worktrees.insert(path("o"), worktree("o"));
    state.branches.insert("session/o".into(), branch("o", Some(0)));
    state.owned.sessions.push(owned("o", OwnedState::Created));
    (manifest, state)
}

fn reasons_of(plan: &Plan, session: &str) -> Vec<Reason> {
    plan.changes
        .iter()
        .filter(|c| c.session == session)
        .flat_map(|c| match &c.action {
            Action::Blocked { reasons } | Action::Retain { reasons, .. } => reasons.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn an_unmerged_branch_is_retained_and_an_integrated_one_goes() {
    let (manifest, mut state) = start();
    state.branches.insert("session/o".into(), branch("o", Some(2)));
    let action = |plan: &Plan| {
        plan.changes
            .iter()
            .find(|c| c.session == "o")
            .map(|c| c.action.clone())
            .expect("o is planned")
    };
    // The worktree can go: it goes, the branch stays.
    match action(&plan(&manifest, &state)) {
        Action::Retain { removal, .. } => {
            assert!(matches!(removal.worktree, WorktreeRemoval::Remove { .. }));
            assert_eq!(removal.delete_branch, None);
        }
        other => panic!("expected retained, got {other:?}"),
    }
    // Once only the branch is left, it is listed, and nothing is to do.
    state.worktrees.clear();
    let p = plan(&manifest, &state);
    assert!(matches!(action(&p), Action::Retain { .. }));
    assert!(!action(&p).changes_anything());
    // Integrated (a squash merge): the branch goes without --force.
    state.branches.get_mut("session/o").expect("o").integrated = Some(crate::read::inspect::Integration::PatchId);
    match action(&plan(&manifest, &state)) {
        Action::Remove(r) => {
            assert_eq!(r.delete_branch.as_deref(), Some(COMMIT));
            assert_eq!(r.integrated, Some(crate::read::inspect::Integration::PatchId));
        }
        other => panic!("expected remove, got {other:?}"),
    }
}

/// SPEC §11.4: a folder whose deletion started is only ever finished (a housekeeping
/// step), never moved back; a folder in the trash moves back only while its
/// registration waits for it.
#[test]
fn a_started_deletion_is_finished_never_undone() {
    let (manifest, mut state) = start();
    let trash = Path::new(ROOT).join(".flowloom-trash/shell-instance-o");
    state.worktrees.clear();
    state.branches.clear();
    state.owned.sessions.clear();
    state.owned.deleting = vec![trash.clone()];
    state.deleting = vec![trash.clone()];
    let finishing = |p: &Plan| {
        p.housekeeping
            .iter()
            .filter(|h| matches!(h, Housekeeping::EmptyTrash { .. }))
            .cloned()
            .collect::<Vec<_>>()
    };
    let p = plan(&manifest, &state);
    assert_eq!(finishing(&p), vec![Housekeeping::EmptyTrash { path: trash.clone() }]);
    assert!(p.changes.iter().all(|c| !matches!(c.action, Action::Restore { .. })));
    // With targets too: finishing a started deletion belongs to no session.
    let targeted = plan_with(
        &manifest,
        &state,
        &Options {
            targets: ["x".to_owned()].into(),
            ..Options::default()
        },
    );
    assert_eq!(finishing(&targeted).len(), 1);
    // Changed in the trash before its deletion started: back while registered, else
    // blocked, never a folder in the root that no registration points at.
    let (manifest, mut state) = start();
    let entry = &mut state.owned.sessions[0];
    entry.trash = Some(trash.clone());
    entry.trash_digest = Some("old".into());
    entry.state = OwnedState::Removing;
    state.trash = vec![trash.clone()];
    state.worktrees.get_mut(&path("o")).expect("o").missing = true;
    let p = plan(&manifest, &state);
    let o = p.changes.iter().find(|c| c.session == "o").expect("o");
    assert!(matches!(o.action, Action::Restore { .. }), "{:?}", o.action);
    state.worktrees.clear();
    let p = plan(&manifest, &state);
    let o = p.changes.iter().find(|c| c.session == "o").expect("o");
    assert!(matches!(o.action, Action::Blocked { .. }), "{:?}", o.action);
}

/// SPEC §11.4: archive refs never clash (`feat` beside `feat/x`), never overwrite one
/// another, and an archive an interrupted run wrote for the same commit is reused.
#[test]
fn archive_names_never_clash() {
    let removal = |keep: &str| {
        Action::Remove(Removal {
            worktree: WorktreeRemoval::None,
            delete_branch: None,
            integrated: None,
            archive: Some(Archive {
                reference: String::new(),
                keep: vec![keep.to_owned()],
                commits: 1,
                snapshot: None,
            }),
            discard: Vec::new(),
            base: "main".into(),
            exclude_drop: Vec::new(),
            teardown: None,
        })
    };
    let change = |branch: &str, keep: &str| Change {
        session: branch.replace('/', "-"),
        branch: branch.to_owned(),
        path: path(branch),
        action: removal(keep),
    };
    let mut state = State::default();
    for (name, commit) in [
        ("refs/flowloom/archive/feat/y", "a"),
        ("refs/flowloom/archive/3", "b"),
        ("refs/flowloom/archive/1/old", "c"),
    ] {
        state.archives.insert(name.into(), commit.into());
    }
    let mut changes = vec![
        change("feat", "d"),
        change("feat/x", "e"),
        change("old", "c"),
        change("feat/y", "a"),
    ];
    name_archives(&state, &mut changes);
    let names: Vec<String> = changes
        .iter()
        .map(|c| match &c.action {
            Action::Remove(Removal { archive: Some(a), .. }) => a.reference.clone(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(
        names,
        [
            "refs/flowloom/archive/4/feat",
            "refs/flowloom/archive/5/feat/x",
            "refs/flowloom/archive/1/old",
            "refs/flowloom/archive/feat/y",
        ]
    );
    // No name is a folder of another, nor one of the archives already there.
    let all: Vec<&String> = names.iter().chain(state.archives.keys()).collect();
    for a in &all {
        for b in &all {
            assert!(!b.starts_with(&format!("{a}/")), "{a} clashes with {b}");
        }
    }
}

type Setup = fn(&mut State);

fn not_found() -> BaseFailure {
    BaseFailure::NotFound {
        reason: "not found".into(),
        alternates_env: false,
    }
}

/// A session, what the row checks, the state that blocks it, and the one reason expected.
type ReasonRow = (&'static str, &'static str, Setup, Reason);

/// Why a session is not made: what is in the way of creating it.
fn creation_rows() -> Vec<ReasonRow> {
    vec![
        (
            "x",
            "branch checked out elsewhere",
            |s| {
                s.busy_branches.insert("session/x".into(), PathBuf::from("/elsewhere"));
            },
            Reason::BranchCheckedOutElsewhere {
                branch: "session/x".into(),
                path: PathBuf::from("/elsewhere"),
            },
        ),
        (
            "x",
            "folder in the way",
            |s| {
                s.occupied.insert(path("x"));
            },
            Reason::FolderInTheWay { path: path("x") },
        ),
        (
            "x",
            "base does not resolve",
            |s| {
                s.bases.insert("main".into(), Err(not_found()));
            },
            Reason::BaseUnresolved {
                base: "main".into(),
                why: not_found(),
            },
        ),
        (
            "x",
            "a checkout git would write otherwise",
            |s| {
                s.checkout_problems.insert(COMMIT.into(), "UTF-16".into());
            },
            Reason::CannotCheckOut { why: "UTF-16".into() },
        ),
        (
            "x",
            "setup not trusted",
            |s| {
                s.trusted.clear();
            },
            Reason::SetupNotTrusted {
                script: crate::store::machine::SetupScript {
                    commands: vec!["make setup".into()],
                    env: BTreeMap::new(),
                    teardown: Vec::new(),
                },
            },
        ),
        (
            "x",
            "base not read",
            |s| {
                s.bases.clear();
            },
            Reason::BaseUnread { base: "main".into() },
        ),
    ]
}

/// Why a worktree in place is not repaired.
fn repair_rows() -> Vec<ReasonRow> {
    vec![
        (
            "x",
            "half-made checkout holds other files",
            |s| {
                let mut w = worktree("x");
                w.lock = Some(INITIALIZING.into());
                w.stray = Some(vec!["mine.txt".into()]);
                s.worktrees.insert(path("x"), w);
                s.owned.sessions.push(owned("x", OwnedState::Creating));
            },
            Reason::HalfMadeHoldsOtherFiles {
                files: vec!["mine.txt".into()],
            },
        ),
        (
            "x",
            "locked with its folder gone",
            |s| {
                let mut w = worktree("x");
                w.missing = true;
                w.lock = Some("usb".into());
                s.worktrees.insert(path("x"), w);
            },
            Reason::LockedWithFolderGone { lock: "usb".into() },
        ),
        (
            "x",
            "detached, cannot switch back",
            |s| {
                let mut w = worktree("x");
                w.branch = None;
                s.worktrees.insert(path("x"), w);
            },
            Reason::SwitchBack {
                from: None,
                to: "session/x".into(),
                path: path("x"),
                why: SwitchBlock::Detached,
            },
        ),
        (
            "x",
            "on another branch with changes",
            |s| {
                let mut w = worktree("x");
                w.branch = Some("other".into());
                w.dirt = Some(Dirt {
                    modified: vec!["a".into()],
                    ..Dirt::default()
                });
                s.worktrees.insert(path("x"), w);
            },
            Reason::SwitchBack {
                from: Some("other".into()),
                to: "session/x".into(),
                path: path("x"),
                why: SwitchBlock::Uncommitted,
            },
        ),
    ]
}

/// Why a session's own folder is not written.
fn session_folder_rows() -> Vec<ReasonRow> {
    vec![
        (
            "x",
            "metadata invalid",
            |s| {
                let mut w = worktree("x");
                w.metadata = MetadataFile::Invalid("not JSON".into());
                s.worktrees.insert(path("x"), w);
            },
            Reason::MetadataInvalid {
                id: "x".into(),
                why: "not JSON".into(),
            },
        ),
        (
            "x",
            "session folder is a symlink",
            |s| {
                let mut w = worktree("x");
                w.unsafe_session = Some("`sessions/x` is a symlink".into());
                s.worktrees.insert(path("x"), w);
            },
            Reason::UnsafeSessionFolder {
                why: "`sessions/x` is a symlink".into(),
            },
        ),
    ]
}

/// Why an orphan's worktree is not removed: what is in it or using it.
fn removal_rows() -> Vec<ReasonRow> {
    vec![
        (
            "o",
            "locked",
            |s| s.worktrees.get_mut(&path("o")).expect("o").lock = Some("usb".into()),
            Reason::Locked { lock: "usb".into() },
        ),
        (
            "o",
            "started inside",
            |s| s.current_worktree = Some(path("o")),
            Reason::StartedInside,
        ),
        (
            "o",
            "modified files",
            |s| {
                s.worktrees.get_mut(&path("o")).expect("o").dirt = Some(Dirt {
                    modified: vec!["a".into(), "b".into()],
                    ..Dirt::default()
                })
            },
            Reason::Dirty {
                what: DirtKind::Modified,
                count: 2,
            },
        ),
        (
            "o",
            "session files",
            |s| {
                s.worktrees.get_mut(&path("o")).expect("o").dirt = Some(Dirt {
                    session_files: vec!["sessions/o/artifacts/r".into()],
                    ..Dirt::default()
                })
            },
            Reason::SessionFiles {
                id: "o".into(),
                count: 1,
            },
        ),
        (
            "o",
            "contents unreadable",
            |s| {
                let w = s.worktrees.get_mut(&path("o")).expect("o");
                w.dirt = None;
                w.unreadable = Some("broken index".into());
            },
            Reason::Unreadable {
                why: "broken index".into(),
            },
        ),
        (
            "o",
            "a process inside",
            |s| {
                s.worktrees.get_mut(&path("o")).expect("o").processes = vec![Process {
                    pid: 7,
                    name: "vim".into(),
                    uses: "cwd".into(),
                }]
            },
            Reason::Process {
                pid: 7,
                name: "vim".into(),
                uses: "cwd".into(),
            },
        ),
    ]
}

/// Why an orphan is not removed: what removing it would lose or cut short.
fn loss_rows() -> Vec<ReasonRow> {
    vec![
        (
            "o",
            "unmerged commits",
            |s| {
                s.branches.insert("session/o".into(), branch("o", Some(2)));
            },
            Reason::Unmerged {
                branch: "session/o".into(),
                count: 2,
                base: "main".into(),
                upstream: None,
            },
        ),
        (
            "o",
            "merge not checked",
            |s| {
                s.branches.insert("session/o".into(), branch("o", None));
            },
            Reason::UnmergedUnchecked {
                branch: "session/o".into(),
            },
        ),
        (
            "o",
            "initialized submodule",
            |s| s.worktrees.get_mut(&path("o")).expect("o").submodule = Some("lib".into()),
            Reason::Submodule { what: "lib".into() },
        ),
        (
            "o",
            "a .git that is not its registration's",
            |s| s.worktrees.get_mut(&path("o")).expect("o").foreign_git = Some("points elsewhere".into()),
            Reason::ForeignGit {
                why: "points elsewhere".into(),
            },
        ),
        (
            "o",
            "a nested repository",
            |s| {
                let w = s.worktrees.get_mut(&path("o")).expect("o");
                w.nested = vec![crate::read::inspect::Nested {
                    path: "tool".into(),
                    unpushed: Some(2),
                    uncommitted: 0,
                }];
            },
            Reason::NestedRepository {
                path: "tool".into(),
                unpushed: Some(2),
                uncommitted: 0,
            },
        ),
        (
            "o",
            "detached commits",
            |s| {
                let w = s.worktrees.get_mut(&path("o")).expect("o");
                w.branch = None;
                w.detached = Some(COMMIT.into());
                w.unreachable = Some(1);
            },
            Reason::DetachedCommits { count: 1 },
        ),
    ]
}

#[test]
fn every_reason_has_its_row() {
    let rows = [
        creation_rows(),
        repair_rows(),
        session_folder_rows(),
        removal_rows(),
        loss_rows(),
    ]
    .concat();
    for (session, what, setup, reason) in rows {
        let (manifest, mut state) = start();
        // Without the setup, nothing blocks.
        assert!(
            reasons_of(&plan(&manifest, &state), session).is_empty(),
            "{what}: blocked without cause"
        );
        setup(&mut state);
        let plain = plan(&manifest, &state);
        assert_eq!(reasons_of(&plain, session), vec![reason.clone()], "{what}");
        // --force lifts exactly the forceable reasons.
        let forced = plan_with(
            &manifest,
            &state,
            &Options {
                force: true,
                ..Options::default()
            },
        );
        let still = reasons_of(&forced, session);
        assert_eq!(still.is_empty(), reason.forceable(), "{what}: forced plan {still:?}");
    }
}
