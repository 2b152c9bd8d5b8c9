//! Plans for people (Terraform-like lines) and for programs (SPEC §9 JSON).

pub mod base;
pub mod output;
pub mod progress;
pub mod status;

use std::fmt::Write as _;

use serde::Serialize;

use crate::manifest::Manifest;
use crate::plan::{Action, Change, Housekeeping, Plan, Reason, Repair, Start, StartFrom, SwitchBlock, WorktreeRemoval};
use crate::render::output::{Printer, Style};
use crate::store::recover::LeftoverKind;

/// The human plan: one line per change, details indented below, then a summary line.
pub fn text(plan: &Plan, manifest: &dyn Places, p: &Printer) -> String {
    let mut out = String::new();
    if !plan.housekeeping.is_empty() {
        let _ = writeln!(out, "{}", p.paint(Style::Bold, "Housekeeping:"));
        for step in &plan.housekeeping {
            let _ = writeln!(
                out,
                "  {} {}",
                p.paint(Style::Update, "~"),
                crate::render::output::escape(&housekeeping_text(step, manifest))
            );
        }
        out.push('\n');
    }
    if plan.changes.is_empty() && plan.housekeeping.is_empty() {
        out.push_str(&p.paint(Style::Bold, "No changes."));
        out.push_str(" The sessions match ");
        out.push_str(&manifest_name(manifest));
        out.push_str(".\n");
    } else if !plan.changes.is_empty() {
        let rows: Vec<[String; 3]> = plan
            .changes
            .iter()
            .map(|c| [c.session.clone(), c.branch.clone(), manifest.relative(&c.path)])
            .collect();
        let widths = column_widths(&rows);
        for (change, row) in plan.changes.iter().zip(&rows) {
            change_line(&mut out, symbol(&change.action), row, &widths, &summary_of(change), p);
            details(&mut out, change, manifest, p);
        }
        out.push('\n');
    }
    if !plan.unmanaged.is_empty() {
        let rows: Vec<[String; 3]> = plan
            .unmanaged
            .iter()
            .map(|u| {
                [
                    u.session.clone(),
                    u.branch.clone().unwrap_or_else(|| "(detached)".into()),
                    u.path
                        .as_deref()
                        .map(|p| manifest.relative(p))
                        .unwrap_or_else(|| "(no worktree)".into()),
                ]
            })
            .collect();
        unmanaged_text(&mut out, &rows, p);
    }
    if !plan.changes.is_empty() || !plan.housekeeping.is_empty() {
        totals_line(&mut out, plan, p);
    }
    out
}

/// The plan's last line: how many changes of each kind.
fn totals_line(out: &mut String, plan: &Plan, p: &Printer) {
    let _ = write!(
        out,
        "{} {} to create, {} to update, {} to remove, {} blocked",
        p.paint(Style::Bold, "Plan:"),
        plan.count("create"),
        plan.count("update"),
        plan.count("remove"),
        plan.count("blocked"),
    );
    let retained = plan.count("retained");
    if retained > 0 {
        let _ = write!(out, ", {retained} retained");
    }
    if !plan.housekeeping.is_empty() {
        let _ = write!(out, ", {} housekeeping", plan.housekeeping.len());
    }
    out.push_str(".\n");
}

fn manifest_name(manifest: &dyn Places) -> String {
    manifest.manifest_name()
}

/// Where a plan's paths are shown from: the manifest's folder. A plan is worded with the
/// manifest it was made from, or, read back from a saved plan, with what the file says of it.
pub trait Places {
    /// `path` as the plan shows it (see [`Manifest::relative`]).
    fn relative(&self, path: &std::path::Path) -> String;
    /// The manifest's file name (with its local layer's, when there is one), for "No changes".
    fn manifest_name(&self) -> String;
}

impl Places for Manifest {
    fn relative(&self, path: &std::path::Path) -> String {
        Manifest::relative(self, path)
    }
    fn manifest_name(&self) -> String {
        let local = file_name(&self.layer_path(crate::manifest::Layer::Local));
        match (&self.local, self.committed_absent) {
            // SPEC §11.1, first use: the local layer alone.
            (Some(_), true) => local,
            (None, true) => format!("the defaults (there is no {})", file_name(&self.path)),
            (Some(_), false) => format!("{} and {local}", file_name(&self.path)),
            (None, false) => file_name(&self.path),
        }
    }
}

/// A saved plan's places: the manifest path and root it was made with.
impl Places for crate::plan::saved::Saved {
    fn relative(&self, path: &std::path::Path) -> String {
        let dir = self.manifest.parent().unwrap_or(std::path::Path::new(""));
        crate::manifest::relative(dir, &self.root, path)
    }
    fn manifest_name(&self) -> String {
        file_name(&self.manifest)
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "the manifest".into())
}

fn symbol(action: &Action) -> (&'static str, Style) {
    match action {
        Action::Create { .. } => ("+", Style::Create),
        Action::Update { .. } => ("~", Style::Update),
        Action::Remove(_) => ("-", Style::Remove),
        Action::Retain { removal, .. } if removal.worktree != WorktreeRemoval::None => ("-", Style::Remove),
        Action::Retain { .. } => ("=", Style::Dim),
        Action::Restore { .. } => ("~", Style::Update),
        Action::Blocked { .. } => ("!", Style::Blocked),
    }
}

