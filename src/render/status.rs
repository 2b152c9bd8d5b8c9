//! `flowloom status` in words: the table that fits the terminal, the overlaps under it, and
//! the JSON document.
//!
//! Fitting: every column starts at its widest cell. When the table is wider than the
//! terminal, the long free-text columns (last commit, purpose) are cut first, down to a
//! floor; then whole columns are hidden, one at a time, in a fixed order: path, purpose,
//! upstream, ports, last commit, branch, age, in use, base, dirt (session and state always
//! stay); what is left is cut down to each column's least width. Widths are display widths
//! of the escaped text (a wide character counts two, a control byte its escape), so no
//! line is longer than the terminal. A last line names the hidden columns; `--wide` shows
//! everything uncut.

use std::fmt::Write as _;
use std::path::{Component, Path};

use serde::Serialize;
use unicode_width::UnicodeWidthChar;

use crate::render::Places;
use crate::render::output::{Printer, Style};
use crate::status::{Dashboard, DirtCounts, Overlap, Row, SessionState};

/// The narrowest terminal the table is fitted to; a narrower one gets lines this wide.
pub const MIN_WIDTH: usize = 20;
/// The width when neither `COLUMNS` nor the terminal says.
pub const DEFAULT_WIDTH: usize = 80;
/// Overlap lines shown under the table (all of them with `--wide`, and in the JSON).
const MAX_OVERLAPS: usize = 20;
/// Processes named in the in-use column before a count.
const MAX_PROCESSES: usize = 3;
const GAP: usize = 2;

/// The terminal's width: `COLUMNS` when it holds a positive number, else the width of the
/// terminal standard output is, else 80.
pub fn terminal_width() -> usize {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    columns
        .filter(|n| *n > 0)
        .or_else(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
        .unwrap_or(DEFAULT_WIDTH)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Session,
    Purpose,
    Branch,
    State,
    Dirt,
    Base,
    Upstream,
    InUse,
    Age,
    Ports,
    Subject,
    Path,
}

/// The columns in the order they are shown.
const COLUMNS: [Col; 12] = [
    Col::Session,
    Col::Purpose,
    Col::Branch,
    Col::State,
    Col::Dirt,
    Col::Base,
    Col::Upstream,
    Col::InUse,
    Col::Age,
    Col::Ports,
    Col::Subject,
    Col::Path,
];

/// The order columns are hidden in when the table does not fit (first hidden first).
const DROP_ORDER: [Col; 10] = [
    Col::Path,
    Col::Purpose,
    Col::Upstream,
    Col::Ports,
    Col::Subject,
    Col::Branch,
    Col::Age,
    Col::InUse,
    Col::Base,
    Col::Dirt,
];

impl Col {
    fn header(self) -> &'static str {
        match self {
            Col::Session => "SESSION",
            Col::Purpose => "PURPOSE",
            Col::Branch => "BRANCH",
            Col::State => "STATE",
            Col::Dirt => "DIRT",
            Col::Base => "BASE",
            Col::Upstream => "UPSTREAM",
            Col::InUse => "IN USE",
            Col::Age => "AGE",
            Col::Ports => "PORTS",
            Col::Subject => "LAST COMMIT",
            Col::Path => "PATH",
        }
    }

    /// The width it is cut to before any column is hidden (`None`: not cut then).
    fn soft(self) -> Option<usize> {
        match self {
            Col::Subject => Some(16),
            Col::Purpose => Some(12),
            _ => None,
        }
    }

    /// The least width it is ever cut to.
    fn min(self) -> usize {
        match self {
            Col::Session => 6,
            Col::State => 5,
            Col::Age => 3,
            _ => 4,
        }
    }

    fn right_aligned(self) -> bool {
        self == Col::Age
    }
}

/// A column for the pure fitting: its widest cell and how it may be cut or hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub natural: usize,
    pub soft: Option<usize>,
    pub min: usize,
    /// Its place in the hiding order (lower first); `None`: never hidden.
    pub drop: Option<usize>,
}

