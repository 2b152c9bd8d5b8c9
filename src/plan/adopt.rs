//! `flowloom import`: which unmanaged sessions can be adopted, with which manifest keys, and
//! the manifest edit that declares them (SPEC §3, §5).
//!
//! A session is adopted under its existing id, and the table written for it has exactly the
//! keys that make the next plan show no change: `purpose` when its metadata has one other
//! than the id, `branch` and `worktree` when the defaults' templates would name them
//! differently. The edit goes through `toml_edit`, so every comment and the layout of the
//! file stay as they were; new tables go at the end of the file.

use std::collections::BTreeSet;
use std::path::PathBuf;

use toml_edit::{DocumentMut, InlineTable, Item, Table, value};

use crate::manifest::{Manifest, is_valid_id};
use crate::plan::Plan;
use crate::read::state::State;
use crate::store::metadata::{MetadataFile, Wanted};

/// One session to adopt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    pub id: String,
    /// The keys of its `[sessions.<id>]` table, in the order written.
    pub keys: Vec<(&'static str, String)>,
    /// Its branch (short name) and absolute worktree path, for the ownership record.
    pub branch: String,
    pub path: PathBuf,
    /// What the next `apply` will still do to it (metadata it will rewrite, folders it will
    /// create): not a reason to skip, but worth saying.
    pub notes: Vec<String>,
}

/// The unmanaged sessions that can be adopted, and a warning for each one that cannot.
pub fn candidates(manifest: &Manifest, state: &State, plan: &Plan) -> (Vec<Adoption>, Vec<String>) {
    let mut adoptions = Vec::new();
    let mut skipped = Vec::new();
    let mut taken: BTreeSet<String> = manifest.sessions.keys().cloned().collect();
    for u in &plan.unmanaged {
        let id = &u.session;
        let Some(path) = &u.path else {
            skipped.push(format!(
                "skipped `{id}`: branch `{}` has no worktree; declare `[sessions.{id}]` yourself if you want one",
                u.branch.as_deref().unwrap_or_default()
            ));
            continue;
        };
        let shown = manifest.relative(path);
        let Some(wt) = state.worktrees.get(path) else {
            continue;
        };
        let Some(branch) = &u.branch else {
            skipped.push(format!(
                "skipped {shown}: its HEAD is detached; switch it to a branch first"
            ));
            continue;
        };
        if !is_valid_id(id) {
            skipped.push(format!(
                "skipped {shown}: `{id}` is not a valid session id ([A-Za-z0-9][A-Za-z0-9._-]*, at most 64 characters)"
            ));
            continue;
        }
        if wt.missing {
            skipped.push(format!(
                "skipped `{id}`: its folder {shown} is gone; `git worktree prune` drops the registration"
            ));
            continue;
        }
        if !taken.insert(id.clone()) {
            skipped.push(format!(
                "skipped {shown}: the id `{id}` is already used by another session"
            ));
            continue;
        }
        let Some(folder) = path
            .file_name()
            .and_then(|f| f.to_str())
            .filter(|_| path.parent() == Some(state.root.as_path()))
        else {
            skipped.push(format!(
                "skipped `{id}`: {shown} is not directly inside the worktrees root, which the manifest cannot express"
            ));
            continue;
        };
        let purpose = match &wt.metadata {
            MetadataFile::Valid(m) => m.str_field("purpose").map(str::to_owned),
            MetadataFile::Invalid(why) => {
                skipped.push(format!(
                    "skipped `{id}`: sessions/{id}/metadata.json in {shown} is not valid ({why}); fix or delete it first"
                ));
                taken.remove(id);
                continue;
            }
            MetadataFile::Missing => None,
        };
        let mut keys = Vec::new();
        if let Some(p) = purpose.as_deref().filter(|p| *p != id) {
            keys.push(("purpose", p.to_owned()));
        }
        if *branch != manifest.defaults.branch.expand(id) {
            keys.push(("branch", branch.clone()));
        }
        if folder != manifest.defaults.worktree.expand(id) {
            keys.push(("worktree", folder.to_owned()));
        }
        let wanted = Wanted {
            session_id: id.clone(),
            purpose: purpose.clone().unwrap_or_else(|| id.clone()),
            working_directory: path.to_string_lossy().into_owned(),
            git_branch: branch.clone(),
            worktree_name: folder.to_owned(),
        };
        let mut notes = Vec::new();
        match &wt.metadata {
            MetadataFile::Valid(m) if !wanted.matches(m) => {
                let differ: Vec<&str> = crate::store::metadata::DETERMINED
                    .into_iter()
                    .filter(|k| m.str_field(k) != wanted_field(&wanted, k))
                    .collect();
                notes.push(format!(
                    "its metadata differs in {}: the next apply rewrites {}",
                    differ.join(", "),
                    if differ.len() == 1 { "it" } else { "them" }
                ));
            }
            MetadataFile::Missing => notes.push(format!(
                "it has no sessions/{id}/metadata.json: the next apply writes one"
            )),
            _ => {}
        }
        if !wt.has_artifacts {
            notes.push(format!("the next apply creates sessions/{id}/artifacts/"));
        }
        adoptions.push(Adoption {
            id: id.clone(),
            keys,
            branch: branch.clone(),
            path: path.clone(),
            notes,
        });
    }
    (adoptions, skipped)
}