pub fn start_text(start: &Start) -> String {
    let short = &start.commit[..start.commit.len().min(7)];
    let text = match start.from {
        StartFrom::Local => format!("existing branch {short}"),
        StartFrom::Remote => format!("from remote {} {short}", start.reference),
        StartFrom::Base => format!("new branch from {} {short}", start.reference),
    };
    match (&start.upstream, start.from) {
        (Some(up), _) if up.remote == "." => format!("{text}, tracking {}", branch_name(&up.merge)),
        (Some(up), StartFrom::Base) => format!("{text}, tracking {}/{}", up.remote, branch_name(&up.merge)),
        (None, StartFrom::Remote) => format!("{text}, not tracking it (branch.autoSetupMerge)"),
        _ => text,
    }
}

/// `refs/heads/x` → `x` (an upstream's merge ref, for the plan's text).
fn branch_name(merge: &str) -> String {
    output::escape(merge.strip_prefix("refs/heads/").unwrap_or(merge)).into_owned()
}

fn summary_of(change: &Change) -> String {
    match &change.action {
        Action::Create { start, .. } => start_text(start),
        Action::Update { repairs, .. } => repairs.iter().map(repair_text).collect::<Vec<_>>().join(", "),
        Action::Restore { .. } => "move its worktree back from the trash (its removal was interrupted)".to_owned(),
        Action::Retain { removal, .. } => match removal.worktree {
            WorktreeRemoval::Remove { .. } => "remove worktree, keep branch (not integrated)".to_owned(),
            WorktreeRemoval::Prune { .. } => "prune worktree, keep branch (not integrated)".to_owned(),
            WorktreeRemoval::Trashed { .. } => {
                "finish removing the worktree an interrupted apply moved to the trash, keep branch (not integrated)"
                    .to_owned()
            }
            WorktreeRemoval::None => "retained: branch kept until integrated (or --force)".to_owned(),
        },
        Action::Remove(r) => removal_text(r),
        Action::Blocked { .. } => "blocked".to_owned(),
    }
}

/// One repair of an update, as the plan's summary line lists it.
fn repair_text(repair: &Repair) -> String {
    match repair {
        Repair::Worktree { reset: true, .. } => "redo half-made worktree".to_owned(),
        Repair::Worktree { start, .. } => format!("recreate worktree ({})", start_text(start)),
        Repair::Metadata { old: None, .. } => "write metadata".to_owned(),
        Repair::Metadata { .. } => "update metadata".to_owned(),
        Repair::SwitchBranch { from, start } => match start.from {
            crate::plan::StartFrom::Local => format!("switch back from {from}"),
            _ => format!("switch back from {from} ({})", start_text(start)),
        },
        Repair::Artifacts => "create artifacts folder".to_owned(),
        Repair::Restore { .. } => "move its worktree back from the trash (a removal was interrupted)".to_owned(),
        Repair::Ports { names, .. } => format!(
            "allocate {} {}",
            crate::plan::plural(names.len(), "port"),
            names.join(", ")
        ),
        Repair::FinishRecord => "finish interrupted creation".to_owned(),
        Repair::Copies { finishing: true, .. } => "finish copy".to_owned(),
        Repair::Copies { items, .. } => {
            let names: Vec<String> = items.iter().map(copy_name).collect();
            format!("copies: {}", shown_list(&names))
        }
        Repair::RunSetup { commands, .. } if commands.is_empty() => "record setup finished".to_owned(),
        Repair::RunSetup { .. } => "run setup".to_owned(),
        Repair::Move { resumed: true, .. } => "finish moving worktree (a move was interrupted)".to_owned(),
        Repair::Move { from, across, .. } => format!(
            "move worktree from {}{}",
            output::escape(&from.to_string_lossy()),
            if *across {
                " (another file system: copied, verified, then the old folder deleted)"
            } else {
                ""
            }
        ),
    }
}

/// What a removal does, as the plan's summary line says it.
fn removal_text(r: &crate::plan::Removal) -> String {
    let mut parts = Vec::new();
    match r.worktree {
        WorktreeRemoval::Remove { .. } => parts.push("remove worktree"),
        WorktreeRemoval::Prune { .. } => parts.push("prune worktree (folder already gone)"),
        WorktreeRemoval::Trashed { .. } => {
            parts.push("finish removing the worktree (an interrupted apply moved it to the trash)")
        }
        WorktreeRemoval::None => {}
    }
    if r.delete_branch.is_some() {
        parts.push(match r.integrated {
            Some(crate::plan::Integration::SameTree) => "delete branch (same tree as its base)",
            Some(crate::plan::Integration::NothingToAdd) => "delete branch (its changes are in its base)",
            Some(crate::plan::Integration::PatchId) => "delete branch (merged by squash or rebase)",
            _ => "delete branch",
        });
    }
    if r.archive.is_some() || !r.discard.is_empty() {
        parts.push("forced");
    }
    parts.join(", ")
}