/// The width of each column, `None` for hidden ones, so that the columns with a gap of
/// two between them take at most `width` (when the columns never hidden fit at their
/// least widths).
pub fn fit(cols: &[Column], width: usize) -> Vec<Option<usize>> {
    let mut shown: Vec<bool> = vec![true; cols.len()];
    loop {
        let mut widths: Vec<usize> = cols.iter().map(|c| c.natural).collect();
        let excess = |w: &[usize], shown: &[bool]| {
            let used: usize = w.iter().zip(shown).filter(|(_, s)| **s).map(|(w, _)| *w).sum();
            let gaps = GAP * shown.iter().filter(|s| **s).count().saturating_sub(1);
            (used + gaps).saturating_sub(width)
        };
        let result = |w: Vec<usize>, shown: &[bool]| w.into_iter().zip(shown).map(|(w, s)| s.then_some(w)).collect();
        for (i, c) in cols.iter().enumerate() {
            if let Some(soft) = c.soft {
                let over = excess(&widths, &shown);
                widths[i] = widths[i].saturating_sub(over).max(soft.min(widths[i]));
            }
        }
        if excess(&widths, &shown) == 0 {
            return result(widths, &shown);
        }
        let next = (0..cols.len())
            .filter(|i| shown[*i])
            .filter_map(|i| cols[i].drop.map(|rank| (rank, i)))
            .min();
        if let Some((_, i)) = next {
            shown[i] = false;
            continue;
        }
        for (i, c) in cols.iter().enumerate().rev() {
            let over = excess(&widths, &shown);
            widths[i] = widths[i].saturating_sub(over).max(c.min.min(widths[i]));
        }
        return result(widths, &shown);
    }
}

