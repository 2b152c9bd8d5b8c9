//! Plans for people (Terraform-like lines) and for programs (SPEC §9 JSON).

use std::fmt::Write as _;

use serde::Serialize;

use crate::manifest::Manifest;
use crate::output::{Printer, Style};
use crate::plan::{Action, Change, Plan, Repair, Start, StartFrom, WorktreeRemoval};

/// The human plan: one line per change, details indented below, then a summary line.
pub fn text(plan: &Plan, manifest: &Manifest, p: &Printer) -> String {
    let mut out = String::new();
    if plan.changes.is_empty() {
        out.push_str(&p.paint(Style::Bold, "No changes."));
        out.push_str(" The sessions match ");
        out.push_str(&manifest_name(manifest));
        out.push_str(".\n");
    } else {
        let rows: Vec<[String; 3]> = plan
            .changes
            .iter()
            .map(|c| [c.session.clone(), c.branch.clone(), manifest.relative(&c.path)])
            .collect();
        let widths = column_widths(&rows);
        for (change, row) in plan.changes.iter().zip(&rows) {
            let (symbol, style) = symbol(&change.action);
            let _ = write!(
                out,
                "  {} {}  {}  {}",
                p.paint(style, symbol),
                p.paint(Style::Bold, &pad(&row[0], widths[0])),
                pad(&row[1], widths[1]),
                pad(&row[2], widths[2]),
            );
            let summary = summary_of(change);
            if !summary.is_empty() {
                let _ = write!(out, "  {}", p.paint(Style::Dim, &summary));
            }
            out.push('\n');
            details(&mut out, change, p);
        }
        out.push('\n');
    }
    if !plan.unmanaged.is_empty() {
        let _ = writeln!(
            out,
            "{} (in scope, neither declared nor created by flowloom; left alone, adopt with `flowloom import`):",
            p.paint(Style::Bold, "Unmanaged sessions")
        );
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
        let widths = column_widths(&rows);
        for row in &rows {
            let _ = writeln!(
                out,
                "  {} {}  {}  {}",
                p.paint(Style::Dim, "?"),
                pad(&row[0], widths[0]),
                pad(&row[1], widths[1]),
                row[2]
            );
        }
        out.push('\n');
    }
    if !plan.changes.is_empty() {
        let _ = writeln!(
            out,
            "{} {} to create, {} to update, {} to remove, {} blocked.",
            p.paint(Style::Bold, "Plan:"),
            plan.count("create"),
            plan.count("update"),
            plan.count("remove"),
            plan.count("blocked"),
        );
    }
    out
}

fn manifest_name(manifest: &Manifest) -> String {
    manifest
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "the manifest".into())
}

fn symbol(action: &Action) -> (&'static str, Style) {
    match action {
        Action::Create { .. } => ("+", Style::Create),
        Action::Update { .. } => ("~", Style::Update),
        Action::Remove { .. } => ("-", Style::Remove),
        Action::Blocked { .. } => ("!", Style::Blocked),
    }
}

pub fn start_text(start: &Start) -> String {
    let short = &start.commit[..start.commit.len().min(7)];
    match start.from {
        StartFrom::Local => format!("existing branch {short}"),
        StartFrom::Remote => format!("from remote {} {short}", start.reference),
        StartFrom::Base => format!("new branch from {} {short}", start.reference),
    }
}