fn details(out: &mut String, change: &Change, manifest: &dyn Places, p: &Printer) {
    match &change.action {
        Action::Blocked { reasons } => {
            for r in reasons {
                let _ = writeln!(
                    out,
                    "      {}",
                    p.paint(
                        Style::Blocked,
                        &crate::render::output::escape(&reason_text(r, manifest))
                    )
                );
            }
        }
        Action::Retain { reasons, removal } => {
            for r in reasons {
                let _ = writeln!(
                    out,
                    "      {}",
                    p.paint(Style::Dim, &crate::render::output::escape(&reason_text(r, manifest)))
                );
            }
            teardown_details(out, removal, p);
        }
        Action::Create {
            post_checkout, prepare, ..
        } => {
            if let Some(hooks) = post_checkout {
                let _ = writeln!(
                    out,
                    "      {} {}",
                    p.paint(Style::Dim, "runs hook:"),
                    crate::render::output::escape(&hooks.describe("post-checkout"))
                );
            }
            let copy: Vec<String> = prepare.copy.iter().map(copy_name).collect();
            prepare_details(out, &copy, &prepare.ports, &prepare.setup, p);
        }
        Action::Remove(r) => {
            let archive = r
                .archive
                .as_ref()
                .map(|a| (a.reference.as_str(), a.snapshot.is_some(), a.commits));
            teardown_details(out, r, p);
            forced_details(out, archive, &r.discard, p);
        }
        Action::Update { repairs, .. } => {
            for r in repairs {
                if let Repair::Worktree { prepare, .. } = r {
                    let copy: Vec<String> = prepare.copy.iter().map(copy_name).collect();
                    prepare_details(out, &copy, &prepare.ports, &prepare.setup, p);
                }
                finishing_details(out, r, p);
                if let Repair::Metadata {
                    old: Some(old),
                    new: Some(new),
                } = r
                {
                    metadata_diff(out, &change.session, old, new, p);
                }
            }
        }
        _ => {}
    }
}

/// The change a metadata update makes, as a unified diff of `sessions/<id>/metadata.json`.
fn metadata_diff(out: &mut String, session: &str, old: &str, new: &str, p: &Printer) {
    let name = format!("sessions/{session}/metadata.json");
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(1)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string();
    for line in text.lines() {
        let style = match line.as_bytes().first() {
            Some(b'+') => Style::Create,
            Some(b'-') => Style::Remove,
            _ => Style::Dim,
        };
        let _ = writeln!(out, "      {}", p.paint(style, line));
    }
}

/// How a copied entry is named in plans and their JSON: folders end in `/`.
fn copy_name(item: &crate::plan::CopyItem) -> String {
    if item.dir {
        format!("{}/", item.path)
    } else {
        item.path.clone()
    }
}

/// Up to five names, escaped, then how many more.
fn shown_list(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut shown: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|c| crate::render::output::escape(c).into_owned())
        .collect();
    if names.len() > SHOWN {
        shown.push(format!("and {} more", names.len() - SHOWN));
    }
    shown.join(", ")
}

/// SPEC §11.3: what finishing a session copies and runs, and what it leaves alone.
fn finishing_details(out: &mut String, repair: &Repair, p: &Printer) {
    match repair {
        Repair::Copies {
            items, kept, finishing, ..
        } => {
            if *finishing {
                let copy: Vec<String> = items.iter().map(copy_name).collect();
                prepare_details(out, &copy, &[], &[], p);
            }
            if !kept.is_empty() {
                let _ = writeln!(
                    out,
                    "      {} {}",
                    p.paint(
                        Style::Dim,
                        "left alone (the session has them or git tracks them there, never overwritten):"
                    ),
                    shown_list(kept)
                );
            }
        }
        Repair::RunSetup { commands, done, .. } => {
            prepare_details(out, &[], &[], commands, p);
            if !done.is_empty() {
                let _ = writeln!(
                    out,
                    "      {} {}",
                    p.paint(Style::Dim, "already succeeded, not run again:"),
                    shown_list(done)
                );
            }
        }
        _ => {}
    }
}

/// SPEC §10: what a new session gets after its checkout, for plans and saved plans.
fn prepare_details(out: &mut String, copy: &[String], ports: &[String], setup: &[String], p: &Printer) {
    if !copy.is_empty() {
        let _ = writeln!(out, "      {} {}", p.paint(Style::Dim, "copies:"), shown_list(copy));
    }
    if !ports.is_empty() {
        let _ = writeln!(
            out,
            "      {} {}",
            p.paint(Style::Dim, "ports:"),
            crate::render::output::escape(&ports.join(", "))
        );
    }
    for command in setup {
        let _ = writeln!(
            out,
            "      {} {}",
            p.paint(Style::Dim, "runs setup:"),
            crate::render::output::escape(command)
        );
    }
}

/// SPEC §11.3: the teardown commands a removal runs first, in order; or, for a worktree
/// whose folder is gone, the ones that cannot run (nothing is left to run them in).
fn teardown_details(out: &mut String, removal: &crate::plan::Removal, p: &Printer) {
    let Some(teardown) = &removal.teardown else { return };
    if let WorktreeRemoval::Prune { .. } = removal.worktree {
        for command in &teardown.commands {
            let _ = writeln!(
                out,
                "      {} {}",
                p.paint(
                    Style::Dim,
                    "teardown not run (the folder is gone; run it by hand if needed):"
                ),
                crate::render::output::escape(command)
            );
        }
        return;
    }
    for command in &teardown.commands {
        let _ = writeln!(
            out,
            "      {} {}",
            p.paint(Style::Dim, "runs teardown:"),
            crate::render::output::escape(command)
        );
    }
    if teardown.go_on {
        let _ = writeln!(
            out,
            "      {}",
            p.paint(
                Style::Dim,
                "(--force: a failing teardown is reported and the removal goes on)"
            )
        );
    }
}

/// Columns are aligned up to this many characters; a longer cell (a branch name or a path
/// from the repository can be any length) sticks out instead of widening every row, so the
/// table stays linear in the size of what it shows.
pub(crate) const MAX_COLUMN: usize = 256;