/// How wide `text` shows in a terminal (after escaping).
pub fn display_width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `text` escaped, cut to `max` display columns with `…` when longer.
pub fn cut(text: &str, max: usize) -> String {
    let shown = crate::render::output::escape(text);
    if display_width(&shown) <= max {
        return shown.into_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in shown.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    if max > 0 {
        out.push('…');
    }
    out
}

fn pad(text: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(display_width(text)));
    if right {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}

/// `path` as seen from `cwd` (both absolute): `.`, `sub/dir`, `../other`.
pub fn relative(path: &Path, cwd: &Path) -> String {
    let p: Vec<Component> = path.components().collect();
    let c: Vec<Component> = cwd.components().collect();
    let common = p.iter().zip(&c).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); c.len() - common];
    parts.extend(p[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// `+1 -2` against a base or upstream; `-` when either side is unknown.
fn divergence(ahead: Option<usize>, behind: Option<usize>) -> String {
    match (ahead, behind) {
        (Some(a), Some(b)) => format!("+{a} -{b}"),
        _ => "-".to_owned(),
    }
}

/// Dirt in glyphs, as prompts show it: `+` staged, `!` modified, `?` untracked; nothing
/// when clean.
pub fn dirt_text(dirt: &DirtCounts) -> String {
    [("+", dirt.staged), ("!", dirt.modified), ("?", dirt.untracked)]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(glyph, n)| format!("{glyph}{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `pid name` for at most three processes, then how many more.
fn in_use_text(row: &Row) -> String {
    let mut words: Vec<String> = row
        .in_use
        .iter()
        .take(MAX_PROCESSES)
        .map(|p| format!("{} {}", p.pid, p.name))
        .collect();
    if row.in_use.len() > MAX_PROCESSES {
        words.push(format!("+{}", row.in_use.len() - MAX_PROCESSES));
    }
    words.join(", ")
}

/// An age as a person glances at it: `45s`, `12m`, `3h`, `2d`, `5w`, `4mo`, `2y`.
pub fn age_text(seconds: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let s = seconds.max(0);
    match s {
        _ if s < MINUTE => format!("{s}s"),
        _ if s < HOUR => format!("{}m", s / MINUTE),
        _ if s < DAY => format!("{}h", s / HOUR),
        _ if s < 14 * DAY => format!("{}d", s / DAY),
        _ if s < 60 * DAY => format!("{}w", s / (7 * DAY)),
        _ if s < 365 * DAY => format!("{}mo", s / (30 * DAY)),
        _ => format!("{}y", s / (365 * DAY)),
    }
}

fn state_style(state: SessionState) -> Style {
    match state {
        SessionState::Ok => Style::Create,
        SessionState::Missing | SessionState::Drifted => Style::Update,
        SessionState::Orphan | SessionState::SetupFailed => Style::Remove,
        SessionState::Retained | SessionState::Unmanaged => Style::Dim,
        SessionState::Integrated => Style::Bold,
        SessionState::Incomplete | SessionState::Locked | SessionState::Dirty | SessionState::Unchecked => Style::Warn,
    }
}

/// The main worktree's name in the session column.
const MAIN: &str = "(main)";

fn cell(row: &Row, col: Col, d: &Dashboard, now: i64) -> String {
    let main = row.session.is_empty();
    match col {
        Col::Session if main => MAIN.to_owned(),
        Col::Session => row.session.clone(),
        Col::Purpose => match row.purpose.as_deref() {
            Some(p) if p != row.session => p.to_owned(),
            _ => String::new(),
        },
        Col::Branch => row.branch.clone().unwrap_or_else(|| "(detached)".into()),
        Col::State => row.state.as_str().to_owned(),
        Col::Dirt => row.dirt.as_ref().map(dirt_text).unwrap_or_default(),
        Col::Base if main => String::new(),
        Col::Base => divergence(row.ahead, row.behind),
        Col::Upstream => match &row.upstream {
            Some(u) if u.ahead.is_none() => format!("{} gone", u.reference),
            Some(u) => format!("{} {}", u.reference, divergence(u.ahead, u.behind)),
            None => String::new(),
        },
        Col::InUse => in_use_text(row),
        Col::Age => row
            .last_commit
            .as_ref()
            .map_or_else(|| "-".to_owned(), |c| age_text(now - c.time)),
        Col::Ports => row
            .ports
            .iter()
            .map(|(name, port)| format!("{name}={port}"))
            .collect::<Vec<_>>()
            .join(" "),
        Col::Subject => row.last_commit.as_ref().map(|c| c.subject.clone()).unwrap_or_default(),
        Col::Path => row
            .path
            .as_deref()
            .map(|p| relative(p, &d.cwd))
            .unwrap_or_else(|| "(no worktree)".into()),
    }
}

/// The style of a cell, by its column and its row's state.
fn cell_style(row: &Row, col: Col) -> Option<Style> {
    match col {
        Col::State => Some(state_style(row.state)),
        Col::Dirt if row.dirty() == Some(true) => Some(Style::Warn),
        Col::InUse => Some(Style::Warn),
        Col::Subject | Col::Age | Col::Purpose => Some(Style::Dim),
        _ => None,
    }
}

/// The table for people, fitted to `width` (`None`: `--wide`, nothing cut or hidden),
/// then the overlaps.
pub fn text(d: &Dashboard, manifest_name: &str, p: &Printer, now: i64, width: Option<usize>) -> String {
    let rows: Vec<&Row> = d.main.iter().chain(&d.sessions).collect();
    // Optional columns appear only when some row has something to put there.
    let cols: Vec<Col> = COLUMNS
        .into_iter()
        .filter(|c| matches!(c, Col::Session | Col::State) || rows.iter().any(|r| !cell(r, *c, d, now).is_empty()))
        .collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| cell(r, *c, d, now)).collect())
        .collect();
    let width = width.map(|w| w.max(MIN_WIDTH));
    let widths = column_widths(&cols, &cells, width);
    let mut out = String::new();
    let header: Vec<String> = cols.iter().map(|c| c.header().to_owned()).collect();
    write_line(&mut out, p, &cols, &widths, &header, None, false);
    for (row, cells) in rows.iter().zip(&cells) {
        write_line(&mut out, p, &cols, &widths, cells, Some(row), row.current);
    }
    // Named in the order they were hidden.
    let hidden: Vec<&str> = DROP_ORDER
        .iter()
        .filter(|d| cols.iter().zip(&widths).any(|(c, w)| c == *d && w.is_none()))
        .map(|c| c.header())
        .collect();
    let fitted =
        |line: String| width.map_or_else(|| crate::render::output::escape(&line).into_owned(), |w| cut(&line, w));
    if !hidden.is_empty() {
        let line = format!("hidden to fit: {} (--wide shows all)", hidden.join(", ").to_lowercase());
        let _ = writeln!(out, "{}", p.paint(Style::Dim, &fitted(line)));
    }
    if d.sessions.is_empty() {
        let line = format!("No sessions: make one with `flowloom new ID`, or declare some in {manifest_name}.");
        let _ = writeln!(out, "{}", fitted(line));
    }
    overlaps_text(&mut out, &d.overlaps, p, width);
    out
}

/// Each shown column's width (`None`: hidden); with no width, every cell whole.
fn column_widths(cols: &[Col], cells: &[Vec<String>], width: Option<usize>) -> Vec<Option<usize>> {
    let natural: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| display_width(&crate::render::output::escape(&row[i])))
                .fold(display_width(c.header()), usize::max)
        })
        .collect();
    let Some(width) = width else {
        return natural.into_iter().map(Some).collect();
    };
    let specs: Vec<Column> = cols
        .iter()
        .zip(&natural)
        .map(|(c, n)| Column {
            natural: *n,
            soft: c.soft(),
            min: c.min(),
            drop: DROP_ORDER.iter().position(|d| d == c),
        })
        .collect();
    // Two columns for the `@` mark.
    fit(&specs, width.saturating_sub(2))
}