fn summary_of(change: &Change) -> String {
    match &change.action {
        Action::Create { start, .. } => start_text(start),
        Action::Update { repairs, .. } => repairs
            .iter()
            .map(|r| match r {
                Repair::Worktree { reset: true, .. } => "redo half-made worktree".to_owned(),
                Repair::Worktree { start, .. } => format!("recreate worktree ({})", start_text(start)),
                Repair::Metadata { old: None, .. } => "write metadata".to_owned(),
                Repair::Metadata { .. } => "update metadata".to_owned(),
                Repair::SwitchBranch { from, start } => match start.from {
                    crate::plan::StartFrom::Local => format!("switch back from {from}"),
                    _ => format!("switch back from {from} ({})", start_text(start)),
                },
                Repair::Artifacts => "create artifacts folder".to_owned(),
                Repair::FinishRecord => "finish interrupted creation".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Action::Remove {
            worktree,
            delete_branch,
            discard,
            ..
        } => {
            let mut parts = Vec::new();
            match worktree {
                WorktreeRemoval::Remove => parts.push("remove worktree"),
                WorktreeRemoval::Prune => parts.push("prune worktree (folder already gone)"),
                WorktreeRemoval::None => {}
            }
            if *delete_branch {
                parts.push("delete branch");
            }
            if !discard.is_empty() {
                parts.push("forced");
            }
            parts.join(", ")
        }
        Action::Blocked { .. } => "blocked".to_owned(),
    }
}

fn details(out: &mut String, change: &Change, p: &Printer) {
    match &change.action {
        Action::Blocked { reasons } => {
            for r in reasons {
                let _ = writeln!(out, "      {}", p.paint(Style::Blocked, r));
            }
        }
        Action::Remove { archive, discard, .. } => {
            if let Some(a) = archive {
                let _ = writeln!(
                    out,
                    "      {} {} {} kept under {} (restore: git branch <name> {})",
                    p.paint(Style::Update, "archive:"),
                    a.commits,
                    crate::plan::plural(a.commits, "commit"),
                    a.reference,
                    a.reference
                );
            }
            for f in discard {
                let _ = writeln!(out, "      {} {f}", p.paint(Style::Remove, "deletes:"));
            }
        }
        Action::Update { repairs, .. } => {
            for r in repairs {
                if let Repair::Metadata {
                    old: Some(old),
                    new: Some(new),
                } = r
                {
                    let name = format!("sessions/{}/metadata.json", change.session);
                    let diff = similar::TextDiff::from_lines(old.as_str(), new.as_str());
                    let text = diff
                        .unified_diff()
                        .context_radius(1)
                        .header(&format!("a/{name}"), &format!("b/{name}"))
                        .to_string();
                    for line in text.lines() {
                        let style = match line.as_bytes().first() {
                            Some(b'+') => Style::Create,
                            Some(b'-') => Style::Remove,
                            Some(b'@') => Style::Dim,
                            _ => Style::Dim,
                        };
                        let _ = writeln!(out, "      {}", p.paint(style, line));
                    }
                }
            }
        }
        _ => {}
    }
}

/// The width of each column of an aligned table, in characters.
pub(crate) fn column_widths<'a, const N: usize>(rows: impl IntoIterator<Item = &'a [String; N]>) -> [usize; N] {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths
}

fn pad(text: &str, width: usize) -> String {
    format!("{text:<width$}")
}

// ---- JSON (SPEC §9) ----

#[derive(Serialize)]
pub struct JsonPlan {
    pub format_version: u32,
    pub changes: Vec<JsonChange>,
    pub unmanaged: Vec<JsonUnmanaged>,
    pub summary: JsonSummary,
    /// Only in a saved plan (`plan --out`): what `apply FILE` checks before it acts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved: Option<crate::saved::Saved>,
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repairs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_branch: Option<bool>,
    /// Forced removals: where the commits that would become unreachable are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<JsonArchive>,
    /// Forced removals: the files deleted, relative to the worktree.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub discard: Vec<String>,
}

#[derive(Serialize)]
pub struct JsonArchive {
    #[serde(rename = "ref")]
    pub reference: String,
    pub commit: String,
    pub commits: usize,
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
pub struct JsonSummary {
    pub create: usize,
    pub update: usize,
    pub remove: usize,
    pub blocked: usize,
}

#[derive(Serialize)]
pub struct JsonError {
    pub session: String,
    pub error: String,
}

pub fn json(plan: &Plan, manifest: &Manifest) -> JsonPlan {
    let changes = plan
        .changes
        .iter()
        .map(|c| {
            let mut j = JsonChange {
                action: c.action.kind(),
                session: c.session.clone(),
                branch: c.branch.clone(),
                path: manifest.relative(&c.path),
                start: None,
                reasons: Vec::new(),
                repairs: Vec::new(),
                delete_branch: None,
                archive: None,
                discard: Vec::new(),
            };
            match &c.action {
                Action::Create { start, .. } => j.start = Some(json_start(start)),
                Action::Update { repairs, .. } => {
                    for r in repairs {
                        if let Repair::Worktree { start, .. } | Repair::SwitchBranch { start, .. } = r {
                            j.start = Some(json_start(start));
                        }
                    }
                    j.repairs = repairs
                        .iter()
                        .map(|r| {
                            match r {
                                Repair::Worktree { .. } => "worktree",
                                Repair::Metadata { .. } => "metadata",
                                Repair::SwitchBranch { .. } => "switch",
                                Repair::Artifacts => "artifacts",
                                Repair::FinishRecord => "record",
                            }
                            .to_owned()
                        })
                        .collect();
                }
                Action::Remove {
                    delete_branch,
                    archive,
                    discard,
                    ..
                } => {
                    j.delete_branch = Some(*delete_branch);
                    j.archive = archive.as_ref().map(|a| JsonArchive {
                        reference: a.reference.clone(),
                        commit: a.commit.clone(),
                        commits: a.commits,
                    });
                    j.discard = discard.clone();
                }
                Action::Blocked { reasons } => j.reasons = reasons.clone(),
            }
            j
        })
        .collect();
    JsonPlan {
        format_version: 1,
        changes,
        unmanaged: plan
            .unmanaged
            .iter()
            .map(|u| JsonUnmanaged {
                session: u.session.clone(),
                branch: u.branch.clone(),
                path: u.path.as_deref().map(|p| manifest.relative(p)),
            })
            .collect(),
        summary: JsonSummary {
            create: plan.count("create"),
            update: plan.count("update"),
            remove: plan.count("remove"),
            blocked: plan.count("blocked"),
        },
        saved: None,
        applied: None,
        errors: Vec::new(),
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