/// What a forced removal keeps (archive ref, whether a snapshot, how many commits) and the
/// files it deletes, for plans and saved plans.
fn forced_details(out: &mut String, archive: Option<(&str, bool, usize)>, discard: &[String], p: &Printer) {
    if let Some((reference, snapshot, commits)) = archive {
        let what = match (snapshot, commits) {
            (true, 0) => "uncommitted files".to_owned(),
            (true, n) => format!("uncommitted files and {n} {}", crate::plan::plural(n, "commit")),
            (false, n) => format!("{n} {}", crate::plan::plural(n, "commit")),
        };
        let _ = writeln!(
            out,
            "      {} {what} kept under {reference} (restore: git branch <name> {reference})",
            p.paint(Style::Update, "archive:"),
            reference = crate::render::output::escape(reference),
        );
    }
    for f in discard {
        let _ = writeln!(
            out,
            "      {} {}",
            p.paint(Style::Remove, "deletes:"),
            crate::render::output::escape(f)
        );
    }
}

/// One change's line: symbol, session, branch, path, and what will be done.
fn change_line(
    out: &mut String,
    (symbol, style): (&str, Style),
    row: &[String; 3],
    widths: &[usize; 3],
    summary: &str,
    p: &Printer,
) {
    let _ = write!(
        out,
        "  {} {}  {}  {}",
        p.paint(style, symbol),
        p.paint(Style::Bold, &pad(&row[0], widths[0])),
        pad(&row[1], widths[1]),
        pad(&row[2], widths[2]),
    );
    if !summary.is_empty() {
        let _ = write!(
            out,
            "  {}",
            p.paint(Style::Dim, &crate::render::output::escape(summary))
        );
    }
    out.push('\n');
}

/// The unmanaged sessions' table (session, branch, path), for plans and saved plans.
fn unmanaged_text(out: &mut String, rows: &[[String; 3]], p: &Printer) {
    let _ = writeln!(
        out,
        "{} (in scope, neither declared nor created by flowloom; left alone, adopt with `flowloom import`):",
        p.paint(Style::Bold, "Unmanaged sessions")
    );
    let widths = column_widths(rows);
    for row in rows {
        let _ = writeln!(
            out,
            "  {} {}  {}  {}",
            p.paint(Style::Dim, "?"),
            pad(&row[0], widths[0]),
            pad(&row[1], widths[1]),
            crate::render::output::escape(&row[2])
        );
    }
    out.push('\n');
}

/// The width of each column of an aligned table, in characters as shown (escaped, see
/// [`pad`]), at most [`MAX_COLUMN`].
pub(crate) fn column_widths<'a, const N: usize>(rows: impl IntoIterator<Item = &'a [String; N]>) -> [usize; N] {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(shown_width(cell).min(MAX_COLUMN));
        }
    }
    widths
}

fn shown_width(text: &str) -> usize {
    crate::render::output::escape(text).chars().count()
}

/// `text` escaped as the terminal will show it (so that the width counted is the width
/// shown), then spaces up to `width` characters. By hand: `format!("{text:<width$}")`
/// panics when `width` is past 65,535.
pub(crate) fn pad(text: &str, width: usize) -> String {
    let text = crate::render::output::escape(text);
    let fill = width.saturating_sub(text.chars().count());
    let mut out = String::with_capacity(text.len() + fill);
    out.push_str(&text);
    out.extend(std::iter::repeat_n(' ', fill));
    out
}

// ---- JSON (SPEC §9) ----

#[derive(Serialize)]
pub struct JsonPlan {
    pub format_version: u32,
    pub changes: Vec<JsonChange>,
    pub unmanaged: Vec<JsonUnmanaged>,
    /// Steps outside any session (`info/exclude`, leftovers of a killed apply, the trash
    /// of an interrupted removal, ownership entries dropped), carried out first.
    pub housekeeping: Vec<JsonHousekeeping>,
    pub summary: JsonSummary,
    /// Only in a saved plan (`plan --out`): what `apply FILE` checks before it acts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved: Option<crate::plan::saved::Saved>,
    /// Only for `apply --json`: whether every change was carried out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<bool>,
    /// Only for `apply --json`: changes that failed, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<JsonError>,
}

