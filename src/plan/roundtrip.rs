//! A plan read back from its JSON is the plan that was written (`apply FILE` executes what
//! it reads back, so nothing may be lost or changed on the way): arbitrary plans, with
//! every step, repair, reason and housekeeping variant, survive `to_json`/`from_json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};

use super::*;
use crate::hooks::HooksDir;
use crate::read::inspect::Integration;
use crate::read::tracking::Upstream;
use crate::store::machine::SetupScript;
use crate::store::metadata::Wanted;
use crate::store::recover::{Leftover, LeftoverKind};

/// Every way a base fails to resolve.
fn base_failure() -> BoxedStrategy<BaseFailure> {
    prop_oneof![
        texts().prop_map(|refs| BaseFailure::Ambiguous { refs }),
        (text(), any::<bool>()).prop_map(|(reason, alternates_env)| BaseFailure::NotFound { reason, alternates_env }),
        text().prop_map(|value| BaseFailure::BadAutoSetupMerge { value }),
        (text(), texts()).prop_map(|(reference, remotes)| BaseFailure::AmbiguousUpstream { reference, remotes }),
    ]
    .boxed()
}

/// Any text, control characters and non-ASCII included.
fn text() -> BoxedStrategy<String> {
    prop_oneof![any::<String>(), "[a-z/._-]{0,12}"].boxed()
}

fn texts() -> BoxedStrategy<Vec<String>> {
    proptest::collection::vec(text(), 0..3).boxed()
}

fn path() -> BoxedStrategy<PathBuf> {
    text().prop_map(PathBuf::from).boxed()
}

fn one_of(options: Vec<BoxedStrategy<Reason>>) -> BoxedStrategy<Reason> {
    Union::new(options).boxed()
}

fn start() -> impl Strategy<Value = Start> {
    let from = prop_oneof![Just(StartFrom::Local), Just(StartFrom::Remote), Just(StartFrom::Base)];
    let upstream = proptest::option::of((text(), text(), texts(), any::<bool>()).prop_map(
        |(remote, merge, also_merge, rebase)| Upstream {
            remote,
            merge,
            also_merge,
            rebase,
        },
    ));
    (from, text(), text(), upstream).prop_map(|(from, reference, commit, upstream)| Start {
        from,
        reference,
        commit,
        upstream,
    })
}

fn wanted() -> impl Strategy<Value = Wanted> {
    (text(), text(), text(), text(), text()).prop_map(|(a, b, c, d, e)| Wanted {
        session_id: a,
        purpose: b,
        working_directory: c,
        git_branch: d,
        worktree_name: e,
    })
}

fn hooks() -> impl Strategy<Value = Option<HooksDir>> {
    proptest::option::of(prop_oneof![
        path().prop_map(HooksDir::Absolute),
        path().prop_map(HooksDir::InWorktree)
    ])
}

fn env() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(text(), text(), 0..3)
}

fn variables() -> impl Strategy<Value = Variables> {
    let segment = prop_oneof![text().prop_map(Segment::Text), text().prop_map(Segment::Port)];
    let values = proptest::collection::vec((text(), proptest::collection::vec(segment, 0..3)), 0..3);
    (env(), values).prop_map(|(fixed, values)| Variables {
        fixed: fixed.into_iter().collect(),
        env: values,
    })
}

fn prepare() -> impl Strategy<Value = Prepare> {
    let copy = proptest::collection::vec(
        (text(), any::<bool>()).prop_map(|(path, dir)| CopyItem { path, dir }),
        0..3,
    );
    (proptest::option::of(path()), copy, texts(), variables(), texts()).prop_map(
        |(from, copy, ports, variables, setup)| Prepare {
            from,
            copy,
            ports,
            variables,
            setup,
        },
    )
}

fn switch_block(reason: BoxedStrategy<Reason>) -> impl Strategy<Value = SwitchBlock> {
    prop_oneof![
        Just(SwitchBlock::Detached),
        path().prop_map(|path| SwitchBlock::CheckedOutElsewhere { path }),
        Just(SwitchBlock::Uncommitted),
        Just(SwitchBlock::Unchecked),
        reason.prop_map(|r| SwitchBlock::Start { reason: Box::new(r) }),
    ]
}

