//! `status` as a dashboard, `show FILE`, and errors people read at a glance; git is the
//! oracle for every count and subject.

use crate::common::{TestEnv, run};

/// The tests' commits are dated 2026-01-01T00:00:00Z; "now" is fixed two days later, so
/// ages in snapshots do not move.
const NOW: &str = "2026-01-03T00:00:00Z";

fn status(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    run(env.flowloom().env("FLOWLOOM_NOW", NOW).args(args))
}

/// Four sessions: `done` squash-merged into main, `wip` with work of its own, `pushed`
/// one commit ahead of its upstream, and `kept` undeclared with unmerged work (retained).
fn dashboard() -> TestEnv {
    let env = TestEnv::new();
    env.manifest(
        "[sessions.done]\npurpose = \"Ship the parser\"\n[sessions.kept]\n[sessions.pushed]\n[sessions.wip]\n",
    );
    env.apply();
    let wt = |id: &str| env.path(&format!("sessions/shell-instance-{id}"));
    env.commit_file(&wt("done"), "parser.rs", "parse\n", "Parser, done");
    env.git(&["merge", "--squash", "-q", "session/done"]);
    env.git(&["commit", "-q", "-m", "squash of done"]);
    env.commit_file(
        &wt("wip"),
        "wip.txt",
        "wip\n",
        "a subject long enough that the table must cut it short before the path",
    );
    env.git_in(env.tmp.path(), &["init", "-q", "--bare", "origin.git"]);
    let origin = env.tmp.path().join("origin.git");
    env.git(&["remote", "add", "origin", &origin.display().to_string()]);
    env.commit_file(&wt("pushed"), "p.txt", "one\n", "pushed work");
    env.git_in(&wt("pushed"), &["push", "-q", "-u", "origin", "session/pushed"]);
    env.commit_file(&wt("pushed"), "p.txt", "two\n", "local work");
    env.commit_file(&wt("kept"), "k.txt", "k\n", "work only kept has");
    env.manifest("[sessions.done]\npurpose = \"Ship the parser\"\n[sessions.pushed]\n[sessions.wip]\n");
    let (code, out, err) = env.run(&["apply", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!wt("kept").exists() && env.branches().contains(&"session/kept".to_owned()));
    env
}

#[test]
fn status_is_a_dashboard_git_agrees_with() {
    let env = dashboard();
    let (code, out, err) = status(&env, &["status", "--wide"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "");
    insta::assert_snapshot!(out, @"
      SESSION  PURPOSE          BRANCH          STATE       DIRT  BASE   UPSTREAM                     AGE  LAST COMMIT                                                             PATH
    @ (main)                    main            dirty       ?1                                         2d  squash of done                                                          .
      done     Ship the parser  session/done    integrated        +1 -1                                2d  Parser, done                                                            sessions/shell-instance-done
      kept                      session/kept    retained          +1 -1                                2d  work only kept has                                                      (no worktree)
      pushed                    session/pushed  ok                +2 -1  origin/session/pushed +1 -0   2d  local work                                                              sessions/shell-instance-pushed
      wip                       session/wip     ok                +1 -1                                2d  a subject long enough that the table must cut it short before the path  sessions/shell-instance-wip
    ");

    let (code, out, err) = status(&env, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    let sessions = json["sessions"].as_array().expect("sessions");
    let states: Vec<(&str, &str)> = sessions
        .iter()
        .map(|s| (s["session"].as_str().expect("id"), s["state"].as_str().expect("state")))
        .collect();
    assert_eq!(
        states,
        [
            ("done", "integrated"),
            ("kept", "retained"),
            ("pushed", "ok"),
            ("wip", "ok")
        ]
    );
    for s in sessions {
        counts_agree_with_git(&env, s);
    }
    assert_eq!(sessions[0]["purpose"], "Ship the parser");
    assert!(sessions[1]["path"].is_null(), "a retained session has no worktree");
    assert!(
        sessions[1]["reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains("not reachable from base")),
        "{}",
        sessions[1]
    );
}

/// One session of `status --json` as git counts it: ahead of and behind its base, its last
/// commit, its age, and its upstream.
fn counts_agree_with_git(env: &TestEnv, s: &serde_json::Value) {
    let count = |range: String| {
        env.git(&["rev-list", "--count", &range])
            .trim()
            .parse::<u64>()
            .expect("n")
    };
    let branch = s["branch"].as_str().expect("branch");
    let base = s["base"].as_str().expect("base");
    assert_eq!(s["ahead"].as_u64(), Some(count(format!("{base}..{branch}"))), "{s}");
    assert_eq!(s["behind"].as_u64(), Some(count(format!("{branch}..{base}"))), "{s}");
    assert_eq!(
        s["last_commit"]["subject"].as_str(),
        Some(env.git(&["log", "-1", "--format=%s", branch]).trim_end()),
        "{s}"
    );
    assert_eq!(
        s["last_commit"]["time"].as_str(),
        Some(
            env.git(&[
                "log",
                "-1",
                "--format=%cd",
                "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
                branch
            ])
            .trim_end()
        ),
        "{s}"
    );
    assert_eq!(s["age_seconds"], 2 * 86_400, "{s}");
    match s["session"].as_str() {
        Some("pushed") => {
            let up = &s["upstream"];
            let reference = env.git(&["rev-parse", "--abbrev-ref", "session/pushed@{upstream}"]);
            assert_eq!(up["ref"].as_str(), Some(reference.trim_end()), "{s}");
            assert_eq!(
                up["ahead"].as_u64(),
                Some(count("session/pushed@{upstream}..session/pushed".into()))
            );
            assert_eq!(
                up["behind"].as_u64(),
                Some(count("session/pushed..session/pushed@{upstream}".into()))
            );
        }
        _ => assert!(s["upstream"].is_null(), "{s}"),
    }
}

#[test]
fn status_cuts_long_subjects_to_the_terminal_and_escapes_them() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let wt = env.path("sessions/shell-instance-a");
    env.commit_file(
        &wt,
        "a.txt",
        "a\n",
        "evil \u{1b}[2J subject \u{202e} that goes on and on and on and on and on",
    );
    let (_, out, _) = run(env
        .flowloom()
        .env("FLOWLOOM_NOW", NOW)
        .env("COLUMNS", "80")
        .arg("status"));
    assert!(!out.contains('\u{1b}') && !out.contains('\u{202e}'), "{out:?}");
    assert!(
        out.lines().all(|l| l.chars().count() <= 80),
        "fits in 80 columns:\n{out}"
    );
    insta::assert_snapshot!(out, @r#"
      SESSION  BRANCH     STATE  DIRT  BASE   AGE  LAST COMMIT
    @ (main)   main       dirty  ?1            2d  tools
      a        session/a  ok           +1 -0   2d  evil \u001b[2J subject \u202e th…
    hidden to fit: path (--wide shows all)
    "#);
}

#[test]
fn status_never_calls_unreadable_contents_ok() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    // An index git cannot read either.
    let index = env.path(".git/worktrees/shell-instance-a/index");
    std::fs::write(&index, "not an index").expect("write");
    let (code, out, err) = status(&env, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l.starts_with("  a ") && l.contains(" unchecked ")),
        "{out}"
    );
    assert!(err.contains("could not check"), "{err}");
    let (_, _, err) = status(&env, &["-q", "status"]);
    assert_eq!(err, "", "-q prints only errors and what was asked for");
}

#[test]
fn show_prints_a_saved_plan_as_plan_does_without_the_repository() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\nbase = \"develop\"\n");
    let (code, planned, err) = env.run(&["plan", "--out", "plan.json"]);
    assert_eq!(code, 0, "{err}");
    // From outside the repository: show reads the file and nothing else.
    let saved = env.path("plan.json");
    let outside = env.tmp.path().join("home");
    let (code, shown, err) = run(env.flowloom_in(&outside).args(["show", &saved.display().to_string()]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(shown, planned);
    let (code, json, _) = run(env
        .flowloom_in(&outside)
        .args(["show", "--json", &saved.display().to_string()]));
    assert_eq!(code, 0);
    let (_, planned_json, _) = env.run(&["plan", "--json"]);
    assert_eq!(json, planned_json);

    // Converged: the saved plan says so, as plan does.
    env.apply();
    let (_, planned, _) = env.run(&["plan", "--out", "plan.json"]);
    let (_, shown, _) = env.run(&["show", "plan.json"]);
    assert_eq!(shown, planned);
}

#[test]
fn show_refuses_what_is_not_a_saved_plan_in_one_line() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    for (file, text) in [
        ("flowloom.toml", None),
        ("plain.json", Some("{\"format_version\": 1, \"changes\": []}")),
        ("missing.json", None),
    ] {
        if let Some(text) = text {
            env.write(file, text);
        }
        let (code, out, err) = env.run(&["show", file]);
        assert_eq!(code, 1, "{file}: {err}");
        assert_eq!(out, "", "{file}");
        assert_eq!(err.trim_end().lines().count(), 1, "{file}: one line\n{err}");
        assert!(err.contains(file), "{file}: {err}");
    }
}

#[test]
fn errors_read_at_a_glance() {
    let env = TestEnv::new();
    // A usage error: one line and a hint, exit 1 (not clap's 2).
    let (code, out, err) = env.run(&["plna"]);
    assert_eq!((code, out.as_str()), (1, ""));
    insta::assert_snapshot!(err, @"
    error: unrecognized subcommand 'plna'
    hint: a similar subcommand exists: 'plan'
    ");
    let (code, _, err) = env.run(&["status", "--bogus"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(err, @"
    error: unexpected argument '--bogus' found
    hint: see `flowloom status --help`
    ");
    // No internal code header, no `Error:` prefix; the manifest's spans are kept.
    let (code, _, err) = env.run(&["-C", "/nonexistent-flowloom-dir", "plan"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(err, @"
    × cannot use /nonexistent-flowloom-dir as the working directory: No such file or directory (os
    │ error 2)
    help: pass an existing directory to -C
    ");
    env.manifest("[sessions.a]\nbase = 3\nfoo = 1\n");
    let (code, _, err) = env.run(&["plan"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(err, @"
     × flowloom.toml has 2 problems

     × `base` must be a string, found integer
      ╭─[flowloom.toml:2:8]
    1 │ [sessions.a]
    2 │ base = 3
      ·        ┬
      ·        ╰── expected a string
    3 │ foo = 1
      ╰────
     help: put the value in double quotes

     × unknown key `foo` in [sessions.a]
      ╭─[flowloom.toml:3:1]
    2 │ base = 3
    3 │ foo = 1
      · ─┬─
      ·  ╰── unknown key
      ╰────
     help: the keys known here are `purpose`, `base`, `branch`, `worktree`, `copy`, `setup`, `ports`,
           `env`, `teardown`, `merge`
    ");
    // Help is still help.
    let (code, out, _) = env.run(&["status", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("unchecked"), "{out}");
}

fn status_in(env: &TestEnv, dir: &std::path::Path, columns: &str, args: &[&str]) -> String {
    let (code, out, err) = run(env
        .flowloom_in(dir)
        .env("FLOWLOOM_NOW", NOW)
        .env("COLUMNS", columns)
        .args(args));
    assert_eq!(code, 0, "{err}");
    out
}

fn widest(out: &str) -> usize {
    out.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

#[test]
fn status_fits_80_100_and_200_columns_and_wide_shows_all() {
    let env = dashboard();
    let wip = env.path("sessions/shell-instance-wip");
    std::fs::write(wip.join("wip.txt"), "changed\n").expect("write");
    std::fs::write(wip.join("new.txt"), "new\n").expect("write");
    std::fs::write(wip.join("staged.txt"), "s\n").expect("write");
    env.git_in(&wip, &["add", "staged.txt"]);
    let at = |columns: &str| status_in(&env, &env.repo, columns, &["status"]);
    let (out80, out100, out200) = (at("80"), at("100"), at("200"));
    assert!(widest(&out80) <= 80 && widest(&out100) <= 100 && widest(&out200) <= 200);
    insta::assert_snapshot!("status_80", out80);
    insta::assert_snapshot!("status_100", out100);
    insta::assert_snapshot!("status_200", out200);
    let wide = status_in(&env, &env.repo, "80", &["status", "--wide"]);
    assert!(!wide.contains("hidden") && !wide.contains('…'), "{wide}");
    assert!(wide.contains("a subject long enough that the table must cut it short before the path"));
    // Dirt by kind, as git counts it.
    let porcelain = env.git_in(&wip, &["status", "--porcelain"]);
    let kinds = |pick: fn(&str) -> bool| porcelain.lines().filter(|l| pick(l)).count();
    let staged = kinds(|l| !l.starts_with('?') && !l.starts_with(' '));
    let modified = kinds(|l| l.as_bytes().get(1).is_some_and(|c| *c != b' ' && *c != b'?'));
    let untracked = kinds(|l| l.starts_with("??"));
    assert_eq!((staged, modified, untracked), (1, 1, 1), "{porcelain}");
    assert!(out200.contains("+1 !1 ?1"), "{out200}");
    let json: serde_json::Value =
        serde_json::from_str(&status_in(&env, &env.repo, "80", &["status", "--json"])).expect("json");
    let row = json["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["session"] == "wip")
        .expect("wip")
        .clone();
    assert_eq!(
        row["dirt"],
        serde_json::json!({"staged": 1, "modified": 1, "untracked": 1})
    );
    assert_eq!(row["dirty"], true);
    assert_eq!(row["in_use"], serde_json::json!([]));
    assert_eq!(json["main"]["branch"], "main");
    assert_eq!(json["main"]["path"], ".");
    assert_eq!(json["main"]["current"], true);
    // The manifest is untracked in the main worktree, as git says.
    assert_eq!(
        json["main"]["dirt"]["untracked"].as_u64(),
        Some(
            env.git(&["status", "--porcelain"])
                .lines()
                .filter(|l| l.starts_with("??"))
                .count() as u64
        )
    );
}

#[test]
fn the_session_the_command_runs_in_is_marked_from_any_folder_of_it() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n");
    env.apply();
    let a = env.path("sessions/shell-instance-a");
    let marked = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with('@'))
            .map(|l| l.split_whitespace().nth(1).unwrap_or_default().to_owned())
            .collect()
    };
    for dir in [a.clone(), a.join("src")] {
        let out = status_in(&env, &dir, "200", &["status"]);
        assert_eq!(marked(&out), ["a"], "{out}");
        // Paths are relative to where it runs.
        assert!(
            out.lines()
                .any(|l| l.starts_with("  b ") && l.contains("shell-instance-b")),
            "{out}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&status_in(&env, &dir, "80", &["status", "--json"])).expect("json");
        assert_eq!(json["sessions"][0]["current"], true);
        assert_eq!(json["sessions"][1]["current"], false);
        assert_eq!(json["main"]["current"], false);
    }
    let out = status_in(&env, &a.join("src"), "200", &["status"]);
    insta::assert_snapshot!(out, @r"
      SESSION  BRANCH     STATE  DIRT  BASE   AGE  LAST COMMIT  PATH
      (main)   main       dirty  ?1            2d  tools        ../../..
    @ a        session/a  ok           +0 -0   2d  tools        ..
      b        session/b  ok           +0 -0   2d  tools        ../../shell-instance-b
    ");
    let out = status_in(&env, &env.repo, "200", &["status"]);
    assert_eq!(marked(&out), ["(main)"], "{out}");
}

#[test]
fn a_process_working_in_a_session_shows_as_in_use() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n");
    env.apply();
    let b = env.path("sessions/shell-instance-b");
    let mut sleep = std::process::Command::new("sleep")
        .arg("60")
        .current_dir(b.join("src"))
        .spawn()
        .expect("sleep");
    let pid = sleep.id();
    let out = status_in(&env, &env.repo, "200", &["status"]);
    let json = status_in(&env, &env.repo, "200", &["status", "--json"]);
    let _ = sleep.kill();
    let _ = sleep.wait();
    let line = out.lines().find(|l| l.starts_with("  b ")).expect("row b");
    assert!(line.contains(&format!("{pid} sleep")), "{out}");
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        json["sessions"][1]["in_use"],
        serde_json::json!([{"pid": pid, "name": "sleep"}])
    );
    assert_eq!(json["sessions"][0]["in_use"], serde_json::json!([]));
}

#[test]
fn overlaps_list_the_paths_two_sessions_change_committed_or_not() {
    let env = TestEnv::new();
    env.manifest("[sessions.alpha]\n[sessions.beta]\n[sessions.gamma]\n[sessions.delta]\n");
    env.apply();
    let wt = |id: &str| env.path(&format!("sessions/shell-instance-{id}"));
    env.commit_file(&wt("alpha"), "src/lib.rs", "pub fn alpha() {}\n", "alpha's api");
    env.commit_file(&wt("alpha"), "notes.txt", "a\n", "alpha's notes");
    std::fs::write(wt("beta").join("src/lib.rs"), "pub fn beta() {}\n").expect("write");
    std::fs::write(wt("gamma").join("notes.txt"), "g\n").expect("write");
    env.commit_file(&wt("delta"), "delta.txt", "d\n", "delta alone");
    // The base moves on: what main changes is no session's change.
    env.commit_file(&env.repo, "src/lib.rs", "pub fn main_moved() {}\n", "main moves");
    let (code, out, err) = status(&env, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    // Git as the oracle: each session's changes against its merge base, plus its status.
    let mut changed: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for id in ["alpha", "beta", "delta", "gamma"] {
        let committed = env.git(&["diff", "--name-only", &format!("main...session/{id}")]);
        let porcelain = env.git_in(&wt(id), &["status", "--porcelain", "--untracked-files=all"]);
        let uncommitted = porcelain.lines().map(|l| l[3..].to_owned());
        for path in committed.lines().map(str::to_owned).chain(uncommitted) {
            let sessions = changed.entry(path).or_default();
            if !sessions.contains(&id.to_owned()) {
                sessions.push(id.to_owned());
            }
        }
    }
    let expected: Vec<serde_json::Value> = changed
        .into_iter()
        .filter(|(_, s)| s.len() > 1)
        .map(|(path, sessions)| serde_json::json!({"path": path, "sessions": sessions}))
        .collect();
    assert_eq!(json["overlaps"], serde_json::Value::Array(expected.clone()));
    assert_eq!(expected.len(), 2, "{expected:?}");
    let (_, out, _) = status(&env, &["status"]);
    insta::assert_snapshot!(out.split("\n\n").nth(1).unwrap_or_default(), @r"
    Overlaps: files more than one session changes
      notes.txt   alpha, gamma
      src/lib.rs  alpha, beta
    ");
}

#[test]
fn a_setup_that_failed_or_did_not_finish_is_never_ok() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n[sessions.c]\n");
    env.apply();
    for (id, setup) in [("a", "failed"), ("b", "incomplete")] {
        let file = env.path(&format!("sessions/shell-instance-{id}/sessions/{id}/metadata.json"));
        let text = std::fs::read_to_string(&file).expect("metadata");
        let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
        json["setup"] = setup.into();
        std::fs::write(&file, serde_json::to_string_pretty(&json).expect("json")).expect("write");
    }
    let (_, out, _) = status(&env, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("json");
    let got: Vec<(&str, &str, &str)> = json["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            (
                s["session"].as_str().unwrap_or_default(),
                s["state"].as_str().unwrap_or_default(),
                s["setup"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a", "setup failed", "failed"),
            ("b", "incomplete", "incomplete"),
            ("c", "ok", "ok")
        ]
    );
    let (_, out, _) = status(&env, &["status"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("  a ") && l.contains(" setup failed ")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("  b ") && l.contains(" incomplete ")),
        "{out}"
    );
}

#[test]
fn status_colors_by_state_unless_no_color_says_not() {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n");
    env.apply();
    let (_, plain, _) = status(&env, &["status"]);
    assert!(!plain.contains('\u{1b}'), "NO_COLOR is set: {plain:?}");
    let (_, colored, _) = status(&env, &["--color", "always", "status"]);
    assert!(colored.contains("\u{1b}[32mok"), "{colored:?}");
    let (_, never, _) = run(env
        .flowloom()
        .env_remove("NO_COLOR")
        .env("FLOWLOOM_NOW", NOW)
        .args(["--color", "never", "status"]));
    assert!(!never.contains('\u{1b}'), "{never:?}");
}