fn write_line(
    out: &mut String,
    p: &Printer,
    cols: &[Col],
    widths: &[Option<usize>],
    cells: &[String],
    row: Option<&Row>,
    current: bool,
) {
    let shown: Vec<(Col, usize, &String)> = cols
        .iter()
        .zip(widths)
        .zip(cells)
        .filter_map(|((c, w), text)| w.map(|w| (*c, w, text)))
        .collect();
    let last = shown.len().saturating_sub(1);
    let mut parts = Vec::with_capacity(shown.len());
    for (i, (col, w, text)) in shown.into_iter().enumerate() {
        let text = cut(text, w);
        let padded = if i == last && !col.right_aligned() {
            text
        } else {
            pad(&text, w, col.right_aligned())
        };
        let style = match row {
            None => Some(Style::Bold),
            Some(row) => cell_style(row, col),
        };
        parts.push(match style {
            Some(style) => p.paint(style, &padded),
            None => padded,
        });
    }
    let mark = if current {
        p.paint(Style::Bold, "@")
    } else {
        " ".to_owned()
    };
    let _ = writeln!(out, "{mark} {}", parts.join(&" ".repeat(GAP)).trim_end());
}

fn overlaps_text(out: &mut String, overlaps: &[Overlap], p: &Printer, width: Option<usize>) {
    if overlaps.is_empty() {
        return;
    }
    let fitted =
        |line: String| width.map_or_else(|| crate::render::output::escape(&line).into_owned(), |w| cut(&line, w));
    let _ = writeln!(out);
    let title = "Overlaps: files more than one session changes".to_owned();
    let _ = writeln!(out, "{}", p.paint(Style::Bold, &fitted(title)));
    let shown = if width.is_some() { MAX_OVERLAPS } else { overlaps.len() };
    let path_width = overlaps
        .iter()
        .take(shown)
        .map(|o| display_width(&crate::render::output::escape(&o.path)))
        .max()
        .unwrap_or(0);
    for o in overlaps.iter().take(shown) {
        let line = format!(
            "  {}  {}",
            pad(&crate::render::output::escape(&o.path), path_width, false),
            o.sessions.join(", ")
        );
        let _ = writeln!(out, "{}", p.paint(Style::Warn, &fitted(line)));
    }
    if overlaps.len() > shown {
        let line = format!("  … {} more (--wide or --json lists them all)", overlaps.len() - shown);
        let _ = writeln!(out, "{}", fitted(line));
    }
}