fn wanted_field<'a>(w: &'a Wanted, key: &str) -> Option<&'a str> {
    Some(match key {
        "sessionId" => &w.session_id,
        "purpose" => &w.purpose,
        "workingDirectory" => &w.working_directory,
        "gitBranch" => &w.git_branch,
        "worktreeName" => &w.worktree_name,
        _ => return None,
    })
}

/// Edit `source` with `f`, keeping what toml_edit would not: a byte order mark and CRLF
/// line endings.
fn keeping_layout(source: &str, f: impl FnOnce(&str) -> Result<String, String>) -> Result<String, String> {
    let (bom, text) = match source.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", source),
    };
    let crlf = text.contains("\r\n");
    let normalised = if crlf {
        text.replace("\r\n", "\n")
    } else {
        text.to_owned()
    };
    let mut out = f(&normalised)?;
    if crlf {
        out = out.replace('\n', "\r\n");
    }
    Ok(format!("{bom}{out}"))
}

/// `source` with a `[sessions.<id>]` table added per adoption, everything else unchanged.
pub fn edit(source: &str, adoptions: &[Adoption]) -> Result<String, String> {
    keeping_layout(source, |source| edit_text(source, adoptions))
}

fn edit_text(source: &str, adoptions: &[Adoption]) -> Result<String, String> {
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e: toml_edit::TomlError| format!("the manifest is not valid TOML: {}", e.message()))?;
    if adoptions.is_empty() {
        return Ok(source.to_owned());
    }
    let before = doc.to_string();
    let last = max_position(doc.as_table());
    // Comments after the last key are the document's trailing text; new tables would be
    // rendered before them. Keep them where they are by making them the new tables' prefix.
    let mut lead = doc.trailing().as_str().unwrap_or_default().to_owned();
    doc.set_trailing("");
    if !before.is_empty() {
        if !before.ends_with('\n') {
            lead.push('\n');
        }
        if !before.ends_with("\n\n") {
            lead.push('\n');
        }
    }
    let sessions = doc.entry("sessions").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    match sessions {
        Item::Table(sessions) => {
            for (n, a) in adoptions.iter().enumerate() {
                let mut t = Table::new();
                for (k, v) in &a.keys {
                    t.insert(k, value(v.as_str()));
                }
                t.set_position(Some(last + 1 + n as isize));
                t.decor_mut()
                    .set_prefix(if n == 0 { lead.clone() } else { "\n".to_owned() });
                sessions.insert(&a.id, Item::Table(t));
            }
        }
        Item::Value(toml_edit::Value::InlineTable(sessions)) => {
            for a in adoptions {
                let mut t = InlineTable::new();
                for (k, v) in &a.keys {
                    t.insert(*k, v.as_str().into());
                }
                sessions.insert(&a.id, toml_edit::Value::InlineTable(t));
            }
            doc.set_trailing(lead.trim_start_matches('\n').to_owned());
        }
        _ => return Err("`sessions` is not a table".to_owned()),
    }
    Ok(doc.to_string())
}

