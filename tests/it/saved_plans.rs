//! Saved plans (`plan --out FILE`, `apply FILE`, `show FILE`): the file holds the plan
//! itself; `apply FILE` carries out that plan only when nothing it relies on changed and it
//! is what flowloom plans now, step for step; `show FILE` prints it as `plan` printed it.

use serde_json::Value;

use crate::common::TestEnv;

fn read_json(env: &TestEnv, file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(env.path(file)).expect("read")).expect("json")
}

fn write_json(env: &TestEnv, file: &str, doc: &Value) {
    env.write(file, &serde_json::to_string_pretty(doc).expect("json"));
}

/// One line of stderr, box drawings and wrapping undone.
fn flat(err: &str) -> String {
    err.replace('│', "").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Two sessions made, `b` then undeclared: a plan that removes `b` and creates `c`.
fn removing_b() -> TestEnv {
    let env = TestEnv::new();
    env.manifest("[sessions.a]\n[sessions.b]\n");
    env.apply();
    env.manifest("[sessions.a]\n[sessions.c]\nbase = \"develop\"\n");
    env
}

#[test]
fn show_prints_a_saved_plan_as_plan_printed_it_text_and_json() {
    let env = removing_b();
    env.write("sessions/shell-instance-a/sessions/a/metadata.json", "{}\n");
    let (code, planned, err) = env.run(&["plan", "--out", "plan.json"]);
    assert_eq!(code, 0, "{err}");
    assert!(planned.contains("- b") && planned.contains("+ c"), "{planned}");
    let (code, shown, err) = env.run(&["show", "plan.json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(shown, planned);
    let (_, planned_json, _) = env.run(&["plan", "--json"]);
    let (code, shown_json, err) = env.run(&["show", "--json", "plan.json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(shown_json, planned_json);
    // The file is the plan's JSON document plus `saved`, which holds the plan itself.
    let mut doc = read_json(&env, "plan.json");
    assert_eq!(doc["saved"]["plan"]["changes"].as_array().map(Vec::len), Some(3));
    doc.as_object_mut().expect("object").remove("saved");
    assert_eq!(doc, serde_json::from_str::<Value>(&planned_json).expect("json"));
}

#[test]
fn apply_file_carries_out_the_saved_plan() {
    let env = removing_b();
    let (code, _, err) = env.run(&["plan", "--out", "plan.json"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = env.run(&["apply", "plan.json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let names: Vec<String> = env.worktrees().into_iter().map(|(p, _)| p).collect();
    assert_eq!(names, ["sessions/shell-instance-a", "sessions/shell-instance-c"]);
    assert!(!env.branches().contains(&"session/b".to_owned()));
    env.fsck();
}

#[test]
fn apply_file_refuses_a_step_added_by_hand_and_changes_nothing() {
    let env = removing_b();
    // The removal of `b`, as flowloom plans it...
    let (code, _, err) = env.run(&["plan", "--out", "removal.json"]);
    assert_eq!(code, 0, "{err}");
    let removal = read_json(&env, "removal.json")["saved"]["plan"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["session"] == "b")
        .cloned()
        .expect("b's removal");
    // ...added to a plan made while `b` is declared, which removes nothing.
    env.manifest("[sessions.a]\n[sessions.b]\n");
    let (code, _, err) = env.run(&["plan", "--out", "plan.json"]);
    assert_eq!(code, 0, "{err}");
    let mut doc = read_json(&env, "plan.json");
    doc["saved"]["plan"]["changes"]
        .as_array_mut()
        .expect("changes")
        .push(removal);
    write_json(&env, "plan.json", &doc);
    let before = (env.worktrees(), env.git(&["for-each-ref"]));
    let (code, out, err) = env.run(&["apply", "plan.json"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        flat(&err).contains("the saved plan is stale: its steps are not the ones flowloom plans for b (was the file edited?); nothing was applied"),
        "{err}"
    );
    assert!(flat(&err).contains("run `flowloom plan --out FILE` again"), "{err}");
    assert_eq!((env.worktrees(), env.git(&["for-each-ref"])), before);
    assert!(env.path("sessions/shell-instance-b/README.md").exists());
}

#[test]
fn apply_file_refuses_a_value_changed_by_hand() {
    let env = removing_b();
    let (code, _, err) = env.run(&["plan", "--out", "plan.json"]);
    assert_eq!(code, 0, "{err}");
    let mut doc = read_json(&env, "plan.json");
    // `c` would start elsewhere than planned.
    let changes = doc["saved"]["plan"]["changes"].as_array_mut().expect("changes");
    let c = changes.iter_mut().find(|c| c["session"] == "c").expect("c");
    c["action"]["start"]["reference"] = Value::from("main");
    write_json(&env, "plan.json", &doc);
    let (code, _, err) = env.run(&["apply", "plan.json"]);
    assert_eq!(code, 1, "{err}");
    assert!(flat(&err).contains("not the ones flowloom plans for c"), "{err}");
    assert_eq!(env.worktrees().len(), 2);
}

#[test]
fn apply_and_show_refuse_what_is_not_a_saved_plan_of_this_version() {
    let env = removing_b();
    let (code, _, err) = env.run(&["plan", "--out", "plan.json"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(env.path("plan.json")).expect("read");
    let mut old = read_json(&env, "plan.json");
    old["saved"]["version"] = Value::from(1);
    let mut no_plan = read_json(&env, "plan.json");
    no_plan["saved"].as_object_mut().expect("saved").remove("plan");
    let mut bad_step = read_json(&env, "plan.json");
    bad_step["saved"]["plan"]["changes"][0]["action"]["kind"] = Value::from("format_disk");
    env.write("truncated.json", &text[..text.len() / 2]);
    write_json(&env, "old.json", &old);
    write_json(&env, "no-plan.json", &no_plan);
    write_json(&env, "bad-step.json", &bad_step);
    let before = (env.worktrees(), env.git(&["for-each-ref"]));
    for (file, says) in [
        ("truncated.json", "is not a saved flowloom plan"),
        ("old.json", "was saved by another version of flowloom"),
        ("no-plan.json", "is not a saved flowloom plan"),
        ("bad-step.json", "is not a saved flowloom plan"),
    ] {
        for command in ["apply", "show"] {
            let (code, out, err) = env.run(&[command, file]);
            assert_eq!(code, 1, "{command} {file}: {out}\n{err}");
            assert_eq!(out, "", "{command} {file}");
            assert!(
                flat(&err).contains(&format!("{file} {says}")),
                "{command} {file}: {err}"
            );
        }
    }
    assert_eq!((env.worktrees(), env.git(&["for-each-ref"])), before);
}