#[derive(Serialize)]
pub struct JsonStatus {
    pub format_version: u32,
    /// The main worktree (none in a bare repository).
    pub main: Option<JsonMain>,
    pub sessions: Vec<JsonRow>,
    /// Paths two or more sessions change relative to their bases.
    pub overlaps: Vec<Overlap>,
}

#[derive(Serialize)]
pub struct JsonMain {
    pub branch: Option<String>,
    /// Relative to the manifest's folder.
    pub path: Option<String>,
    pub state: SessionState,
    pub current: bool,
    pub dirt: Option<DirtCounts>,
    pub upstream: Option<JsonUpstream>,
    pub last_commit: Option<JsonCommit>,
}

#[derive(Serialize)]
pub struct JsonRow {
    pub session: String,
    /// The file that declares it (SPEC §11.1); `null` when none does (orphans, unmanaged).
    pub layer: Option<crate::manifest::Layer>,
    pub purpose: Option<String>,
    pub branch: Option<String>,
    /// Relative to the manifest's folder.
    pub path: Option<String>,
    pub state: SessionState,
    /// The command runs inside this session's worktree.
    pub current: bool,
    pub base: String,
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
    /// The remote-tracking branch, when the branch has one.
    pub upstream: Option<JsonUpstream>,
    pub last_commit: Option<JsonCommit>,
    /// Seconds since the last commit.
    pub age_seconds: Option<i64>,
    pub dirty: Option<bool>,
    /// Uncommitted work by kind (`null` when the worktree could not be read or is gone).
    pub dirt: Option<DirtCounts>,
    pub locked: bool,
    /// The metadata's setup state: `ok`, `incomplete`, `failed` (`null` without metadata).
    pub setup: Option<&'static str>,
    /// Processes whose working directory or an open file is inside the worktree.
    pub in_use: Vec<JsonProcess>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// SPEC §10: name → port, from the session's `metadata.json`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ports: std::collections::BTreeMap<String, u16>,
}

#[derive(Serialize)]
pub struct JsonProcess {
    pub pid: u32,
    pub name: String,
}

#[derive(Serialize)]
pub struct JsonUpstream {
    #[serde(rename = "ref")]
    pub reference: String,
    pub ahead: Option<usize>,
    pub behind: Option<usize>,
}

#[derive(Serialize)]
pub struct JsonCommit {
    pub id: String,
    pub subject: String,
    /// RFC 3339, UTC.
    pub time: String,
}

/// The document `status --json` prints; paths relative to the manifest's folder (its own
/// is `.`), so that it reads the same from any folder.
pub fn json(d: &Dashboard, places: &dyn Places, now: i64) -> JsonStatus {
    let relative = |p: &Path| match places.relative(p) {
        rel if rel.is_empty() => ".".to_owned(),
        rel => rel,
    };
    let relative: &dyn Fn(&Path) -> String = &relative;
    JsonStatus {
        format_version: 1,
        main: d.main.as_ref().map(|r| JsonMain {
            branch: r.branch.clone(),
            path: r.path.as_deref().map(relative),
            state: r.state,
            current: r.current,
            dirt: r.dirt,
            upstream: json_upstream(r),
            last_commit: json_commit(r),
        }),
        sessions: d.sessions.iter().map(|r| json_row(r, places, relative, now)).collect(),
        overlaps: d.overlaps.clone(),
    }
}