/// `source` without the `[sessions.<id>]` table (and its comments), everything else
/// unchanged; `None` when it declares no such session.
pub fn remove_session(source: &str, id: &str) -> Result<Option<String>, String> {
    let mut removed = false;
    let out = keeping_layout(source, |source| {
        let (text, found) = remove_text(source, id)?;
        removed = found;
        Ok(text)
    })?;
    Ok(removed.then_some(out))
}

fn remove_text(source: &str, id: &str) -> Result<(String, bool), String> {
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e: toml_edit::TomlError| format!("the manifest is not valid TOML: {}", e.message()))?;
    let removed = match doc.get_mut("sessions") {
        Some(Item::Table(sessions)) => sessions.remove(id).is_some(),
        Some(Item::Value(toml_edit::Value::InlineTable(sessions))) => sessions.remove(id).is_some(),
        _ => false,
    };
    Ok((doc.to_string(), removed))
}

fn max_position(table: &Table) -> isize {
    let mut max = table.position().unwrap_or(0);
    for (_, item) in table.iter() {
        match item {
            Item::Table(t) => max = max.max(max_position(t)),
            Item::ArrayOfTables(a) => {
                for t in a.iter() {
                    max = max.max(max_position(t));
                }
            }
            _ => {}
        }
    }
    max
}

/// A unified diff of the manifest, for the confirmation prompt.
pub fn diff(name: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adoption(id: &str, keys: &[(&'static str, &str)]) -> Adoption {
        Adoption {
            id: id.to_owned(),
            keys: keys.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            branch: format!("session/{id}"),
            path: PathBuf::from("/r/sessions/x"),
            notes: Vec::new(),
        }
    }

    fn check(source: &str, adoptions: &[Adoption]) -> String {
        let out = edit(source, adoptions).expect("edit");
        assert!(
            out.starts_with(source),
            "the original text is kept byte for byte:\n{out}"
        );
        let m = Manifest::from_source(std::path::Path::new("/r/flowloom.toml"), out.clone()).expect("validates");
        for a in adoptions {
            assert!(m.sessions.contains_key(&a.id), "{out}");
        }
        out
    }

    #[test]
    fn appends_after_trailing_comments() {
        let source = "# top\n[defaults]\nbase = \"main\" # why\n\n[sessions.a] # first\n# the end\n";
        let out = check(
            source,
            &[
                adoption(
                    "4242-spike",
                    &[("purpose", "spike"), ("worktree", "shell-instance-4242")],
                ),
                adoption("b.c", &[]),
            ],
        );
        insta::assert_snapshot!(out, @r#"
        # top
        [defaults]
        base = "main" # why

        [sessions.a] # first
        # the end

        [sessions.4242-spike]
        purpose = "spike"
        worktree = "shell-instance-4242"

        [sessions."b.c"]
        "#);
    }

    #[test]
    fn creates_the_sessions_table_and_handles_a_missing_final_newline() {
        check("", &[adoption("x", &[])]);
        let out = check(
            "[defaults]\nbase = \"develop\"",
            &[adoption("x", &[("purpose", "P \"q\"")])],
        );
        insta::assert_snapshot!(out, @r#"
        [defaults]
        base = "develop"

        [sessions.x]
        purpose = 'P "q"'
        "#);
    }

    #[test]
    fn fills_an_inline_sessions_table() {
        let out = edit(
            "sessions = { a = {} } # inline\n",
            &[adoption("x", &[("purpose", "p")])],
        )
        .expect("edit");
        insta::assert_snapshot!(out, @r#"sessions = { a = {} , x = { purpose = "p" } } # inline"#);
        Manifest::from_source(std::path::Path::new("/r/flowloom.toml"), out).expect("validates");
    }

    #[test]
    fn nothing_to_adopt_changes_nothing() {
        assert_eq!(edit("x = 1 # c\n", &[]).expect("edit"), "x = 1 # c\n");
    }
}