#[derive(Serialize)]
pub struct JsonChange {
    pub action: &'static str,
    pub session: String,
    pub branch: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<JsonStart>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The machine name of each reason, in the same order (`dirty`, `unmerged`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reason_kinds: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repairs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_branch: Option<bool>,
    /// `retained` and `remove` changes: whether a worktree goes now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worktree: Option<bool>,
    /// `remove` changes: how a branch with commits its base does not reach is integrated
    /// anyway (`same_tree`, `nothing_to_add`, `patch_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integrated: Option<crate::plan::Integration>,
    /// Forced removals: where the commits that would become unreachable are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<JsonArchive>,
    /// Forced removals: the files deleted, relative to the worktree.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub discard: Vec<String>,
    /// `create` changes (SPEC §10): the ignored entries copied from the main worktree
    /// (folders end in `/`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub copy: Vec<String>,
    /// `create` changes: the names of the ports allocated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// `create` changes: the trusted setup commands run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<String>,
    /// `remove` and `retained` changes (SPEC §11.3): the trusted teardown commands run in
    /// the worktree right before it goes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub teardown: Vec<String>,
}

#[derive(Serialize)]
pub struct JsonArchive {
    #[serde(rename = "ref")]
    pub reference: String,
    pub commit: String,
    pub commits: usize,
    /// Whether the worktree's uncommitted files are committed into the archive first.
    pub snapshot: bool,
}

#[derive(Serialize)]
pub struct JsonStart {
    pub from: &'static str,
    #[serde(rename = "ref")]
    pub reference: String,
    pub commit: String,
}

#[derive(Serialize)]
pub struct JsonUnmanaged {
    pub session: String,
    pub branch: Option<String>,
    pub path: Option<String>,
}

#[derive(Serialize)]
pub struct JsonHousekeeping {
    pub action: &'static str,
    pub path: String,
    pub description: String,
}

#[derive(Serialize)]
pub struct JsonSummary {
    pub create: usize,
    pub update: usize,
    pub remove: usize,
    pub blocked: usize,
    /// Orphans whose branch is kept because it is not integrated.
    pub retained: usize,
}

#[derive(Serialize)]
pub struct JsonError {
    pub session: String,
    pub error: String,
}

pub fn json(plan: &Plan, manifest: &dyn Places) -> JsonPlan {
    JsonPlan {
        format_version: 1,
        changes: plan.changes.iter().map(|c| json_change(c, manifest)).collect(),
        unmanaged: plan
            .unmanaged
            .iter()
            .map(|u| JsonUnmanaged {
                session: u.session.clone(),
                branch: u.branch.clone(),
                path: u.path.as_deref().map(|p| manifest.relative(p)),
            })
            .collect(),
        housekeeping: plan
            .housekeeping
            .iter()
            .map(|h| json_housekeeping(h, manifest))
            .collect(),
        summary: JsonSummary {
            create: plan.count("create"),
            update: plan.count("update"),
            remove: plan.count("remove"),
            blocked: plan.count("blocked"),
            retained: plan.count("retained"),
        },
        saved: None,
        applied: None,
        errors: Vec::new(),
    }
}

/// One change as JSON: what every change shows, then what its action adds.
fn json_change(c: &Change, manifest: &dyn Places) -> JsonChange {
    let mut j = JsonChange {
        action: c.action.kind(),
        session: c.session.clone(),
        branch: c.branch.clone(),
        path: manifest.relative(&c.path),
        start: None,
        reasons: Vec::new(),
        reason_kinds: Vec::new(),
        repairs: Vec::new(),
        delete_branch: None,
        worktree: None,
        integrated: None,
        archive: None,
        discard: Vec::new(),
        copy: Vec::new(),
        ports: Vec::new(),
        setup: Vec::new(),
        teardown: Vec::new(),
    };
    match &c.action {
        Action::Create { start, prepare, .. } => {
            j.start = Some(json_start(start));
            j.copy = prepare.copy.iter().map(copy_name).collect();
            j.ports = prepare.ports.clone();
            j.setup = prepare.setup.clone();
        }
        Action::Update { repairs, .. } => json_repairs(&mut j, repairs),
        Action::Restore { .. } => j.repairs = vec!["restore".to_owned()],
        Action::Retain { removal, reasons } => {
            j.delete_branch = Some(false);
            j.worktree = Some(removal.worktree != WorktreeRemoval::None);
            json_reasons(&mut j, reasons, manifest);
            j.teardown = teardown_run(removal);
        }
        Action::Remove(r) => {
            j.teardown = teardown_run(r);
            j.delete_branch = Some(r.delete_branch.is_some());
            j.worktree = Some(r.worktree != WorktreeRemoval::None);
            j.integrated = r.integrated;
            j.archive = r.archive.as_ref().map(|a| JsonArchive {
                reference: a.reference.clone(),
                commit: a.keep.first().cloned().unwrap_or_default(),
                commits: a.commits,
                snapshot: a.snapshot.is_some(),
            });
            j.discard = r.discard.clone();
        }
        Action::Blocked { reasons } => json_reasons(&mut j, reasons, manifest),
    }
    j
}

/// An update's repairs by name, and the start, copies and setup they carry.
fn json_repairs(j: &mut JsonChange, repairs: &[Repair]) {
    for r in repairs {
        if let Repair::Worktree { start, .. } | Repair::SwitchBranch { start, .. } = r {
            j.start = Some(json_start(start));
        }
        if let Repair::Worktree { prepare, .. } = r {
            j.copy = prepare.copy.iter().map(copy_name).collect();
            j.setup = prepare.setup.clone();
        }
        if let Repair::Copies { items, .. } = r {
            j.copy = items.iter().map(copy_name).collect();
        }
        if let Repair::RunSetup { commands, .. } = r {
            j.setup = commands.clone();
        }
    }
    j.repairs = repairs.iter().map(|r| repair_kind(r).to_owned()).collect();
}

/// The teardown commands a removal runs (none for a worktree whose folder is gone).
fn teardown_run(removal: &crate::plan::Removal) -> Vec<String> {
    match removal.worktree {
        WorktreeRemoval::Prune { .. } => Vec::new(),
        _ => removal.teardown.iter().flat_map(|t| t.commands.clone()).collect(),
    }
}

/// A repair's machine name.
fn repair_kind(repair: &Repair) -> &'static str {
    match repair {
        Repair::Worktree { .. } => "worktree",
        Repair::Metadata { .. } => "metadata",
        Repair::SwitchBranch { .. } => "switch",
        Repair::Artifacts => "artifacts",
        Repair::Restore { .. } => "restore",
        Repair::Ports { .. } => "ports",
        Repair::FinishRecord => "record",
        Repair::Copies { .. } => "copies",
        Repair::RunSetup { .. } => "setup",
        Repair::Move { .. } => "move",
    }
}