fn json_row(r: &Row, places: &dyn Places, relative: &dyn Fn(&Path) -> String, now: i64) -> JsonRow {
    JsonRow {
        session: r.session.clone(),
        layer: r.layer,
        purpose: r.purpose.clone(),
        branch: r.branch.clone(),
        path: r.path.as_deref().map(relative),
        state: r.state,
        current: r.current,
        base: r.base.clone(),
        ahead: r.ahead,
        behind: r.behind,
        upstream: json_upstream(r),
        last_commit: json_commit(r),
        age_seconds: r.last_commit.as_ref().map(|c| now - c.time),
        dirty: r.dirty(),
        dirt: r.dirt,
        locked: r.locked,
        setup: r.setup.map(|s| s.as_str()),
        in_use: r
            .in_use
            .iter()
            .map(|p| JsonProcess {
                pid: p.pid,
                name: p.name.clone(),
            })
            .collect(),
        reasons: r
            .reasons
            .iter()
            .map(|r| crate::render::reason_text(r, places))
            .collect(),
        ports: r.ports.clone(),
    }
}

fn json_upstream(r: &Row) -> Option<JsonUpstream> {
    r.upstream.as_ref().map(|u| JsonUpstream {
        reference: u.reference.clone(),
        ahead: u.ahead,
        behind: u.behind,
    })
}

fn json_commit(r: &Row) -> Option<JsonCommit> {
    r.last_commit.as_ref().map(|c| JsonCommit {
        id: c.id.clone(),
        subject: c.subject.clone(),
        time: jiff::Timestamp::from_second(c.time)
            .map(|t| t.to_string())
            .unwrap_or_default(),
    })
}