/// Every reason but `SwitchBack`, which holds one of these.
fn leaf_reason() -> BoxedStrategy<Reason> {
    let dirt = prop_oneof![
        Just(DirtKind::Modified),
        Just(DirtKind::Staged),
        Just(DirtKind::Deleted),
        Just(DirtKind::Untracked)
    ];
    one_of(vec![
        (text(), path())
            .prop_map(|(branch, path)| Reason::BranchCheckedOutElsewhere { branch, path })
            .boxed(),
        path().prop_map(|path| Reason::FolderInTheWay { path }).boxed(),
        (text(), base_failure())
            .prop_map(|(base, why)| Reason::BaseUnresolved { base, why })
            .boxed(),
        text().prop_map(|base| Reason::BaseUnread { base }).boxed(),
        texts()
            .prop_map(|files| Reason::HalfMadeHoldsOtherFiles { files })
            .boxed(),
        text().prop_map(|lock| Reason::LockedWithFolderGone { lock }).boxed(),
        (text(), text())
            .prop_map(|(id, why)| Reason::MetadataInvalid { id, why })
            .boxed(),
        text().prop_map(|why| Reason::UnsafeSessionFolder { why }).boxed(),
        text().prop_map(|lock| Reason::Locked { lock }).boxed(),
        Just(Reason::StartedInside).boxed(),
        (dirt, any::<usize>())
            .prop_map(|(what, count)| Reason::Dirty { what, count })
            .boxed(),
        (text(), any::<usize>())
            .prop_map(|(id, count)| Reason::SessionFiles { id, count })
            .boxed(),
        text().prop_map(|why| Reason::Unreadable { why }).boxed(),
        (text(), any::<usize>(), text(), proptest::option::of(text()))
            .prop_map(|(branch, count, base, upstream)| Reason::Unmerged {
                branch,
                count,
                base,
                upstream,
            })
            .boxed(),
        text().prop_map(|branch| Reason::UnmergedUnchecked { branch }).boxed(),
        text().prop_map(|what| Reason::Submodule { what }).boxed(),
        (any::<u32>(), text(), text())
            .prop_map(|(pid, name, uses)| Reason::Process { pid, name, uses })
            .boxed(),
        any::<usize>()
            .prop_map(|count| Reason::DetachedCommits { count })
            .boxed(),
        texts().prop_map(|files| Reason::NewSincePlan { files }).boxed(),
        text().prop_map(|why| Reason::ForeignGit { why }).boxed(),
        nested_repository().boxed(),
        text().prop_map(|why| Reason::CannotCheckOut { why }).boxed(),
        (texts(), env())
            .prop_map(|(commands, env)| Reason::SetupNotTrusted {
                script: SetupScript {
                    commands,
                    env,
                    teardown: Vec::new(),
                },
            })
            .boxed(),
        (texts(), env(), texts())
            .prop_map(|(commands, env, teardown)| Reason::TeardownNotTrusted {
                script: SetupScript {
                    commands,
                    env,
                    teardown,
                },
            })
            .boxed(),
        (text(), text())
            .prop_map(|(command, status)| Reason::TeardownFailed { command, status })
            .boxed(),
        path().prop_map(|file| Reason::CommittedMissing { file }).boxed(),
    ])
}

fn reason() -> BoxedStrategy<Reason> {
    let switch_back = (
        proptest::option::of(text()),
        text(),
        path(),
        switch_block(leaf_reason()),
    )
        .prop_map(|(from, to, path, why)| Reason::SwitchBack { from, to, path, why });
    prop_oneof![3 => leaf_reason(), 1 => switch_back].boxed()
}

fn reasons() -> impl Strategy<Value = Vec<Reason>> {
    proptest::collection::vec(reason(), 0..3)
}

fn repair() -> impl Strategy<Value = Repair> {
    prop_oneof![
        (start(), any::<bool>(), hooks(), prepare()).prop_map(|(start, reset, post_checkout, prepare)| {
            Repair::Worktree {
                start,
                reset,
                post_checkout,
                prepare,
            }
        }),
        (proptest::option::of(text()), proptest::option::of(text()))
            .prop_map(|(old, new)| Repair::Metadata { old, new }),
        (text(), start()).prop_map(|(from, start)| Repair::SwitchBranch { from, start }),
        Just(Repair::Artifacts),
        path().prop_map(|from| Repair::Restore { from }),
        texts().prop_map(|names| Repair::Ports { names }),
        Just(Repair::FinishRecord),
    ]
}

fn worktree_removal() -> impl Strategy<Value = WorktreeRemoval> {
    prop_oneof![
        (text(), any::<bool>()).prop_map(|(admin_id, half_made)| WorktreeRemoval::Remove { admin_id, half_made }),
        text().prop_map(|admin_id| WorktreeRemoval::Prune { admin_id }),
        (text(), path(), any::<bool>()).prop_map(|(admin_id, trash, half_made)| WorktreeRemoval::Trashed {
            admin_id,
            trash,
            half_made
        }),
        Just(WorktreeRemoval::None),
    ]
}

