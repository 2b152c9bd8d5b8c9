//! Git fidelity beyond the checkout (the differential rows compare the results): what the
//! plan says about it.

use crate::common::TestEnv;

/// `branch.autoSetupMerge=always` tracks a local base; the plan says so before apply.
#[test]
fn plan_shows_the_upstream_branch_auto_setup_merge_gives() {
    let env = TestEnv::new();
    env.git(&["config", "branch.autoSetupMerge", "always"]);
    env.manifest("[sessions.x]\nbase = \"develop\"\n");
    let (code, out, err) = env.run(&["plan"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("new branch from develop") && out.contains("tracking develop"),
        "{out}"
    );
    let (code, _, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.git(&["config", "branch.session/x.remote"]).trim(), ".");
    assert_eq!(
        env.git(&["config", "branch.session/x.merge"]).trim(),
        "refs/heads/develop"
    );
}

/// A value git refuses blocks the creation with the reason, as `git branch` fails.
#[test]
fn invalid_branch_auto_setup_merge_blocks_with_the_reason() {
    let env = TestEnv::new();
    env.git(&["config", "branch.autoSetupMerge", "sometimes"]);
    env.manifest("[sessions.x]\n");
    let (code, out, err) = env.run(&["plan"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        format!("{out}{err}").contains("branch.autoSetupMerge is `sometimes`"),
        "{out}{err}"
    );
    assert!(!env.path("sessions").exists());
}

/// `v1` is a tag and a branch: `git worktree add -b` refuses it ("ambiguous object name"),
/// and so does flowloom, before anything is made, naming both refs.
#[test]
fn a_base_naming_a_tag_and_a_branch_is_refused_as_git_refuses_it() {
    let env = TestEnv::new();
    env.git(&["tag", "v1", "develop"]);
    env.git(&["branch", "v1", "main"]);
    let git = env.git_output(&env.repo, &["worktree", "add", "-q", "-b", "probe", "../probe", "v1"]);
    assert!(!git.status.success(), "git took the ambiguous base");
    env.manifest("[sessions.x]\nbase = \"v1\"\n");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_ne!(code, 0, "{out}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("ambiguous") && said.contains("refs/tags/v1") && said.contains("refs/heads/v1"),
        "{said}"
    );
    assert!(!env.path("sessions/shell-instance-x").exists(), "{said}");
    // Named in full, it is one ref again.
    env.manifest("[sessions.x]\nbase = \"refs/tags/v1\"\n");
    let (code, _, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{err}");
}
