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

use toml_edit::{DocumentMut, Item, Table, value};

use crate::manifest::{Manifest, is_valid_id};
use crate::plan::{Plan, Unmanaged};
use crate::read::state::{State, Worktree};
use crate::store::metadata::{MetadataFile, Wanted};

/// Why a manifest file could not be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("the manifest is not valid TOML: {0}")]
    NotToml(String),
    #[error("`sessions` is not a table")]
    SessionsNotTable,
}

/// Why an unmanaged session cannot be adopted (`import` warns with it and goes on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skipped {
    #[error("skipped `{id}`: branch `{branch}` has no worktree; declare `[sessions.{id}]` yourself if you want one")]
    NoWorktree { id: String, branch: String },
    #[error("skipped {shown}: its HEAD is detached; switch it to a branch first")]
    Detached { shown: String },
    #[error("skipped {shown}: `{id}` is not a valid session id ([A-Za-z0-9][A-Za-z0-9._-]*, at most 64 characters)")]
    InvalidId { id: String, shown: String },
    #[error("skipped `{id}`: its folder {shown} is gone; `git worktree prune` drops the registration")]
    Gone { id: String, shown: String },
    #[error("skipped {shown}: the id `{id}` is already used by another session")]
    IdTaken { id: String, shown: String },
    #[error("skipped `{id}`: {shown} is not directly inside the worktrees root, which the manifest cannot express")]
    OutsideRoot { id: String, shown: String },
    #[error("skipped `{id}`: sessions/{id}/metadata.json in {shown} is not valid ({why}); fix or delete it first")]
    InvalidMetadata { id: String, shown: String, why: String },
}

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
pub fn candidates(manifest: &Manifest, state: &State, plan: &Plan) -> (Vec<Adoption>, Vec<Skipped>) {
    let mut adoptions = Vec::new();
    let mut skipped = Vec::new();
    let mut taken: BTreeSet<String> = manifest.sessions.keys().cloned().collect();
    for u in &plan.unmanaged {
        match candidate(manifest, state, u, &mut taken) {
            Ok(Some(adoption)) => adoptions.push(adoption),
            Ok(None) => {}
            Err(why) => skipped.push(why),
        }
    }
    (adoptions, skipped)
}

/// One unmanaged session as an adoption; `Err` says why it cannot be adopted, `None`: its
/// worktree was not read (nothing to say). `taken`: the ids in use, this one's added.
fn candidate(
    manifest: &Manifest,
    state: &State,
    u: &Unmanaged,
    taken: &mut BTreeSet<String>,
) -> Result<Option<Adoption>, Skipped> {
    let id = &u.session;
    let Some(path) = &u.path else {
        return Err(Skipped::NoWorktree {
            id: id.clone(),
            branch: u.branch.clone().unwrap_or_default(),
        });
    };
    let shown = manifest.relative(path);
    let Some(wt) = state.worktrees.get(path) else {
        return Ok(None);
    };
    let Some(branch) = &u.branch else {
        return Err(Skipped::Detached { shown });
    };
    if !is_valid_id(id) {
        return Err(Skipped::InvalidId { id: id.clone(), shown });
    }
    if wt.missing {
        return Err(Skipped::Gone { id: id.clone(), shown });
    }
    if !taken.insert(id.clone()) {
        return Err(Skipped::IdTaken { id: id.clone(), shown });
    }
    let Some(folder) = path
        .file_name()
        .and_then(|f| f.to_str())
        .filter(|_| path.parent() == Some(state.root.as_path()))
    else {
        return Err(Skipped::OutsideRoot { id: id.clone(), shown });
    };
    let purpose = match &wt.metadata {
        MetadataFile::Valid(m) => m.str_field("purpose").map(str::to_owned),
        MetadataFile::Invalid(why) => {
            taken.remove(id);
            return Err(Skipped::InvalidMetadata {
                id: id.clone(),
                shown,
                why: why.to_string(),
            });
        }
        MetadataFile::Missing => None,
    };
    let wanted = Wanted {
        session_id: id.clone(),
        purpose: purpose.clone().unwrap_or_else(|| id.clone()),
        working_directory: path.to_string_lossy().into_owned(),
        git_branch: branch.clone(),
        worktree_name: folder.to_owned(),
    };
    Ok(Some(Adoption {
        id: id.clone(),
        keys: keys(manifest, id, purpose.as_deref(), branch, folder),
        branch: branch.clone(),
        path: path.clone(),
        notes: notes(wt, id, &wanted),
    }))
}