fn json_reasons(j: &mut JsonChange, reasons: &[Reason], manifest: &dyn Places) {
    j.reasons = reasons.iter().map(|r| reason_text(r, manifest)).collect();
    j.reason_kinds = reasons.iter().map(reason_kind).collect();
}

fn json_housekeeping(h: &Housekeeping, manifest: &dyn Places) -> JsonHousekeeping {
    JsonHousekeeping {
        action: housekeeping_kind(h),
        path: match h {
            Housekeeping::Excludes { .. } => "info/exclude".to_owned(),
            Housekeeping::Leftover(l) => l.path.to_string_lossy().into_owned(),
            Housekeeping::EmptyTrash { path } | Housekeeping::DropRecord { path, .. } => manifest.relative(path),
            Housekeeping::FinishMove { to, .. } | Housekeeping::RepairLinks { to, .. } => manifest.relative(to),
        },
        description: housekeeping_text(h, manifest),
    }
}

fn json_start(start: &Start) -> JsonStart {
    JsonStart {
        from: start.from.as_str(),
        reference: start.reference.clone(),
        commit: start.commit.clone(),
    }
}

pub fn to_json_string(value: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("plain data serialises");
    s.push('\n');
    s
}

// ---- words ----

/// A blocked reason in words.
pub fn reason_text(reason: &Reason, manifest: &dyn Places) -> String {
    let shown = |p: &std::path::Path| manifest.relative(p);
    match reason {
        Reason::BranchCheckedOutElsewhere { branch, path } => match shown(path) {
            // The manifest's own folder: the main worktree, as a rule.
            here if here.is_empty() => format!(
                "branch `{branch}` is checked out in the main worktree ({})",
                path.display()
            ),
            there => format!("branch `{branch}` is checked out in {there}"),
        },
        Reason::FolderInTheWay { path } => {
            format!("{} exists and is not a registered worktree; move it away", shown(path))
        }
        Reason::BaseUnresolved { base, why } => base::reason_text(base, why),
        Reason::BaseUnread { base } => format!("base `{base}` was not read"),
        Reason::HalfMadeHoldsOtherFiles { files } => half_made_text(files),
        Reason::LockedWithFolderGone { lock } => {
            format!(
                "worktree folder is gone but the worktree is locked ({})",
                lock_text(lock)
            )
        }
        Reason::SwitchBack { from, to, path, why } => switch_back_text(from.as_deref(), to, path, why, manifest),
        Reason::MetadataInvalid { id, why } => {
            format!("sessions/{id}/metadata.json is not valid ({why}); fix or delete it")
        }
        Reason::UnsafeSessionFolder { why } => {
            format!("flowloom never writes through a symlink or into a special file: {why}")
        }
        Reason::Locked { lock } => format!("worktree is locked ({})", lock_text(lock)),
        Reason::StartedInside => "flowloom was started inside this worktree".to_owned(),
        Reason::Dirty { what, count } => format!(
            "worktree has {count} {} {}",
            what.as_str(),
            crate::plan::plural(*count, "file")
        ),
        Reason::SessionFiles { id, count } => format!(
            "sessions/{id}/ holds {count} {} (artifacts)",
            crate::plan::plural(*count, "file")
        ),
        Reason::Unreadable { why } => format!("worktree contents could not be checked ({why})"),
        Reason::Unmerged {
            branch,
            count,
            base,
            upstream,
        } => unmerged_text(branch, *count, base, upstream.as_deref()),
        Reason::UnmergedUnchecked { branch } => format!("branch `{branch}` was not checked for unmerged commits"),
        Reason::Submodule { what } => format!(
            "worktree holds an initialized submodule ({what}), whose repository would be deleted with it; \
             deinitialize it first (git submodule deinit)"
        ),
        Reason::Process { pid, name, uses } => format!("process {pid} ({name}) is using it ({uses})"),
        Reason::DetachedCommits { count } => format!(
            "its HEAD is detached on {count} {} that no branch or tag reaches",
            crate::plan::plural(*count, "commit")
        ),
        Reason::ForeignGit { why } => {
            format!("{why}; flowloom removes only what git would (git worktree remove refuses it too)")
        }
        Reason::NestedRepository {
            path,
            unpushed,
            uncommitted,
        } => nested_repository_text(path, *unpushed, *uncommitted),
        Reason::CannotCheckOut { why } => format!("cannot check it out as git would: {why}"),
        Reason::SessionFolderTracked { path } => session_folder_tracked_text(path),
        Reason::SetupNotTrusted { script } => setup_not_trusted_text(script),
        Reason::ArchiveRefInTheWay { reference } => archive_in_the_way_text(reference),
        Reason::TeardownNotTrusted { script } => teardown_not_trusted_text(script),
        Reason::CommittedMissing { file } => committed_missing_text(&shown(file)),
        Reason::TeardownFailed { command, status } => teardown_failed_text(command, status),
        Reason::NewSincePlan { files } => format!(
            "it holds {} {} the plan did not show ({})",
            files.len(),
            crate::plan::plural(files.len(), "file"),
            first_three(files)
        ),
    }
}