/// The warning for a worktree whose contents could not be read.
pub fn unreadable_warning(path: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "could not check {} for uncommitted work: {}",
        crate::render::output::escape(path),
        crate::render::output::escape(&error.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{LastCommit, Process, Upstream};
    use proptest::prelude::*;
    use std::path::PathBuf;

    const PLAIN: Printer = Printer {
        color: false,
        quiet: false,
        verbose: false,
    };

    fn row(session: &str, purpose: &str, branch: &str, subject: &str) -> Row {
        let mut row = Row::new(
            session.to_owned(),
            Some(branch.to_owned()),
            Some(PathBuf::from("/repo/sessions").join(session)),
            SessionState::Ok,
            "main".to_owned(),
        );
        row.purpose = Some(purpose.to_owned());
        row.ahead = Some(1);
        row.behind = Some(0);
        row.dirt = Some(DirtCounts {
            staged: 3,
            modified: 2,
            untracked: 1,
        });
        row.upstream = Some(Upstream {
            reference: format!("origin/{branch}"),
            ahead: Some(0),
            behind: Some(2),
        });
        row.last_commit = Some(LastCommit {
            id: "0".repeat(40),
            subject: subject.to_owned(),
            time: 0,
        });
        row.in_use = (0..5)
            .map(|i| Process {
                pid: 100 + i,
                name: format!("proc{i}"),
                uses: "cwd".into(),
            })
            .collect();
        row
    }

    fn board(rows: Vec<Row>) -> Dashboard {
        Dashboard {
            main: None,
            sessions: rows,
            overlaps: vec![Overlap {
                path: "src/api.rs".into(),
                sessions: vec!["alpha".into(), "beta".into()],
            }],
            cwd: PathBuf::from("/repo"),
        }
    }

    #[test]
    fn ages_read_at_a_glance() {
        for (seconds, shown) in [
            (-5, "0s"),
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3 * 3600 + 59, "3h"),
            (2 * 86_400, "2d"),
            (20 * 86_400, "2w"),
            (100 * 86_400, "3mo"),
            (800 * 86_400, "2y"),
        ] {
            assert_eq!(age_text(seconds), shown, "{seconds}");
        }
    }

    #[test]
    fn values_are_escaped_then_cut_to_display_width() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("abcdefghij", 5), "abcd…");
        // The escape counts as shown, and is never cut into a fake one.
        assert_eq!(cut("a\u{1b}[2K", 20), "a\\u001b[2K");
        assert_eq!(cut("a\u{1b}bcdef", 4), "a\\u…");
        assert_eq!(cut("ééé", 2), "é…");
        // A wide character takes two columns, and is never split.
        assert_eq!(cut("漢字漢字", 5), "漢字…");
        assert_eq!(display_width(&cut("漢字漢字", 4)), 3);
    }

    #[test]
    fn paths_are_relative_to_where_the_command_runs() {
        let rel = |p: &str, cwd: &str| relative(Path::new(p), Path::new(cwd));
        assert_eq!(rel("/r/sessions/a", "/r"), "sessions/a");
        assert_eq!(rel("/r", "/r"), ".");
        assert_eq!(rel("/r", "/r/sessions/a/src"), "../../..");
        assert_eq!(rel("/r/sessions/b", "/r/sessions/a"), "../b");
    }

    #[test]
    fn dirt_shows_as_glyphs_by_kind() {
        let d = |staged, modified, untracked| {
            dirt_text(&DirtCounts {
                staged,
                modified,
                untracked,
            })
        };
        assert_eq!(d(3, 2, 1), "+3 !2 ?1");
        assert_eq!(d(0, 2, 0), "!2");
        assert_eq!(d(0, 0, 0), "");
    }

    #[test]
    fn columns_are_hidden_in_the_documented_order() {
        let d = board(vec![row(
            "alpha",
            "A purpose long enough",
            "session/alpha",
            "a subject",
        )]);
        let hidden = |width: usize| {
            let text = text(&d, "flowloom.toml", &PLAIN, 0, Some(width));
            text.lines()
                .find_map(|l| l.strip_prefix("hidden to fit: "))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        assert_eq!(hidden(500), "");
        assert!(hidden(150).starts_with("path"), "{}", hidden(150));
        assert!(hidden(120).starts_with("path, purpose"), "{}", hidden(120));
        assert!(hidden(20).starts_with("path"), "{}", hidden(20));
        let wide = text(&d, "flowloom.toml", &PLAIN, 0, None);
        assert!(!wide.contains("hidden"), "{wide}");
        assert!(wide.contains("100 proc0, 101 proc1, 102 proc2, +2"), "{wide}");
    }

    proptest! {
        #[test]
        fn no_line_is_wider_than_the_terminal(
            width in MIN_WIDTH..260usize,
            rows in proptest::collection::vec(
                (any::<String>(), any::<String>(), any::<String>(), any::<String>()),
                0..4,
            ),
            long in 0..300usize,
        ) {
            let mut rows: Vec<Row> = rows
                .iter()
                .map(|(s, p, b, c)| row(s, p, b, c))
                .collect();
            rows.push(row(&"漢".repeat(long), &"\u{1b}".repeat(long), &"b".repeat(long), "x"));
            let out = text(&board(rows), "flowloom.toml", &PLAIN, 0, Some(width));
            for line in out.lines() {
                prop_assert!(display_width(line) <= width, "{} > {width}: {line:?}", display_width(line));
            }
        }

        #[test]
        fn fitted_columns_take_at_most_the_width(
            width in 15..300usize,
            naturals in proptest::collection::vec(0..200usize, 2..12),
        ) {
            // The first two are never hidden, and fit at their least widths.
            let cols: Vec<Column> = naturals
                .iter()
                .enumerate()
                .map(|(i, n)| Column {
                    natural: *n,
                    soft: (i % 3 == 0).then_some(10),
                    min: 4,
                    drop: (i >= 2).then_some(naturals.len() - i),
                })
                .collect();
            let widths = fit(&cols, width);
            let shown: Vec<usize> = widths.iter().flatten().copied().collect();
            let used = shown.iter().sum::<usize>() + GAP * shown.len().saturating_sub(1);
            prop_assert!(used <= width, "{used} > {width}: {widths:?}");
            prop_assert!(widths[0].is_some() && widths[1].is_some());
        }
    }
}