/// The keys that make the next plan show no change: those the defaults do not give.
fn keys(
    manifest: &Manifest,
    id: &str,
    purpose: Option<&str>,
    branch: &str,
    folder: &str,
) -> Vec<(&'static str, String)> {
    let mut keys = Vec::new();
    if let Some(p) = purpose.filter(|p| *p != id) {
        keys.push(("purpose", p.to_owned()));
    }
    if branch != manifest.defaults.branch.expand(id) {
        keys.push(("branch", branch.to_owned()));
    }
    if folder != manifest.defaults.worktree.expand(id) {
        keys.push(("worktree", folder.to_owned()));
    }
    keys
}

/// What the next apply will still do to an adopted session's worktree.
fn notes(wt: &Worktree, id: &str, wanted: &Wanted) -> Vec<String> {
    let mut notes = Vec::new();
    match &wt.metadata {
        MetadataFile::Valid(m) if !wanted.matches(m) => {
            let differ: Vec<&str> = crate::store::metadata::DETERMINED
                .into_iter()
                .filter(|k| m.str_field(k) != wanted_field(wanted, k))
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
    notes
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
fn keeping_layout(source: &str, f: impl FnOnce(&str) -> Result<String, EditError>) -> Result<String, EditError> {
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
pub fn edit(source: &str, adoptions: &[Adoption]) -> Result<String, EditError> {
    let tables: Vec<(String, Table)> = adoptions
        .iter()
        .map(|a| {
            let mut t = Table::new();
            for (k, v) in &a.keys {
                t.insert(k, value(v.as_str()));
            }
            (a.id.clone(), t)
        })
        .collect();
    keeping_layout(source, |source| edit_text(source, tables))
}

/// `source` with `table` as `[sessions.<id>]` (its keys, values and comments), after
/// everything else: the other half of [`take_session`].
pub fn put_session(source: &str, id: &str, table: Table) -> Result<String, EditError> {
    keeping_layout(source, |source| edit_text(source, vec![(id.to_owned(), table)]))
}

/// `source` without `[sessions.<id>]`, and that table; `None` when it declares no such
/// session.
pub fn take_session(source: &str, id: &str) -> Result<Option<(String, Table)>, EditError> {
    let mut taken = None;
    let out = keeping_layout(source, |source| {
        let mut doc = parse(source)?;
        taken = match doc.get_mut("sessions") {
            Some(Item::Table(_)) => remove_table(&mut doc, id, false),
            Some(Item::Value(toml_edit::Value::InlineTable(sessions))) => {
                sessions.remove(id).and_then(|v| Item::Value(v).into_table().ok())
            }
            _ => None,
        };
        Ok(doc.to_string())
    })?;
    Ok(taken.map(|t| (out, t)))
}

fn parse(source: &str) -> Result<DocumentMut, EditError> {
    source
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::NotToml(e.message().to_owned()))
}

/// Give `table` and the tables inside it the positions from `next` on, in order.
fn place(table: &mut Table, next: &mut isize) {
    table.set_position(Some(*next));
    *next += 1;
    for (_, item) in table.iter_mut() {
        if let Item::Table(t) = item {
            place(t, next);
        }
    }
}

fn edit_text(source: &str, adoptions: Vec<(String, Table)>) -> Result<String, EditError> {
    let mut doc = parse(source)?;
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
            let mut next = last + 1;
            for (n, (id, mut t)) in adoptions.into_iter().enumerate() {
                place(&mut t, &mut next);
                t.set_implicit(false);
                // A moved table keeps the comments above it.
                let own = t
                    .decor()
                    .prefix()
                    .and_then(|p| p.as_str())
                    .unwrap_or_default()
                    .trim_start_matches('\n')
                    .to_owned();
                let lead = if n == 0 { lead.clone() } else { "\n".to_owned() };
                t.decor_mut().set_prefix(format!("{lead}{own}"));
                sessions.insert(&id, Item::Table(t));
            }
        }
        Item::Value(toml_edit::Value::InlineTable(sessions)) => {
            for (id, t) in adoptions {
                let mut inline = t.into_inline_table();
                inline.fmt();
                sessions.insert(&id, toml_edit::Value::InlineTable(inline));
            }
            doc.set_trailing(lead.trim_start_matches('\n').to_owned());
        }
        _ => return Err(EditError::SessionsNotTable),
    }
    Ok(doc.to_string())
}

/// `source` without the `[sessions.<id>]` table (and its comments), everything else
/// unchanged; `None` when it declares no such session.
pub fn remove_session(source: &str, id: &str) -> Result<Option<String>, EditError> {
    let mut removed = false;
    let out = keeping_layout(source, |source| {
        let (text, found) = remove_text(source, id)?;
        removed = found;
        Ok(text)
    })?;
    Ok(removed.then_some(out))
}

fn remove_text(source: &str, id: &str) -> Result<(String, bool), EditError> {
    let mut doc = parse(source)?;
    let removed = match doc.get_mut("sessions") {
        Some(Item::Table(_)) => remove_table(&mut doc, id, true).is_some(),
        Some(Item::Value(toml_edit::Value::InlineTable(sessions))) => sessions.remove(id).is_some(),
        _ => false,
    };
    Ok((doc.to_string(), removed))
}

/// Take `[sessions.<id>]` out of `doc`. The comments above the file's first table are
/// where toml_edit keeps the file's header (`#:schema`, what the file is for): when that
/// table goes, the header stays, above what now comes first. The header is what lies above
/// the last blank line, and the comment between that line and the table is the table's own
/// and goes with it. With no blank line, the `#:` lines are the header; `deleting` (not
/// moving) the table, all of it is.
fn remove_table(doc: &mut DocumentMut, id: &str, deleting: bool) -> Option<Table> {
    let first = first_table_position(doc.as_table());
    let sessions = doc.get_mut("sessions")?.as_table_mut()?;
    let mut table = sessions.remove(id)?.into_table().ok()?;
    let only_tables = doc.iter().all(|(_, item)| item.is_table() || item.is_array_of_tables());
    if !only_tables || table.position().is_none() || table.position() != first {
        return Some(table);
    }
    let prefix = table
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or_default()
        .to_owned();
    let split = match prefix.rfind("\n\n") {
        Some(at) => at + 2,
        // Without a blank line, the comments above the file's first table begin the file:
        // they are its header as much as that table's. A deleted table leaves them (a
        // comment kept is never work lost); a moved one takes them along but `#:` lines.
        None if deleting => prefix.len(),
        None => prefix
            .split_inclusive('\n')
            .take_while(|line| line.starts_with("#:"))
            .map(str::len)
            .sum(),
    };
    let (header, own) = prefix.split_at(split);
    if header.is_empty() {
        return Some(table);
    }
    table.decor_mut().set_prefix(own.to_owned());
    match first_table_mut(doc.as_table_mut()) {
        Some(next) => {
            let rest = next.decor().prefix().and_then(|p| p.as_str()).unwrap_or_default();
            let rest = if header.ends_with("\n\n") {
                rest.trim_start_matches('\n')
            } else {
                rest
            };
            let joined = format!("{header}{rest}");
            next.decor_mut().set_prefix(joined);
        }
        None => {
            let trailing = doc.trailing().as_str().unwrap_or_default().to_owned();
            doc.set_trailing(format!("{header}{trailing}"));
        }
    }
    Some(table)
}

/// The position of the first table written out (implicit ones are not).
fn first_table_position(table: &Table) -> Option<isize> {
    let mut first = (!table.is_implicit()).then(|| table.position()).flatten();
    for (_, item) in table.iter() {
        let inner = match item {
            Item::Table(t) => first_table_position(t),
            Item::ArrayOfTables(a) => a.iter().filter_map(Table::position).min(),
            _ => None,
        };
        first = match (first, inner) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    first
}

/// The table written out first (for its comments), if any; arrays of tables not counted.
fn first_table_mut(root: &mut Table) -> Option<&mut Table> {
    let at = first_table_position(root)?;
    find_table_at(root, at)
}

fn find_table_at(table: &mut Table, at: isize) -> Option<&mut Table> {
    if !table.is_implicit() && table.position() == Some(at) {
        return Some(table);
    }
    for (_, item) in table.iter_mut() {
        if let Item::Table(t) = item
            && let Some(found) = find_table_at(t, at)
        {
            return Some(found);
        }
    }
    None
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