/// SPEC §11.1: an orphan kept while `file`, the committed manifest, is missing.
fn committed_missing_text(file: &str) -> String {
    format!(
        "kept while {file} is missing: it may declare this session (an older commit checked out? the file \
         stashed?); bring the file back, or remove the session by name with `flowloom rm`"
    )
}

/// The base tracks a file at `path`, where the session's own files go.
fn session_folder_tracked_text(path: &str) -> String {
    format!(
        "its base tracks {}, where flowloom keeps the session's own files: git would check the committed \
         file out and flowloom never overwrites it; remove it from the branch (git rm --cached), or name \
         the session differently",
        crate::render::output::escape(path)
    )
}

/// A half-made checkout (a killed apply's) that now holds files its checkout did not write.
fn half_made_text(files: &[String]) -> String {
    format!(
        "a killed apply left this checkout half-made, and it now holds {} {} its checkout did not write ({}); \
         move {} away, then apply again",
        files.len(),
        crate::plan::plural(files.len(), "file"),
        first_three(files),
        if files.len() == 1 { "it" } else { "them" }
    )
}

/// The first three of a list of files, for a reason that names some of them.
fn first_three(files: &[String]) -> String {
    files.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
}

/// A worktree on another branch (or detached): where it is, why flowloom does not switch it back
/// itself, and the git command that does.
fn switch_back_text(
    from: Option<&str>,
    to: &str,
    path: &std::path::Path,
    why: &SwitchBlock,
    manifest: &dyn Places,
) -> String {
    let on = match from {
        Some(from) => format!("worktree is checked out on `{from}` instead of `{to}`"),
        None => "worktree has a detached HEAD, whose commits only it may hold".to_owned(),
    };
    let why = match why {
        SwitchBlock::Detached => String::new(),
        SwitchBlock::CheckedOutElsewhere { path } => {
            format!(" and branch `{to}` is checked out in {}", manifest.relative(path))
        }
        SwitchBlock::Uncommitted => ", with uncommitted changes".to_owned(),
        SwitchBlock::Unchecked => "; its contents were not checked".to_owned(),
        SwitchBlock::Start { reason } => format!(": {}", reason_text(reason, manifest)),
    };
    format!(
        "{on}{why}; switch it back by hand (git -C {} switch {to})",
        manifest.relative(path)
    )
}

fn unmerged_text(branch: &str, count: usize, base: &str, upstream: Option<&str>) -> String {
    let commits = crate::plan::plural(count, "commit");
    match upstream {
        Some(u) => {
            format!("branch `{branch}` has {count} {commits} reachable neither from base `{base}` nor from `{u}`")
        }
        None => format!("branch `{branch}` has {count} {commits} not reachable from base `{base}`"),
    }
}

fn nested_repository_text(path: &str, unpushed: Option<usize>, uncommitted: usize) -> String {
    let path = crate::render::output::escape(path);
    match unpushed {
        Some(0) => format!(
            "it holds a repository of its own ({path}) with {uncommitted} uncommitted {} (changed, staged or \
             untracked), which would be lost even with --force; commit and push them or move it out first",
            crate::plan::plural(uncommitted, "file")
        ),
        Some(n) => format!(
            "it holds a repository of its own ({path}) with {n} {} none of its remote-tracking refs reaches, \
             which would be lost even with --force; push them or move it out first",
            crate::plan::plural(n, "commit")
        ),
        None => format!(
            "it holds a repository of its own or a folder ({path}) that could not be read, so nothing \
             vouches for the history it may hold; make it readable or move it out first"
        ),
    }
}

/// SPEC §11.3: a removal whose teardown this machine does not trust.
fn teardown_not_trusted_text(script: &crate::store::machine::SetupScript) -> String {
    let one = script.teardown.len() == 1;
    format!(
        "its teardown {} not trusted on this machine, so it neither runs nor is skipped: {}; review {} \
         and run `flowloom trust` (one trust covers setup and teardown)",
        if one { "command is" } else { "commands are" },
        script
            .teardown
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
        if one { "it" } else { "them" }
    )
}

/// Setup commands not trusted here: each command, the environment they would run with, and how to
/// trust them.
fn archive_in_the_way_text(reference: &str) -> String {
    format!(
        "its commits are archived under refs/flowloom/archive/, but the ref `{reference}` is in the way (a ref \
         cannot be a folder of others); rename or delete it (`git update-ref -d {reference}`) and apply again"
    )
}

fn teardown_failed_text(command: &str, status: &str) -> String {
    format!(
        "its teardown command `{command}` failed ({status}; its output is above), so the session was left as it \
         was; fix it, or remove with --force, which runs the teardown and goes on"
    )
}