fn integration() -> impl Strategy<Value = Option<Integration>> {
    proptest::option::of(prop_oneof![
        Just(Integration::Ancestor),
        Just(Integration::SameTree),
        Just(Integration::NothingToAdd),
        Just(Integration::PatchId),
    ])
}

fn nested_repository() -> impl Strategy<Value = Reason> {
    (text(), proptest::option::of(any::<usize>()), any::<usize>()).prop_map(|(path, unpushed, uncommitted)| {
        Reason::NestedRepository {
            path,
            unpushed,
            uncommitted,
        }
    })
}

fn archive() -> impl Strategy<Value = Option<Archive>> {
    proptest::option::of(
        (text(), texts(), any::<usize>(), proptest::option::of(text())).prop_map(
            |(reference, keep, commits, snapshot)| Archive {
                reference,
                keep,
                commits,
                snapshot,
            },
        ),
    )
}

fn removal() -> impl Strategy<Value = Removal> {
    let parts = (
        worktree_removal(),
        proptest::option::of(text()),
        integration(),
        archive(),
    );
    let teardown = proptest::option::of(
        (texts(), env(), any::<bool>()).prop_map(|(commands, env, go_on)| Teardown {
            commands,
            vars: env.into_iter().collect(),
            go_on,
        }),
    );
    (parts, texts(), text(), texts(), teardown).prop_map(
        |((worktree, delete_branch, integrated, archive), discard, base, exclude_drop, teardown)| Removal {
            worktree,
            delete_branch,
            integrated,
            archive,
            discard,
            base,
            exclude_drop,
            teardown,
        },
    )
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (start(), wanted(), text(), hooks(), prepare()).prop_map(|(start, wanted, base, post_checkout, prepare)| {
            Action::Create {
                start,
                wanted,
                base,
                post_checkout,
                prepare,
            }
        }),
        (proptest::collection::vec(repair(), 0..3), wanted(), text())
            .prop_map(|(repairs, wanted, base)| Action::Update { repairs, wanted, base }),
        removal().prop_map(Action::Remove),
        (removal(), reasons()).prop_map(|(removal, reasons)| Action::Retain { removal, reasons }),
        (path(), text()).prop_map(|(from, base)| Action::Restore { from, base }),
        reasons().prop_map(|reasons| Action::Blocked { reasons }),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    (text(), text(), path(), action()).prop_map(|(session, branch, path, action)| Change {
        session,
        branch,
        path,
        action,
    })
}

fn housekeeping() -> impl Strategy<Value = Housekeeping> {
    let kind = prop_oneof![
        Just(LeftoverKind::LockFile),
        Just(LeftoverKind::Intent),
        Just(LeftoverKind::TempFile),
        Just(LeftoverKind::HalfRegistration),
        Just(LeftoverKind::LoneLink),
        Just(LeftoverKind::EmptyTrash),
    ];
    prop_oneof![
        (texts(), texts(), texts()).prop_map(|(old, new, legacy)| Housekeeping::Excludes { old, new, legacy }),
        (path(), kind).prop_map(|(path, kind)| Housekeeping::Leftover(Leftover { path, kind })),
        path().prop_map(|path| Housekeeping::EmptyTrash { path }),
        (text(), path()).prop_map(|(session, path)| Housekeeping::DropRecord { session, path }),
    ]
}

fn unmanaged() -> impl Strategy<Value = Unmanaged> {
    (text(), proptest::option::of(text()), proptest::option::of(path())).prop_map(|(session, branch, path)| Unmanaged {
        session,
        branch,
        path,
    })
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        proptest::collection::vec(change(), 0..4),
        proptest::collection::vec(unmanaged(), 0..2),
        proptest::collection::vec(housekeeping(), 0..3),
        any::<bool>(),
        proptest::collection::btree_set(any::<u16>(), 0..3),
    )
        .prop_map(|(changes, unmanaged, housekeeping, force, held_ports)| Plan {
            changes,
            unmanaged,
            housekeeping,
            force,
            held_ports: held_ports.into_iter().collect::<BTreeSet<u16>>(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_plan_reads_back_as_the_plan_written(plan in plan()) {
        let json = serde_json::to_string(&plan).expect("a plan serialises");
        let back: Plan = serde_json::from_str(&json).expect("and reads back");
        prop_assert_eq!(back, plan);
    }

    #[test]
    fn every_step_reads_back_as_written(change in change()) {
        let json = serde_json::to_string(&change).expect("a step serialises");
        let back: Change = serde_json::from_str(&json).expect("and reads back");
        prop_assert_eq!(back, change);
    }
}
