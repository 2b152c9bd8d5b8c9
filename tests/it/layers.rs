//! SPEC §11.1: two layers. `flowloom.local.toml` beside the manifest holds this clone's own
//! sessions; `new`, `rm`, `import`, `share` and `unshare` edit the right file, compare-and-
//! swap, comments kept; the committed manifest and `git status` stay clean.

use crate::common::TestEnv;

fn read(env: &TestEnv, rel: &str) -> String {
    std::fs::read_to_string(env.path(rel)).unwrap_or_default()
}

fn status_layers(env: &TestEnv) -> Vec<(String, serde_json::Value)> {
    let (code, out, err) = env.run(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    doc["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|r| (r["session"].as_str().unwrap_or_default().to_owned(), r["layer"].clone()))
        .collect()
}

#[test]
fn new_declares_in_the_local_layer_and_the_checkout_stays_clean() {
    let env = TestEnv::new();
    env.manifest("#:schema ./docs/flowloom.schema.json\n# team sessions\n[sessions.team] # ours\n");
    env.commit("manifest");
    let (code, out, err) = env.run(&["new", "mine", "--purpose", "my agent"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(std::path::Path::new(out.trim()).is_dir());
    assert_eq!(
        read(&env, "flowloom.toml"),
        "#:schema ./docs/flowloom.schema.json\n# team sessions\n[sessions.team] # ours\n",
        "the committed manifest is untouched"
    );
    assert!(read(&env, "flowloom.local.toml").contains("[sessions.mine]\npurpose = \"my agent\""));
    // Neither the local file nor the session shows up in git status.
    assert_eq!(env.git(&["status", "--porcelain", "--untracked-files=all"]), "");
    let exclude = std::fs::read_to_string(env.path(".git/info/exclude")).expect("exclude");
    assert!(exclude.lines().any(|l| l == "/flowloom.local.toml"), "{exclude}");
    // --shared writes the committed file.
    let (code, _, err) = env.run(&["new", "shared-one", "--shared"]);
    assert_eq!(code, 0, "{err}");
    assert!(read(&env, "flowloom.toml").contains("[sessions.shared-one]"));
    assert!(!read(&env, "flowloom.local.toml").contains("shared-one"));
    let layers = status_layers(&env);
    assert!(layers.contains(&("mine".into(), "local".into())), "{layers:?}");
    assert!(layers.contains(&("shared-one".into(), "shared".into())), "{layers:?}");
    assert!(layers.contains(&("team".into(), "shared".into())), "{layers:?}");
    // rm edits the layer that declares it, and only that one.
    let committed = read(&env, "flowloom.toml");
    let (code, _, err) = env.run(&["rm", "mine", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(!read(&env, "flowloom.local.toml").contains("mine"));
    assert_eq!(read(&env, "flowloom.toml"), committed);
    assert!(!env.branches().contains(&"session/mine".to_owned()));
    env.fsck();
}

#[test]
fn local_defaults_may_set_root_only_and_root_applies_to_every_session() {
    let env = TestEnv::new();
    env.manifest("[defaults]\nbranch = \"s/{id}\"\n[sessions.team]\n");
    env.write(
        "flowloom.local.toml",
        "[defaults]\nbase = \"develop\"\n[sessions.mine]\n",
    );
    let (code, out, err) = env.run(&["validate"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("flowloom.local.toml"), "{err}");
    assert!(err.contains("`base` cannot be set in the local layer"), "{err}");
    assert!(
        err.contains("only `root` may be set here"),
        "the span is labelled: {err}"
    );
    let (code, _, _) = env.run(&["plan"]);
    assert_eq!(code, 1);
    env.write(
        "flowloom.local.toml",
        "[defaults]\nroot = \"../{repo}.mine\"\n[sessions.mine]\n",
    );
    let (code, _, err) = env.run(&["validate"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("flowloom.local.toml"), "{err}");
    env.apply();
    // The local session inherits the committed [defaults]; the root is this clone's.
    let mine = env.tmp.path().join("repo.mine/shell-instance-mine");
    assert_eq!(env.git_in(&mine, &["rev-parse", "--abbrev-ref", "HEAD"]), "s/mine\n");
    assert!(env.tmp.path().join("repo.mine/shell-instance-team").is_dir());
}

#[test]
fn an_id_in_both_layers_points_at_both_files() {
    let env = TestEnv::new();
    env.manifest("[sessions.same]\npurpose = \"team\"\n");
    env.write("flowloom.local.toml", "# mine\n[sessions.same]\n");
    for command in [&["plan"][..], &["validate"], &["new", "other"]] {
        let (code, out, err) = env.run(command);
        assert_eq!(code, 1, "{command:?}: {out}\n{err}");
        assert!(err.contains("session `same` is declared in both"), "{err}");
        assert!(err.contains("declared in this clone's local layer"), "{err}");
        assert!(err.contains("declared in the committed manifest"), "{err}");
        assert!(err.contains("flowloom.local.toml:2"), "{err}");
        assert!(err.contains("flowloom.toml:1"), "{err}");
    }
    assert!(!read(&env, "flowloom.local.toml").contains("other"), "nothing written");
    assert!(!env.path("sessions").exists());
}

#[test]
fn share_and_unshare_move_the_table_and_leave_the_session_alone() {
    let env = TestEnv::new();
    env.manifest("# team\n[sessions.team]\n");
    let (code, out, err) = env.run(&["new", "mine", "--purpose", "mine"]);
    assert_eq!(code, 0, "{err}");
    let path = out.trim().to_owned();
    let head = env.git_in(std::path::Path::new(&path), &["rev-parse", "HEAD"]);
    let local = read(&env, "flowloom.local.toml");
    env.write(
        "flowloom.local.toml",
        &local.replace("[sessions.mine]", "# my notes\n[sessions.mine]"),
    );
    let (code, _, err) = env.run(&["share", "mine"]);
    assert_eq!(code, 0, "{err}");
    let committed = read(&env, "flowloom.toml");
    assert!(committed.starts_with("# team\n[sessions.team]\n"), "{committed}");
    assert!(
        committed.contains("# my notes\n[sessions.mine]\npurpose = \"mine\""),
        "{committed}"
    );
    assert!(!read(&env, "flowloom.local.toml").contains("[sessions.mine]"));
    let (code, out, _) = env.run(&["plan", "--detailed-exitcode", "--target", "mine"]);
    assert_eq!(code, 0, "nothing to do for a moved session: {out}");
    assert_eq!(env.git_in(std::path::Path::new(&path), &["rev-parse", "HEAD"]), head);
    let (code, _, err) = env.run(&["unshare", "mine"]);
    assert_eq!(code, 0, "{err}");
    assert!(!read(&env, "flowloom.toml").contains("mine"));
    assert!(read(&env, "flowloom.local.toml").contains("[sessions.mine]"));
    let (code, _, err) = env.run(&["unshare", "team"]);
    assert_eq!(code, 0, "{err}");
    // The comment above a table moves with it.
    assert_eq!(read(&env, "flowloom.toml"), "");
    assert!(read(&env, "flowloom.local.toml").contains("# team\n[sessions.team]"));
    assert!(std::path::Path::new(&path).is_dir());
    let (code, _, err) = env.run(&["share", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no session `nope`"), "{err}");
}

#[test]
fn an_edit_saved_while_new_runs_is_kept() {
    let env = TestEnv::new();
    env.manifest("#:schema x.json\n# header\n[sessions.team]\n");
    env.write("flowloom.local.toml", "# my header\n");
    // Between flowloom's read and its write, someone else saves both files.
    let hook = format!(
        "printf '[sessions.saved-meanwhile]\\n' >> '{local}'; printf '# saved meanwhile\\n' >> '{committed}'",
        local = env.path("flowloom.local.toml").display(),
        committed = env.path("flowloom.toml").display()
    );
    let (code, out, err) = crate::common::run(
        env.flowloom()
            .env("FLOWLOOM_TEST_BEFORE_MANIFEST_EDIT", &hook)
            .args(["new", "mine"]),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let local = read(&env, "flowloom.local.toml");
    assert!(local.starts_with("# my header\n"), "{local}");
    assert!(local.contains("[sessions.saved-meanwhile]"), "{local}");
    assert!(local.contains("[sessions.mine]"), "{local}");
    assert_eq!(
        read(&env, "flowloom.toml"),
        "#:schema x.json\n# header\n[sessions.team]\n# saved meanwhile\n"
    );
    // rm, share and import go through the same edit.
    let (code, _, err) = crate::common::run(
        env.flowloom()
            .env(
                "FLOWLOOM_TEST_BEFORE_MANIFEST_EDIT",
                format!(
                    "printf '[sessions.late]\\n' >> '{}'",
                    env.path("flowloom.local.toml").display()
                ),
            )
            .args(["share", "mine"]),
    );
    assert_eq!(code, 0, "{err}");
    assert!(read(&env, "flowloom.local.toml").contains("[sessions.late]"));
    assert!(read(&env, "flowloom.toml").contains("[sessions.mine]"));
}

#[test]
fn import_adopts_into_the_local_layer_unless_shared() {
    let env = TestEnv::new();
    env.manifest("[sessions.team]\n");
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "session/byhand",
        "sessions/shell-instance-byhand",
    ]);
    let (code, out, err) = env.run(&["import", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(read(&env, "flowloom.local.toml").contains("[sessions.byhand]"), "{out}");
    assert_eq!(read(&env, "flowloom.toml"), "[sessions.team]\n");
    env.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "session/other",
        "sessions/shell-instance-other",
    ]);
    let (code, _, err) = env.run(&["import", "--yes", "--shared"]);
    assert_eq!(code, 0, "{err}");
    assert!(read(&env, "flowloom.toml").contains("[sessions.other]"));
    assert!(!read(&env, "flowloom.local.toml").contains("other"));
}

/// The file's header (`#:schema`, comments, a blank line) belongs to the file, not to the
/// first session below it: removing (`rm`, `merge`) or moving (`unshare`) that session keeps
/// it where it is, with `[defaults]` or without.
#[test]
fn the_header_stays_when_the_first_session_goes() {
    for top in ["", "[defaults]\nbase = \"main\"\n\n"] {
        let header = "#:schema ./docs/flowloom.schema.json\n# Team sessions: ask before adding.\n\n";
        for (what, args) in [
            ("rm", &["rm", "--yes", "first"][..]),
            ("unshare", &["unshare", "first"]),
            ("merge", &["merge", "--yes", "first"]),
        ] {
            let env = TestEnv::new();
            env.manifest(&format!(
                "{header}{top}# about first\n[sessions.first]\npurpose = \"x\"\n\n# about second\n[sessions.second]\n"
            ));
            env.commit("manifest");
            env.apply();
            if what == "merge" {
                let wt = env.path("sessions/shell-instance-first");
                env.commit_file(&wt, "work.txt", "w\n", "work");
            }
            let (code, out, err) = env.run(args);
            assert_eq!(code, 0, "{what} {top:?}: {out}\n{err}");
            let text = read(&env, "flowloom.toml");
            assert!(
                text.starts_with(&format!("{header}{top}")),
                "{what} {top:?}: the header went:\n{text}"
            );
            assert!(!text.contains("[sessions.first]"), "{what}: {text}");
            assert!(text.contains("# about second\n[sessions.second]"), "{what}: {text}");
        }
    }
}

/// "No changes" names both files the sessions were read from once the local layer exists.
#[test]
fn no_changes_names_both_layers() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    let (code, out, _) = env.run(&["plan"]);
    assert_eq!(code, 0);
    assert!(!out.contains("No changes"), "{out}");
    env.apply();
    let (_, out, _) = env.run(&["plan"]);
    assert_eq!(out, "No changes. The sessions match flowloom.toml.\n");
    let (code, _, err) = env.run(&["new", "b"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = env.run(&["plan"]);
    assert_eq!(
        out,
        "No changes. The sessions match flowloom.toml and flowloom.local.toml.\n"
    );
}
