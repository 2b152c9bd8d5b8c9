//! The layering rules of the source tree (docs/ARCHITECTURE.md): which stage may import which.
//!
//! The stages run one way: `manifest` and `read` feed `plan`, `apply` carries the plan out,
//! `render` puts things into words, `store` keeps flowloom's own files, and `commands` wires
//! them together. Every `crate::` path in a file of one stage is checked against what that
//! stage may import. Imports that break a rule today are listed in `DEBTS`, each with the
//! reason it still stands: a new crossing fails this test, and so does a debt that has been
//! paid (remove it from the list), so the house cannot drift back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each stage may import (besides itself). Top-level leaf modules are stages of their own.
const ALLOWED: &[(&str, &[&str])] = &[
    ("manifest", &["fsutil", "error", "names"]),
    ("store", &["fsutil", "error", "names"]),
    ("read", &["manifest", "store", "fsutil", "error", "names", "hooks"]),
    ("plan", &["manifest", "read", "store", "names", "hooks"]),
    (
        "apply",
        &["plan", "store", "fsutil", "error", "names", "hooks", "escape"],
    ),
    // `status` holds the dashboard's rows, which render words as it words the plan.
    (
        "render",
        &["plan", "status", "manifest", "store", "names", "error", "cli", "escape"],
    ),
    ("cli", &[]),
    ("error", &[]),
    ("names", &[]),
    ("escape", &[]),
    ("fsutil", &["error"]),
    ("hooks", &["fsutil"]),
    ("status", &["manifest", "read", "plan", "store", "names", "error"]),
    // The command layer wires every stage together.
    ("commands", &["*"]),
    ("main", &["*"]),
    ("lib", &["*"]),
];

/// Crossings that stand today, `(stage, imported module)`, and why. Pay them off; never add.
const DEBTS: &[(&str, &str, &str)] = &[];

#[test]
fn stages_import_only_what_they_may() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let debts: BTreeSet<(String, String)> = DEBTS
        .iter()
        .map(|(from, to, _)| ((*from).to_owned(), (*to).to_owned()))
        .collect();

    let mut found: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let rel = file.strip_prefix(&src).expect("under src");
        let stage = stage_of(rel);
        let may = allowed.get(stage.as_str()).unwrap_or_else(|| {
            panic!(
                "{} is in no stage: add its folder to ALLOWED in tests/it/layering.rs",
                rel.display()
            )
        });
        if may.contains(&"*") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        for path in crate_paths(&text) {
            let target = path.split("::").next().unwrap_or_default();
            if target == stage || may.contains(&target) {
                continue;
            }
            let key = debt_key(&stage, &path, &debts);
            found.entry(key).or_default().insert(rel.display().to_string());
        }
    }

    let new: Vec<String> = found
        .iter()
        .filter(|(key, _)| !debts.contains(*key))
        .map(|((from, to), files)| format!("{from} imports {to} (in {})", join(files)))
        .collect();
    assert!(
        new.is_empty(),
        "imports that cross the stages (see docs/ARCHITECTURE.md): move the code to its stage, or pass the value through the plan:\n  {}",
        new.join("\n  ")
    );
    let paid: Vec<String> = debts
        .iter()
        .filter(|key| !found.contains_key(*key))
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    assert!(
        paid.is_empty(),
        "these debts are paid: remove them from DEBTS in tests/it/layering.rs:\n  {}",
        paid.join("\n  ")
    );
}

/// `src/plan/mod.rs` → `plan`; `src/status.rs` → `status`.
fn stage_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .expect("a path")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.strip_suffix(".rs").map_or(first.clone(), str::to_owned)
}

/// A debt is named either by the module (`read::inspect`) or the whole stage (`manifest`).
fn debt_key(stage: &str, path: &str, debts: &BTreeSet<(String, String)>) -> (String, String) {
    let mut parts = path.split("::");
    let top = parts.next().unwrap_or_default().to_owned();
    if let Some(second) = parts.next() {
        let module = format!("{top}::{second}");
        if debts.contains(&(stage.to_owned(), module.clone())) {
            return (stage.to_owned(), module);
        }
    }
    (stage.to_owned(), top)
}

/// Every `crate::a::b` path in the text, without its `crate::` prefix (code and doc links alike:
/// a doc link that names another stage is a dependency a reader has to follow too).
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `flowloom_crate::`, not ours
        }
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let path = path.trim_end_matches(':').to_owned();
        if !path.is_empty() {
            out.push(path);
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn join(files: &BTreeSet<String>) -> String {
    files.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[test]
fn crate_paths_reads_nested_and_grouped_names() {
    let text = "use crate::plan::{Plan, Step};\nlet x = crate::read::inspect::dirt(a);\nmy_crate::x";
    assert_eq!(
        crate_paths(text),
        ["plan::", "read::inspect::dirt"].map(|s| s.trim_end_matches(':').to_owned())
    );
}