fn setup_not_trusted_text(script: &crate::store::machine::SetupScript) -> String {
    let commands = &script.commands;
    let (what, listed) = if commands.is_empty() {
        ("teardown", &script.teardown)
    } else {
        ("setup", commands)
    };
    let mut text = format!(
        "its {what} {} not trusted on this machine, so nothing of it runs: {}",
        if listed.len() == 1 {
            "command is"
        } else {
            "commands are"
        },
        listed.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
    );
    if !script.env.is_empty() {
        text.push_str(&format!(
            " (with {})",
            script
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // One trust covers the teardown too: what is trusted is shown whole.
    if !commands.is_empty() && !script.teardown.is_empty() {
        text.push_str(&format!(
            ", and its teardown: {}",
            script
                .teardown
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let count = commands.len() + script.teardown.len();
    text.push_str(&format!(
        "; review {} and run `flowloom trust`",
        if count == 1 { "it" } else { "them" }
    ));
    text
}

/// A blocked reason's machine name.
pub fn reason_kind(reason: &Reason) -> &'static str {
    match reason {
        Reason::BranchCheckedOutElsewhere { .. } => "branch_checked_out_elsewhere",
        Reason::FolderInTheWay { .. } => "folder_in_the_way",
        Reason::BaseUnresolved { .. } => "base_unresolved",
        Reason::BaseUnread { .. } => "base_unread",
        Reason::HalfMadeHoldsOtherFiles { .. } => "half_made_holds_other_files",
        Reason::LockedWithFolderGone { .. } => "locked_with_folder_gone",
        Reason::SwitchBack { .. } => "switch_back",
        Reason::MetadataInvalid { .. } => "metadata_invalid",
        Reason::UnsafeSessionFolder { .. } => "unsafe_session_folder",
        Reason::Locked { .. } => "locked",
        Reason::StartedInside => "started_inside",
        Reason::Dirty { .. } => "dirty",
        Reason::SessionFiles { .. } => "session_files",
        Reason::Unreadable { .. } => "unreadable",
        Reason::Unmerged { .. } => "unmerged",
        Reason::UnmergedUnchecked { .. } => "unmerged_unchecked",
        Reason::Submodule { .. } => "submodule",
        Reason::Process { .. } => "process",
        Reason::DetachedCommits { .. } => "detached_commits",
        Reason::NewSincePlan { .. } => "new_since_plan",
        Reason::CannotCheckOut { .. } => "cannot_check_out",
        Reason::SessionFolderTracked { .. } => "session_folder_tracked",
        Reason::ForeignGit { .. } => "foreign_git",
        Reason::NestedRepository { .. } => "nested_repository",
        Reason::SetupNotTrusted { .. } => "setup_not_trusted",
        Reason::TeardownNotTrusted { .. } => "teardown_not_trusted",
        Reason::TeardownFailed { .. } => "teardown_failed",
        Reason::CommittedMissing { .. } => "committed_missing",
        Reason::ArchiveRefInTheWay { .. } => "archive_ref_in_the_way",
    }
}

fn lock_text(reason: &str) -> String {
    if reason.is_empty() {
        "no reason given".to_owned()
    } else {
        format!("reason: {reason}")
    }
}

fn housekeeping_kind(step: &Housekeeping) -> &'static str {
    match step {
        Housekeeping::Excludes { .. } => "excludes",
        Housekeeping::Leftover(_) => "leftover",
        Housekeeping::EmptyTrash { .. } => "empty_trash",
        Housekeeping::DropRecord { .. } => "drop_record",
        Housekeeping::FinishMove { .. } => "finish_move",
        Housekeeping::RepairLinks { .. } => "repair_links",
    }
}

/// A housekeeping step in words.
pub fn housekeeping_text(step: &Housekeeping, manifest: &dyn Places) -> String {
    match step {
        Housekeeping::Excludes { old, new, .. } => {
            // Sets: a block lists a line or two per session.
            let old_set: std::collections::HashSet<&String> = old.iter().collect();
            let new_set: std::collections::HashSet<&String> = new.iter().collect();
            let added = new.iter().filter(|l| !old_set.contains(l)).count();
            let removed = old.iter().filter(|l| !new_set.contains(l)).count();
            format!("info/exclude: flowloom's block lists exactly the session paths ({added} added, {removed} removed)")
        }
        Housekeeping::Leftover(l) => {
            let what = match l.kind {
                LeftoverKind::LockFile => "lock file",
                LeftoverKind::Intent => "intent note",
                LeftoverKind::TempFile => "temporary file",
                LeftoverKind::HalfRegistration => "half-made worktree registration",
                LeftoverKind::LoneLink => "half-made worktree folder",
                LeftoverKind::EmptyTrash => "empty trash folder",
            };
            format!("remove the {what} {} a killed apply left", l.path.display())
        }
        Housekeeping::EmptyTrash { path } => format!(
            "delete {}, a worktree an interrupted removal had checked and moved aside",
            manifest.relative(path)
        ),
        Housekeeping::DropRecord { session, .. } => {
            format!("forget `{session}` in the ownership record (its worktree and branch are gone)")
        }
        Housekeeping::FinishMove { from, to, .. } => format!(
            "finish the move of {} to {} a killed apply started",
            manifest.relative(from),
            manifest.relative(to)
        ),
        Housekeeping::RepairLinks { from, to, .. } if from == to => format!(
            "repair links: {} names a registration that moved (as `git worktree repair` does)",
            manifest.relative(to)
        ),
        Housekeeping::RepairLinks { from, to, .. } => format!(
            "repair links: {} was made at {}; point its registration and ownership entry there (as `git worktree repair` does)",
            manifest.relative(to),
            manifest.relative(from)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_never_panics_and_counts_what_is_shown() {
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("abcdef", 2), "abcdef");
        assert_eq!(pad("é", 2), "é ");
        // Past 65,535, `format!("{:<w$}")` panics.
        let long = "x".repeat(70_000);
        assert_eq!(pad(&long, 70_001).len(), 70_001);
        // Widths are those of the escaped text, and capped.
        assert_eq!(pad("a\u{1b}", 8), "a\\u001b ");
        let rows = [["a\u{1b}".to_owned(), long.clone()], ["b".to_owned(), "c".to_owned()]];
        assert_eq!(column_widths(&rows), [7, MAX_COLUMN]);
    }
}
