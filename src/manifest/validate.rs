//! The rules of SPEC §2, and the diagnostics (§8) that point back into `flowloom.toml`.
//!
//! `schema.rs` hands over raw strings with their spans; this file decides what they mean,
//! fills in the defaults and builds the clean [`Manifest`]. Every problem found on the way is
//! collected, so one run of `flowloom validate` shows all of them, and a manifest is only
//! returned when there are none.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::LabeledSpan;

use super::source::ManifestSource;

use crate::fsutil::{ReadError, read_regular};

use super::environment;
use super::schema::{self, Finding, RawManifest, RawSession, Str, inner_span};
use super::{Defaults, Layer, LocalFile, Manifest, Session, Template, branch_problem, is_valid_id};
use crate::names::MAX_NAME_BYTES;

/// Everything wrong with one manifest file.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{summary}")]
pub struct ManifestError {
    /// The manifest's path, as given.
    pub path: String,
    summary: String,
    /// In the order they appear in the file.
    #[related]
    pub problems: Vec<Problem>,
}

/// One thing wrong in the manifest: what (the message), where (labels into the file) and how
/// to fix it (help).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct Problem {
    pub message: String,
    #[help]
    pub help: Option<String>,
    // Each problem carries the file so it renders on its own too, not only as `related`.
    #[source_code]
    source_code: Option<ManifestSource>,
    #[label(collection)]
    labels: Vec<LabeledSpan>,
}

impl Problem {
    /// Where in the file this problem is; the first label is the primary one.
    pub fn labels(&self) -> &[LabeledSpan] {
        &self.labels
    }
}

/// The path as the user would type it: relative to the current directory when inside it,
/// as cargo shows its manifest.
fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| cwd.canonicalize().ok())
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_owned))
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_owned())
        .display()
        .to_string()
}

/// `text` with every `quoted` part longer than 100 characters cut in its middle: a message
/// about a 100,000-character name names it, but need not repeat it.
fn shorten_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(&shorten(part));
        } else {
            out.push_str(part);
        }
    }
    out
}

/// A name or value to quote in a message, cut in its middle when longer than 100
/// characters.
pub fn shorten(part: &str) -> String {
    const KEEP: usize = 48;
    let chars = part.chars().count();
    if chars > 2 * KEEP + 4 {
        let mut out = String::with_capacity(4 * (2 * KEEP) + 32);
        out.extend(part.chars().take(KEEP));
        out.push_str(&format!("…({} characters)…", chars - 2 * KEEP));
        out.extend(part.chars().skip(chars - KEEP));
        out
    } else {
        part.to_owned()
    }
}

impl ManifestError {
    fn new(path: &Path, source: Arc<str>, findings: Vec<Finding>) -> Self {
        let name = shown(path);
        let problems = Self::problems(&name, source, findings);
        let summary = match problems.len() {
            1 => format!("{name} has 1 problem"),
            n => format!("{name} has {n} problems"),
        };
        ManifestError {
            path: name,
            summary,
            problems,
        }
    }

    /// Problems of both layers (SPEC §11.1): `findings` point into `combined`, the committed
    /// text, a line break and the local text; each problem is shown in its own file, and one
    /// that points into both files is shown in each.
    fn layered(path: &Path, source: &str, local: &LocalFile, findings: Vec<Finding>) -> Self {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for f in findings {
            let (in_local, in_committed): (Vec<_>, Vec<_>) = f
                .labels
                .iter()
                .cloned()
                .partition(|(span, _)| span.start >= local.offset);
            let push = |labels: Vec<(Range<usize>, String)>, shift: usize, to: &mut Vec<Finding>| {
                if labels.is_empty() {
                    return;
                }
                let labels = labels
                    .into_iter()
                    .map(|(span, label)| (span.start - shift..span.end - shift, label))
                    .collect();
                to.push(Finding { labels, ..f.clone() });
            };
            push(in_committed, 0, &mut ours);
            push(in_local, local.offset, &mut theirs);
        }
        let name = shown(path);
        let local_name = shown(&local.path);
        // The summary names the files that have problems.
        let files = match (ours.is_empty(), theirs.is_empty()) {
            (false, false) => format!("{name} with {local_name}"),
            (true, _) => local_name.clone(),
            (false, true) => name.clone(),
        };
        let mut problems = Self::problems(&name, source.into(), ours);
        problems.extend(Self::problems(&local_name, local.source.as_str().into(), theirs));
        let summary = match problems.len() {
            1 => format!("{files} has 1 problem"),
            n => format!("{files} has {n} problems"),
        };
        ManifestError {
            path: name,
            summary,
            problems,
        }
    }

    fn problems(name: &str, source: Arc<str>, mut findings: Vec<Finding>) -> Vec<Problem> {
        // File order reads best; the sort is stable, so findings at one place keep theirs.
        findings.sort_by_key(|f| f.labels.first().map_or(0, |(span, _)| span.start));
        // One line index for the whole file, shared by every problem.
        let source_code = ManifestSource::new(name, source);
        findings
            .into_iter()
            .map(|f| Problem {
                message: shorten_quoted(&f.message),
                help: f.help.as_deref().map(shorten_quoted),
                source_code: Some(source_code.clone()),
                labels: f
                    .labels
                    .into_iter()
                    .enumerate()
                    .map(|(i, (span, label))| {
                        // A label need not cover a 100,000-byte value to point at it.
                        let span = source_code.clamp(span.start, span.end.saturating_sub(span.start));
                        if i == 0 {
                            LabeledSpan::new_primary_with_span(Some(label), span)
                        } else {
                            LabeledSpan::new_with_span(Some(label), span)
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    pub(crate) fn unreadable(path: &Path, error: Option<&ReadError>) -> Self {
        let name = path.display().to_string();
        let (message, help) = match error {
            None => (
                format!("no manifest at {name}"),
                "run `flowloom init` to write a starter manifest there, or point at another \
                 one with `--manifest PATH`",
            ),
            Some(e @ ReadError::Symlink) => (
                format!("refusing to read {name}: {e}"),
                "flowloom reads the manifest only from a regular file: replace the symlink with the file it \
                 points to, or pass that file with `--manifest PATH`",
            ),
            Some(e @ (ReadError::NotRegular { .. } | ReadError::Parent { .. })) => (
                format!("refusing to read {name}: {e}"),
                "the manifest must be a regular file",
            ),
            Some(e @ ReadError::TooLarge { .. }) => (
                format!("refusing to read {name}: {e}"),
                "a manifest is a short list of sessions; check that this is the right file",
            ),
            Some(e @ ReadError::Io(_)) => (
                format!("cannot read {name}: {e}"),
                "check that the path is a readable file",
            ),
        };
        ManifestError {
            summary: format!("cannot read manifest {name}"),
            path: name,
            problems: vec![Problem {
                message,
                help: Some(help.to_owned()),
                source_code: None,
                labels: Vec::new(),
            }],
        }
    }
}

/// The largest manifest flowloom reads: thousands of sessions fit in far less.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Both layers at `path`; `absent_ok`: a committed file that does not exist is an empty
/// layer (SPEC §11.1, first use), else the error that says how to make one.
pub(super) fn load(path: &Path, absent_ok: bool) -> Result<Manifest, ManifestError> {
    let source = read_text(path)?;
    if source.is_none() && !absent_ok {
        return Err(ManifestError::unreadable(path, None));
    }
    let local_path = super::local_path(path);
    let local = read_text(&local_path)?;
    from_layers(path, source, local)
}

/// As [`from_sources`]; `committed` `None`: there is no committed file, so the committed
/// layer is empty and `root`, unless the local layer writes one, is `flowloom init`'s.
pub(super) fn from_layers(
    path: &Path,
    committed: Option<String>,
    local: Option<String>,
) -> Result<Manifest, ManifestError> {
    let absent = committed.is_none();
    let mut manifest = from_sources(path, committed.unwrap_or_default(), local)?;
    if absent {
        manifest.committed_absent = true;
        if !manifest.defaults.root_given
            && let Ok(root) = normalise_root(super::STARTER_ROOT)
        {
            manifest.defaults.root = root;
        }
    }
    Ok(manifest)
}

/// A manifest file's text; `None` when there is no such file.
pub(super) fn read_text(path: &Path) -> Result<Option<String>, ManifestError> {
    match read_regular(path, MAX_BYTES) {
        Ok(Some(bytes)) => utf8(path, bytes).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(ManifestError::unreadable(path, Some(&e))),
    }
}

/// The file is read as bytes so that a stray Latin-1 byte is a diagnostic, not an io error
/// without a location.
fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, ManifestError> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        // The lossy text equals the original up to `offset`, where one U+FFFD stands for
        // the bad sequence: a span over it stays on char boundaries.
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        let finding = Finding::new(
            format!("not valid UTF-8: invalid byte at offset {offset}"),
            offset..offset + '\u{FFFD}'.len_utf8(),
            "not UTF-8",
        )
        .help("save the file as UTF-8");
        ManifestError::new(path, text.into(), vec![finding])
    })
}

/// Bytes as `load` reads them (the tests' way in).
#[cfg(test)]
fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Manifest, ManifestError> {
    from_source(path, utf8(path, bytes)?)
}

pub(super) fn from_source(path: &Path, source: String) -> Result<Manifest, ManifestError> {
    from_sources(path, source, None)
}

/// The committed manifest at `path` with its local layer's text, if there is one (SPEC
/// §11.1): local sessions are checked with the committed `[defaults]` (the local file may
/// set `root` only), and against the committed sessions (an id, branch or folder declared
/// twice is an error pointing at both).
pub(super) fn from_sources(path: &Path, source: String, local: Option<String>) -> Result<Manifest, ManifestError> {
    let mut findings = Vec::new();
    let Some(mut raw) = schema::parse(&source, &mut findings) else {
        return Err(ManifestError::new(path, source.into(), findings));
    };
    let local = local.map(|text| LocalFile {
        path: super::local_path(path),
        offset: source.len() + 1,
        source: text,
    });
    let combined = match &local {
        Some(l) => format!("{source}\n{}", l.source),
        None => source.clone(),
    };
    let mut local_ids = std::collections::BTreeSet::new();
    if let Some(l) = &local {
        // Parsed with its spans where the combined text has them.
        let padded = format!("{}{}", " ".repeat(l.offset), l.source);
        let Some(theirs) = schema::parse_layer(&padded, true, &mut findings) else {
            return Err(ManifestError::layered(path, &source, l, findings));
        };
        if let Some(root) = theirs.defaults.root {
            raw.defaults.root = Some(root);
        }
        for s in theirs.sessions {
            if let Some(ours) = raw.sessions.iter().find(|o| o.id.value == s.id.value) {
                findings.push(both_layers(&s.id, &ours.id, path));
                continue;
            }
            local_ids.insert(s.id.value.clone());
            raw.sessions.push(s);
        }
        raw.sessions.sort_by(|a, b| a.id.value.cmp(&b.id.value));
    }
    let (defaults, mut sessions) = check(&raw, &combined, &mut findings);
    if !findings.is_empty() {
        return Err(match &local {
            Some(l) => ManifestError::layered(path, &source, l, findings),
            None => ManifestError::new(path, source.into(), findings),
        });
    }
    for id in &local_ids {
        if let Some(s) = sessions.get_mut(id) {
            s.layer = Layer::Local;
        }
    }
    let dir = path.parent().map(Path::to_owned).unwrap_or_default();
    Ok(Manifest {
        path: path.to_owned(),
        // `{repo}` until the repository is known: the manifest's folder name.
        repo: dir.file_name().map(std::ffi::OsStr::to_owned).unwrap_or_default(),
        dir,
        source,
        local,
        committed_absent: false,
        defaults,
        sessions,
    })
}

/// An id declared in both layers: one problem, shown in each file.
fn both_layers(local: &Str, committed: &Str, path: &Path) -> Finding {
    let id = &local.value;
    Finding::new(
        format!("session `{id}` is declared in both {} and {}", shown(path), super::LOCAL_FILE_NAME),
        local.span.clone(),
        "declared in this clone's local layer",
    )
    .label(committed.span.clone(), "declared in the committed manifest")
    .help(format!(
        "keep one: remove `[{}]` from one of the files (`flowloom share {id}` / `flowloom unshare {id}` move a session between them)",
        schema::session_header(id)
    ))
}

/// Applies SPEC §2 to the raw manifest. The returned model is only meaningful when no
/// finding was added.
fn check(raw: &RawManifest, source: &str, out: &mut Vec<Finding>) -> (Defaults, BTreeMap<String, Session>) {
    let d = &raw.defaults;
    let base = non_empty(d.base.as_ref(), "base", out).unwrap_or("main");
    let remote = d.remote.as_ref().map_or("origin", |r| check_remote(r, out));
    let root = check_root(d.root.as_ref(), source, out);
    let branch = DefaultTemplate::check(Kind::Branch, d.branch.as_ref(), source, out);
    let worktree = DefaultTemplate::check(Kind::Worktree, d.worktree.as_ref(), source, out);
    let default_environment = environment::check(&d.environment, source, out);

    let mut sessions = BTreeMap::new();
    let mut branches = Vec::new();
    let mut worktrees = Vec::new();
    for s in &raw.sessions {
        let id = s.id.value.as_str();
        if !is_valid_id(id) {
            out.push(
                Finding::new(format!("invalid session id `{id}`"), s.id.span.clone(), id_reason(id)).help(
                    "an id starts with a letter or digit, continues with letters, digits, \
                         `.`, `_` or `-`, has at most 64 characters and does not end in `.lock`",
                ),
            );
            // Names expanded from a bad id would only repeat this problem.
            continue;
        }
        let branch_name = expand(Kind::Branch, &branch, s, source, out);
        let worktree_name = expand(Kind::Worktree, &worktree, s, source, out);
        if let Some((name, span)) = &branch_name {
            branches.push(Claim {
                id,
                name: name.clone(),
                span: span.clone(),
            });
        }
        if let Some((name, span)) = &worktree_name {
            worktrees.push(Claim {
                id,
                name: name.clone(),
                span: span.clone(),
            });
        }
        let own_base = s
            .base
            .as_ref()
            .and_then(|b| non_empty(Some(b), "base", out).map(|v| (v, b)));
        let (base, base_span) = match own_base {
            Some((value, b)) => (value, Some(b.span.clone())),
            None => (base, d.base.as_ref().map(|b| b.span.clone())),
        };
        let own_environment = environment::check(&s.environment, source, out);
        let environment = environment::merge(id, &default_environment, &own_environment, source, out);
        sessions.insert(
            id.to_owned(),
            Session {
                id: id.to_owned(),
                purpose: s.purpose.as_ref().map_or(id, |p| p.value.as_str()).to_owned(),
                base: base.to_owned(),
                base_span,
                branch: branch_name.map(|(n, _)| n).unwrap_or_default(),
                worktree: worktree_name.map(|(n, _)| n).unwrap_or_default(),
                environment,
                layer: Layer::Shared,
            },
        );
    }
    collisions(Kind::Branch, &branches, out);
    collisions(Kind::Worktree, &worktrees, out);
    branch_prefixes(&branches, out);

    let defaults = Defaults {
        base: base.to_owned(),
        base_given: d.base.is_some(),
        root,
        root_given: d.root.is_some(),
        branch: branch.template,
        worktree: worktree.template,
        remote: remote.to_owned(),
        environment: defaults_environment(default_environment),
    };
    (defaults, sessions)
}

/// The worktrees root, normalised (`sessions` when not written).
fn check_root(root: Option<&Str>, source: &str, out: &mut Vec<Finding>) -> PathBuf {
    match root {
        Some(r) => normalise_root(&r.value).unwrap_or_else(|(label, help, at)| {
            let span = at.map_or_else(|| r.span.clone(), |at| inner_span(source, r, at));
            out.push(Finding::new(format!("invalid `root` \"{}\"", r.value), span, label).help(help));
            PathBuf::new()
        }),
        None => PathBuf::from("sessions"),
    }
}

/// `[defaults]`'s environment as the model holds it: what is not written is empty.
fn defaults_environment(checked: environment::Checked) -> crate::manifest::Environment {
    crate::manifest::Environment {
        copy: checked.copy.unwrap_or_default(),
        setup: checked.setup.unwrap_or_default(),
        ports: checked.ports.unwrap_or_default(),
        env: checked
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect(),
        teardown: checked.teardown.unwrap_or_default(),
        merge: checked.merge,
    }
}

fn non_empty<'a>(value: Option<&'a Str>, key: &str, out: &mut Vec<Finding>) -> Option<&'a str> {
    let v = value?;
    if v.value.trim().is_empty() {
        out.push(
            Finding::new(format!("`{key}` is empty"), v.span.clone(), "empty")
                .help(format!("write a value, or remove the `{key}` line to use the default")),
        );
        return None;
    }
    Some(&v.value)
}

/// The remote name must work inside `refs/remotes/<remote>/<branch>` (SPEC §6).
fn check_remote<'a>(r: &'a Str, out: &mut Vec<Finding>) -> &'a str {
    let Some(remote) = non_empty(Some(r), "remote", out) else {
        return "origin";
    };
    let as_ref = format!("refs/remotes/{remote}/x");
    if gix::validate::reference::name(as_ref.as_bytes().into()).is_err() || remote.starts_with('-') {
        out.push(
            Finding::new(
                format!("invalid remote name `{remote}`"),
                r.span.clone(),
                "not a git remote name",
            )
            .help("write the name of a git remote, as `git remote` lists it, e.g. `origin`"),
        );
    }
    remote
}

fn id_reason(id: &str) -> String {
    if id.is_empty() {
        return "empty".into();
    }
    let chars = id.chars().count();
    if chars > 64 {
        return format!("{chars} characters, at most 64 allowed");
    }
    if id.ends_with(".lock") {
        return "ends in `.lock`".into();
    }
    match id
        .chars()
        .enumerate()
        .find(|&(i, c)| !(c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '.' | '_' | '-'))))
    {
        Some((0, c)) => format!("starts with {c:?}"),
        Some((_, c)) => format!("contains {c:?}"),
        None => "not a valid id".into(),
    }
}

/// `root`: relative to the manifest's folder (leading `..` may leave it), `{repo}` its only
/// placeholder, no `.git` component. Returns it normalised (`{repo}` kept, expanded by
/// [`Manifest::root_dir`]), or (label, help, where in the value) saying what is wrong. The
/// real path is checked again where the repository is known (`state::check_root`).
pub(super) fn normalise_root(root: &str) -> Result<PathBuf, (String, String, Option<Range<usize>>)> {
    let inside = "write a folder relative to the manifest's folder, e.g. `sessions` or `../{repo}.sessions`";
    let err = |label: &str, help: &str| Err((label.to_owned(), help.to_owned(), None));
    if root.contains('\0') {
        return err("contains a NUL byte", inside);
    }
    if root.chars().any(|c| c.is_control() && c != '\0') {
        // A newline would split the root's lines in `info/exclude`.
        return err("contains a control character (a newline, an escape)", inside);
    }
    if root.contains('\\') {
        // On Windows a separator, elsewhere a file name character: refuse the ambiguity.
        return err("contains `\\`", "separate folders with `/`");
    }
    if let Some((at, what)) = stray_brace(root, Manifest::REPO_PLACEHOLDER) {
        let help = if root.get(at.clone()) == Some(Template::PLACEHOLDER) {
            "`root` holds every session's worktree: `{id}` belongs in the `worktree` template; \
             the only placeholder of `root` is `{repo}`, the main worktree's folder name"
        } else {
            "the only placeholder of `root` is `{repo}`, the main worktree's folder name; other braces are not allowed"
        };
        return Err((what, help.to_owned(), Some(at)));
    }
    let bytes = root.as_bytes();
    let drive = bytes.len() >= 2 && bytes.first().is_some_and(u8::is_ascii_alphabetic) && bytes.get(1) == Some(&b':');
    if root.starts_with('/') || drive {
        return err(
            "an absolute path",
            "the manifest is shared, and an absolute folder exists on one machine only: write it relative to the \
             manifest's folder, e.g. `../{repo}.sessions` beside the repository",
        );
    }
    if root.starts_with('~') {
        return err("`~` is not expanded here", inside);
    }
    let parts: Vec<&str> = root.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let ups = parts.iter().take_while(|p| **p == "..").count();
    // `..` only at the start: after a folder name it may undo a symlink rather than the
    // name, and nobody needs to write `a/../b`.
    if parts.iter().skip(ups).any(|p| *p == "..") {
        return err(
            "`..` after a folder name",
            "write `..` only at the start, e.g. `../{repo}.sessions`, and the folders after it",
        );
    }
    // SPEC §11.4: one `..` at most (the main worktree's own folder, or a sibling of it): a
    // committed file must not place folders elsewhere on the machine.
    if ups > 1 {
        return Err((
            format!("leaves the manifest's folder by {ups} `..`, at most 1 allowed"),
            "write the sessions' folder inside the repository (`sessions`) or beside it (`../{repo}.sessions`)"
                .to_owned(),
            second_parent(root),
        ));
    }
    // Git treats a `.git` component anywhere as its own (and filesystems may ignore case).
    if parts.iter().any(|p| p.eq_ignore_ascii_case(".git")) {
        return err(
            "inside `.git`",
            "session worktrees cannot live in git's own folder; write e.g. `sessions`",
        );
    }
    if parts.iter().any(|p| p.len() > MAX_NAME_BYTES) {
        return err(
            "a folder name longer than 255 bytes",
            "no filesystem flowloom runs on stores such a name; write a shorter folder",
        );
    }
    if root.len() > 1024 {
        return err("longer than 1024 bytes", "write a shorter folder, e.g. `sessions`");
    }
    if parts.is_empty() {
        return err(
            "names the manifest's folder itself",
            "session worktrees need a folder of their own; write e.g. `sessions`",
        );
    }
    if ups == parts.len() {
        return err(
            "names a folder that holds the manifest",
            "session worktrees need a folder of their own, outside the repository's files: write e.g. \
             `../{repo}.sessions`",
        );
    }
    Ok(parts.iter().collect())
}

/// Where in `root` its second `..` starts, to the end of its last leading `..`.
fn second_parent(root: &str) -> Option<Range<usize>> {
    let mut at = 0;
    let mut ups = Vec::new();
    for part in root.split('/') {
        match part {
            ".." => ups.push(at..at + 2),
            "" | "." => {}
            _ => break,
        }
        at += part.len() + 1;
    }
    Some(ups.get(1)?.start..ups.last()?.end)
}

/// The two templates differ only in what their expansion must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Branch,
    Worktree,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Branch => "branch",
            Kind::Worktree => "worktree",
        }
    }

    fn builtin(self) -> &'static str {
        match self {
            Kind::Branch => "session/{id}",
            Kind::Worktree => "shell-instance-{id}",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Branch => "git branch name",
            Kind::Worktree => "worktree folder name",
        }
    }

    /// Why `name` is not usable, if it is not.
    fn problem(self, name: &str) -> Option<String> {
        match self {
            Kind::Branch => branch_problem(name),
            Kind::Worktree => worktree_problem(name).map(str::to_owned),
        }
    }
}

fn worktree_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_BYTES {
        Some("it is longer than 255 bytes, the longest folder name most filesystems allow")
    } else if name.contains(['/', '\\']) {
        Some("it is not a single folder name (it contains a path separator)")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are not folder names")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else if name.chars().any(char::is_control) {
        // A newline would split the folder's line in `info/exclude` (the rest a pattern of
        // its own) and in `git worktree list --porcelain`.
        Some("it contains a control character (a newline, an escape)")
    } else if name.eq_ignore_ascii_case(".git") {
        Some("`.git` is git's own folder name")
    } else if name.to_ascii_lowercase().starts_with(".flowloom") {
        Some("names starting with `.flowloom` are flowloom's own (its trash folder, its temporary files)")
    } else {
        None
    }
}

/// A `[defaults]` template after its own checks.
struct DefaultTemplate<'a> {
    template: Template,
    written: Option<&'a Str>,
    /// False when the template itself is broken: then sessions using it are not checked
    /// one by one, which would only repeat that problem once per session.
    usable: bool,
}

impl<'a> DefaultTemplate<'a> {
    fn check(kind: Kind, written: Option<&'a Str>, source: &str, out: &mut Vec<Finding>) -> Self {
        let Some(w) = written else {
            return DefaultTemplate {
                template: Template::new(kind.builtin()),
                written,
                usable: true,
            };
        };
        let key = kind.key();
        let mut usable = placeholders_ok(w, source, out);
        if usable && !w.value.contains(Template::PLACEHOLDER) {
            // Without `{id}` every session gets the same name, and §3's scope (names the
            // default template could produce) would be a single name.
            out.push(
                Finding::new(
                    format!("the default `{key}` template has no `{{id}}`"),
                    w.span.clone(),
                    "no `{id}`",
                )
                .help(format!(
                    "the default must differ per session, e.g. `{key} = \"{}\"`; a fixed name \
                         belongs in one session's own `{key}`",
                    kind.builtin()
                )),
            );
            usable = false;
        }
        if usable {
            // A name that fails for a plain id fails for every id: say so once.
            let probe = Template::new(w.value.as_str()).expand("x");
            if let Some(why) = kind.problem(&probe) {
                out.push(
                    Finding::new(
                        format!("the default `{key}` template does not give valid {}s", kind.what()),
                        w.span.clone(),
                        format!("for session `x` this is `{probe}`: {why}"),
                    )
                    .help(format!(
                        "write a template that gives a valid {}, e.g. `{}`",
                        kind.what(),
                        kind.builtin()
                    )),
                );
                usable = false;
            }
        }
        DefaultTemplate {
            template: Template::new(w.value.as_str()),
            written,
            usable,
        }
    }
}

/// Only `{id}` may appear in braces. Reports the first stray brace, pointing into the value.
fn placeholders_ok(t: &Str, source: &str, out: &mut Vec<Finding>) -> bool {
    let Some((at, what)) = stray_brace(&t.value, Template::PLACEHOLDER) else {
        return true;
    };
    out.push(
        Finding::new(
            format!("invalid template \"{}\": {what}", t.value),
            inner_span(source, t, at),
            what,
        )
        .help("the only placeholder is `{id}`, the session id; other braces are not allowed"),
    );
    false
}

/// The first brace in `text` that is not part of `placeholder`: its byte range and a
/// description.
fn stray_brace(text: &str, placeholder: &str) -> Option<(Range<usize>, String)> {
    let mut from = 0;
    loop {
        let rest = text.get(from..)?;
        let at = from + rest.find(['{', '}'])?;
        let tail = text.get(at..)?;
        if tail.starts_with(placeholder) {
            from = at + placeholder.len();
        } else if tail.starts_with('}') {
            return Some((at..at + 1, "`}` without a `{`".into()));
        } else {
            return Some(match tail.find('}') {
                Some(end) => {
                    let name = tail.get(..=end).unwrap_or(tail);
                    (at..at + end + 1, format!("unknown placeholder `{name}`"))
                }
                None => (at..at + 1, "`{` that is never closed".into()),
            });
        }
    }
}

/// Expands the session's own template or the default one, and checks the result. Returns
/// the name and the span that collisions should point at.
fn expand(
    kind: Kind,
    default: &DefaultTemplate<'_>,
    s: &RawSession,
    source: &str,
    out: &mut Vec<Finding>,
) -> Option<(String, Range<usize>)> {
    let id = s.id.value.as_str();
    let key = kind.key();
    let own = match kind {
        Kind::Branch => s.branch.as_ref(),
        Kind::Worktree => s.worktree.as_ref(),
    };
    if let Some(own) = own {
        if !placeholders_ok(own, source, out) {
            return None;
        }
        let name = Template::new(own.value.as_str()).expand(id);
        if let Some(why) = kind.problem(&name) {
            out.push(
                Finding::new(
                    format!("session `{id}`: `{name}` is not a valid {}", kind.what()),
                    own.span.clone(),
                    why,
                )
                .help(format!("write a valid {} for `{key}`", kind.what())),
            );
            return None;
        }
        return Some((name, own.span.clone()));
    }
    if !default.usable {
        return None;
    }
    let name = default.template.expand(id);
    let Some(why) = kind.problem(&name) else {
        return Some((name, s.id.span.clone()));
    };
    let message = format!(
        "the default `{key}` template gives session `{id}` the invalid {} `{name}`",
        kind.what()
    );
    let help = format!(
        "rename the session, or give it its own `{key}` in `[{}]`",
        schema::session_header(id)
    );
    out.push(match default.written {
        Some(w) => Finding::new(message, w.span.clone(), format!("for session `{id}`: {why}"))
            .label(s.id.span.clone(), format!("session `{id}`"))
            .help(help),
        None => Finding::new(message, s.id.span.clone(), why).help(help),
    });
    None
}

/// A session's branch or worktree name, for the collision checks.
struct Claim<'a> {
    id: &'a str,
    name: String,
    /// Where to point for this session: its own value, or its id when the name comes from
    /// a default.
    span: Range<usize>,
}

/// Two sessions may not share a branch or a worktree folder. Names that differ only in case
/// count as the same: on macOS and Windows they are one file.
fn collisions(kind: Kind, claims: &[Claim<'_>], out: &mut Vec<Finding>) {
    let mut groups: BTreeMap<String, Vec<&Claim<'_>>> = BTreeMap::new();
    for entry in claims {
        groups.entry(entry.name.to_lowercase()).or_default().push(entry);
    }
    let key = kind.key();
    for group in groups.values().filter(|g| g.len() > 1) {
        let ids = group.iter().map(|c| format!("`{}`", c.id)).collect::<Vec<_>>();
        let same = group.iter().all(|c| Some(&c.name) == group.first().map(|g| &g.name));
        let what = match kind {
            Kind::Branch => "branch",
            Kind::Worktree => "worktree folder",
        };
        let message = match group.first() {
            Some(c) if same => {
                format!("sessions {} have the same {what} `{}`", join_and(&ids), c.name)
            }
            _ => format!("sessions {} have {what}s that differ only in case", join_and(&ids)),
        };
        let mut labels = group
            .iter()
            .map(|c| (c.span.clone(), format!("session `{}`: {what} `{}`", c.id, c.name)));
        let Some((span, label)) = labels.next() else {
            continue;
        };
        let mut finding = Finding::new(message, span, label);
        for (span, label) in labels {
            finding = finding.label(span, label);
        }
        let help = if same {
            format!("give each session its own `{key}`")
        } else {
            format!("give each session its own `{key}`: on macOS and Windows these names are the same file")
        };
        out.push(finding.help(help));
    }
}

/// git stores `a` as a file, so `a/b` (which needs a folder `a`) cannot exist beside it.
fn branch_prefixes(branches: &[Claim<'_>], out: &mut Vec<Finding>) {
    let by_name: BTreeMap<String, &Claim<'_>> = branches.iter().map(|b| (b.name.to_lowercase(), b)).collect();
    for (lower, long) in &by_name {
        for (slash, _) in lower.match_indices('/') {
            let Some(short) = lower.get(..slash).and_then(|p| by_name.get(p)) else {
                continue;
            };
            let Claim {
                id: short_id,
                name: short_name,
                span: short_span,
            } = short;
            let Claim {
                id: long_id,
                name: long_name,
                span: long_span,
            } = long;
            out.push(
                Finding::new(
                    format!("branches `{short_name}` and `{long_name}` cannot both exist"),
                    long_span.clone(),
                    format!("session `{long_id}`: branch `{long_name}`"),
                )
                .label(
                    short_span.clone(),
                    format!("session `{short_id}`: branch `{short_name}`"),
                )
                .help(format!(
                    "git stores branch `{short_name}` as a file where `{long_name}` needs a folder; \
                     rename one of them"
                )),
            );
        }
    }
}

fn join_and(items: &[String]) -> String {
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
// A failed unwrap is a failed test, which is what it should be.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SPEC_EXAMPLE: &str = r#"version = 1                        # optional; only 1 exists

[defaults]                         # every key optional; these are the defaults
base     = "main"                  # start point of new session branches: any revspec
root     = "sessions"              # folder that holds the session worktrees
branch   = "session/{id}"          # branch name template
worktree = "shell-instance-{id}"   # worktree folder name template (inside root)
remote   = "origin"                # where existing session branches are looked for (§6)

[sessions.auth-refactor]           # the table key is the session id
purpose  = "Refactor the auth middleware"   # optional; defaults to the id
base     = "develop"               # optional per-session overrides of
branch   = "feature/auth"          #   base, branch and worktree
worktree = "auth"

[sessions.docs-sweep]
"#;

    fn parse(source: &str) -> Result<Manifest, ManifestError> {
        from_source(Path::new("flowloom.toml"), source.to_owned())
    }

    fn error(source: &str) -> ManifestError {
        parse(source).expect_err("the manifest should be rejected")
    }

    fn messages(source: &str) -> Vec<String> {
        error(source).problems.iter().map(|p| p.message.clone()).collect()
    }

    /// The text under each label of each problem, to check where diagnostics point.
    fn pointed_at(source: &str) -> Vec<Vec<String>> {
        error(source)
            .problems
            .iter()
            .map(|p| {
                p.labels()
                    .iter()
                    .map(|l| source.get(l.offset()..l.offset() + l.len()).unwrap().to_owned())
                    .collect()
            })
            .collect()
    }

    fn render(err: &ManifestError) -> String {
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(80)
            .render_report(&mut out, err)
            .unwrap();
        out
    }

    fn ok(source: &str) -> Manifest {
        match parse(source) {
            Ok(m) => m,
            Err(e) => panic!("{}", render(&e)),
        }
    }

    #[test]
    fn spec_example_parses_into_the_model() {
        let m = from_source(Path::new("/repo/flowloom.toml"), SPEC_EXAMPLE.to_owned()).unwrap();
        assert_eq!(m.path, Path::new("/repo/flowloom.toml"));
        assert_eq!(m.dir, Path::new("/repo"));
        assert_eq!(
            m.defaults,
            Defaults {
                base: "main".into(),
                base_given: true,
                root: "sessions".into(),
                root_given: true,
                branch: Template::new("session/{id}"),
                worktree: Template::new("shell-instance-{id}"),
                remote: "origin".into(),
                environment: Default::default(),
            }
        );
        let auth = &m.sessions["auth-refactor"];
        assert_eq!(
            (
                auth.purpose.as_str(),
                auth.base.as_str(),
                auth.branch.as_str(),
                auth.worktree.as_str()
            ),
            ("Refactor the auth middleware", "develop", "feature/auth", "auth")
        );
        assert_eq!(SPEC_EXAMPLE.get(auth.base_span.clone().unwrap()), Some("\"develop\""));
        let docs = &m.sessions["docs-sweep"];
        assert_eq!(
            (
                docs.purpose.as_str(),
                docs.base.as_str(),
                docs.branch.as_str(),
                docs.worktree.as_str()
            ),
            ("docs-sweep", "main", "session/docs-sweep", "shell-instance-docs-sweep")
        );
        assert_eq!(SPEC_EXAMPLE.get(docs.base_span.clone().unwrap()), Some("\"main\""));
        assert_eq!(m.sessions.len(), 2);
        assert_eq!(
            m.worktree_path(docs),
            Path::new("/repo/sessions/shell-instance-docs-sweep")
        );
    }

    #[test]
    fn empty_manifest_has_the_spec_defaults() {
        let m = ok("");
        assert_eq!(m.defaults.base, "main");
        assert_eq!(m.defaults.root, Path::new("sessions"));
        assert_eq!(m.defaults.branch.as_str(), "session/{id}");
        assert_eq!(m.defaults.worktree.as_str(), "shell-instance-{id}");
        assert_eq!(m.defaults.remote, "origin");
        assert!(m.sessions.is_empty());
        // Nothing spells `base` out, so there is nothing to point at later.
        assert_eq!(ok("[sessions.a]").sessions["a"].base_span, None);
    }

    #[test]
    fn empty_and_inline_session_tables_are_sessions() {
        let m = ok("sessions = { a = {}, b = { purpose = \"B\" }, c.purpose = \"c\" }\n");
        assert_eq!(m.sessions.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(m.sessions["b"].purpose, "B");
    }

    #[test]
    fn broken_toml_points_at_the_error() {
        let source = "[sessions.a]\npurpose = \"unterminated\n";
        let err = error(source);
        assert!(
            err.problems[0].message.starts_with("invalid TOML"),
            "{}",
            err.problems[0].message
        );
        assert_eq!(err.problems[0].labels().len(), 1);
        assert!(messages("[sessions.a]\n[sessions.a]\n")[0].contains("duplicate key"));
    }

    #[test]
    fn wrong_types_are_reported_at_the_value() {
        let source = "version = \"1\"\n[defaults]\nbase = 3\n[sessions]\nx = \"y\"\nz = { purpose = true }\n";
        assert_eq!(
            messages(source),
            [
                "`version` must be an integer, found string",
                "`base` must be a string, found integer",
                "session `x` must be a table, found string",
                "`purpose` must be a string, found boolean",
            ]
        );
        assert_eq!(pointed_at(source), [["\"1\""], ["3"], ["\"y\""], ["true"]]);
        assert_eq!(
            messages("[[sessions]]\n"),
            ["`[sessions]` must be a table, found array"]
        );
        assert_eq!(
            messages("defaults = 1"),
            ["`[defaults]` must be a table, found integer"]
        );
    }

    #[test]
    fn only_version_1_is_supported() {
        ok("version = 1");
        ok("version = 0x1");
        assert_eq!(messages("version = 2"), ["unsupported manifest version 2"]);
        assert_eq!(messages("version = 99999999999999999999999").len(), 1);
    }

    #[test]
    fn unknown_keys_are_errors_with_suggestions() {
        let source = "sesions = 1\n[defaults]\nbrnch = \"x/{id}\"\npurpose = \"p\"\n[sessions.a]\npurpse = \"x\"\nroot = \"r\"\nzzz = 1\n";
        let err = error(source);
        let found: Vec<_> = err
            .problems
            .iter()
            .map(|p| (p.message.as_str(), p.help.as_deref().unwrap()))
            .collect();
        assert_eq!(
            found,
            [
                ("unknown key `sesions` in the top level", "did you mean `sessions`?"),
                ("unknown key `brnch` in [defaults]", "did you mean `branch`?"),
                (
                    "unknown key `purpose` in [defaults]",
                    "`purpose` is set per session, in `[sessions.<id>]`"
                ),
                ("unknown key `purpse` in [sessions.a]", "did you mean `purpose`?"),
                (
                    "unknown key `root` in [sessions.a]",
                    "`root` applies to all sessions: set it in `[defaults]`"
                ),
                (
                    "unknown key `zzz` in [sessions.a]",
                    "the keys known here are `purpose`, `base`, `branch`, `worktree`, `copy`, `setup`, `ports`, `env`, `teardown`, `merge`"
                ),
            ]
        );
        assert_eq!(
            pointed_at(source),
            [["sesions"], ["brnch"], ["purpose"], ["purpse"], ["root"], ["zzz"]]
        );
    }

    #[test]
    fn invalid_session_ids() {
        for id in ["-x", ".x", "a/b", "x.lock", "a b", "é", ""] {
            let source = format!("[sessions.\"{id}\"]\n");
            assert_eq!(messages(&source), [format!("invalid session id `{id}`")], "{id}");
        }
        let long = "a".repeat(65);
        assert_eq!(pointed_at(&format!("[sessions.{long}]")), [[long]]);
        ok(&format!(
            "[sessions.{}]\n[sessions.\"4242-my.purpose_x\"]\n",
            "a".repeat(64)
        ));
    }

    #[test]
    fn templates_know_only_the_id_placeholder() {
        let source =
            "[defaults]\nbranch = \"s/{name}\"\n[sessions.a]\nworktree = \"w-{id}}\"\n[sessions.b]\nbranch = \"{id\"\n";
        assert_eq!(
            messages(source),
            [
                "invalid template \"s/{name}\": unknown placeholder `{name}`",
                "invalid template \"w-{id}}\": `}` without a `{`",
                "invalid template \"{id\": `{` that is never closed",
            ]
        );
        // Points at the brace itself when the value has no escapes; else the whole value.
        assert_eq!(pointed_at(source), [["{name}"], ["}"], ["{"]]);
        assert_eq!(
            pointed_at("[defaults]\nbranch = \"\\u0041{x}{id}\"\n"),
            [["\"\\u0041{x}{id}\""]]
        );
        ok("[defaults]\nbranch = \"{id}/{id}\"\nworktree = '{id}'\n[sessions.a]\nbranch = \"fixed\"\n");
    }

    #[test]
    fn default_templates_need_the_id() {
        assert_eq!(
            messages("[defaults]\nworktree = \"wt\"\n"),
            ["the default `worktree` template has no `{id}`"]
        );
    }

    #[test]
    fn expanded_branch_must_be_a_git_branch_name() {
        for bad in [
            "HEAD",
            "-x",
            "a..b",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[b",
            "a\\\\b",
            "a//b",
            "/a",
            "a/",
            "a.",
            ".a",
            "a/.b",
            "a.lock",
            "a/b.lock/c",
            "a@{b",
            "@",
            "",
        ] {
            let source = format!("[sessions.s]\nbranch = \"{bad}\"\n");
            assert_eq!(messages(&source).len(), 1, "{bad:?} should be refused");
        }
        for good in ["a", "a/b", "a-b_c.d", "@a", "a@b", "héllo", "x/HEAD", "{id}.b"] {
            ok(&format!("[sessions.s]\nbranch = \"{good}\"\n"));
        }
    }

    #[test]
    fn broken_default_branch_template_is_reported_once() {
        let source = "[defaults]\nbranch = \"s//{id}\"\n[sessions.a]\n[sessions.b]\n";
        assert_eq!(
            messages(source),
            ["the default `branch` template does not give valid git branch names"]
        );
    }

    #[test]
    fn default_template_failing_for_one_id_points_at_defaults_and_names_the_session() {
        let source = "[defaults]\nbranch = \"s/{id}\"\n[sessions.a..b]\n[sessions.ok]\n";
        // `a..b` is a valid id (dots are allowed) but not a valid branch component.
        let source = source.replace("[sessions.a..b]", "[sessions.\"a..b\"]");
        assert_eq!(
            messages(&source),
            ["the default `branch` template gives session `a..b` the invalid git branch name `s/a..b`"]
        );
        assert_eq!(pointed_at(&source), [["\"s/{id}\"", "\"a..b\""]]);
        // With the built-in template there is no `[defaults]` value: point at the session.
        assert_eq!(pointed_at("[sessions.\"x..y\"]\n"), [["\"x..y\""]]);
    }

    #[test]
    fn expanded_worktree_is_one_path_component() {
        for bad in [
            "a/b",
            "a\\\\b",
            ".",
            "..",
            "",
            ".git",
            ".GIT",
            ".flowloom-trash",
            ".FlowLoom-x",
            "a\\nb",
            "a\\u001b[2Jb",
        ] {
            let source = format!("[sessions.s]\nworktree = \"{bad}\"\n");
            assert_eq!(messages(&source).len(), 1, "{bad:?} should be refused");
        }
        ok("[sessions.s]\nworktree = \"..x\"\n");
        assert_eq!(
            messages("[defaults]\nworktree = \"w/{id}\"\n"),
            ["the default `worktree` template does not give valid worktree folder names"]
        );
    }

    #[test]
    fn root_is_relative_inside_and_not_git() {
        for bad in [
            "",
            "/abs",
            "C:/x",
            "c:",
            "..",
            "a/../../x",
            "a/../b",
            ".git",
            ".git/x",
            "a/.Git",
            ".",
            "./",
            "a\\b",
            "~/s",
            "../..",
            "../a/..",
            "../{id}",
            "../../x",
            "./.././../x",
            "..//../x/{repo}",
            "../../../../etc/x",
            "../{repo",
            "{Repo}.s",
            "../}",
        ] {
            let source = format!("[defaults]\nroot = '{bad}'\n");
            assert_eq!(
                messages(&source),
                [format!("invalid `root` \"{bad}\"")],
                "{bad:?} should be refused"
            );
        }
        for (written, normal) in [
            ("s", "s"),
            ("./a/b/", "a/b"),
            ("a//./b", "a/b"),
            ("..x", "..x"),
            (".gitx", ".gitx"),
            ("../{repo}.sessions/", "../{repo}.sessions"),
            ("./../x/{repo}-{repo}", "../x/{repo}-{repo}"),
        ] {
            assert_eq!(
                ok(&format!("[defaults]\nroot = '{written}'\n")).defaults.root,
                Path::new(normal)
            );
        }
    }

    #[test]
    fn root_leaves_the_manifests_folder_by_one_parent_at_most() {
        assert_eq!(pointed_at("[defaults]\nroot = '../../../../etc/x'\n"), [["../../.."]]);
        assert_eq!(pointed_at("[defaults]\nroot = './.././../x'\n"), [[".."]]);
        // Hidden after a name, or behind a backslash: refused as such, at the value.
        assert_eq!(pointed_at("[defaults]\nroot = 'a/../../..'\n"), [["'a/../../..'"]]);
        assert_eq!(pointed_at("[defaults]\nroot = '..\\..\\x'\n"), [["'..\\..\\x'"]]);
        assert_eq!(
            ok("[defaults]\nroot = '../{repo}.sessions'\n").defaults.root,
            Path::new("../{repo}.sessions")
        );
    }

    #[test]
    fn sessions_may_not_share_a_branch_or_worktree() {
        let source =
            "[sessions.a]\nbranch = \"session/b\"\nworktree = \"w\"\n[sessions.b]\n[sessions.c]\nworktree = \"W\"\n";
        assert_eq!(
            messages(source),
            [
                "sessions `a` and `b` have the same branch `session/b`",
                "sessions `a` and `c` have worktree folders that differ only in case",
            ]
        );
        assert_eq!(pointed_at(source), [["\"session/b\"", "b"], ["\"w\"", "\"W\""]]);
    }

    #[test]
    fn a_branch_cannot_be_a_prefix_folder_of_another() {
        let source = "[sessions.a]\nbranch = \"feature\"\n[sessions.b]\nbranch = \"feature/b\"\n";
        assert_eq!(
            messages(source),
            ["branches `feature` and `feature/b` cannot both exist"]
        );
        assert_eq!(pointed_at(source), [["\"feature/b\"", "\"feature\""]]);
    }

    #[test]
    fn base_and_remote_are_non_empty() {
        let source = "[defaults]\nbase = \"\"\nremote = \" \"\n[sessions.a]\nbase = \"\"\n";
        assert_eq!(
            messages(source),
            ["`base` is empty", "`remote` is empty", "`base` is empty"]
        );
        assert_eq!(
            messages("[defaults]\nremote = \"a..b\"\n"),
            ["invalid remote name `a..b`"]
        );
        ok("[defaults]\nremote = \"upstream/x\"\n");
    }

    #[test]
    fn base_span_is_the_sessions_own_or_the_default() {
        let source = "[defaults]\nbase = \"dev\"\n[sessions.a]\nbase = \"HEAD~1\"\n[sessions.b]\n";
        let m = ok(source);
        let at = |id: &str| m.sessions[id].base_span.clone().and_then(|s| source.get(s));
        assert_eq!((m.sessions["a"].base.as_str(), at("a")), ("HEAD~1", Some("\"HEAD~1\"")));
        assert_eq!((m.sessions["b"].base.as_str(), at("b")), ("dev", Some("\"dev\"")));
    }

    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let mut bytes = b"[sessions.a]\npurpose = \"caf".to_vec();
        bytes.extend([0xE9, b'"', b'\n']);
        let err = from_bytes(Path::new("flowloom.toml"), bytes).unwrap_err();
        assert_eq!(err.problems[0].message, "not valid UTF-8: invalid byte at offset 27");
        assert_eq!(err.problems[0].labels()[0].offset(), 27);
        insta::assert_snapshot!(render(&err));
    }

    #[test]
    fn missing_file_suggests_init() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flowloom.toml");
        let err = load(&path, false).unwrap_err();
        assert_eq!(err.to_string(), format!("cannot read manifest {}", path.display()));
        assert_eq!(err.problems[0].message, format!("no manifest at {}", path.display()));
        assert!(err.problems[0].help.as_deref().unwrap().contains("flowloom init"));
        std::fs::write(&path, "[sessions.a]\n").unwrap();
        assert_eq!(load(&path, false).unwrap().sessions["a"].branch, "session/a");
    }

    #[test]
    fn a_missing_committed_file_is_an_empty_layer_with_inits_root() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flowloom.toml");
        let m = load(&path, true).unwrap();
        assert!(m.committed_absent && m.sessions.is_empty() && m.local.is_none());
        assert_eq!(m.defaults.root, Path::new("../{repo}.sessions"));
        assert!(!m.defaults.root_given);
        // The local layer alone: its sessions, and its root when it writes one.
        std::fs::write(dir.path().join("flowloom.local.toml"), "[sessions.a]\n").unwrap();
        let m = load(&path, true).unwrap();
        assert_eq!(m.sessions["a"].layer, Layer::Local);
        assert_eq!(m.defaults.root, Path::new("../{repo}.sessions"));
        let edited = m
            .with_layer(Layer::Local, "[defaults]\nroot = \"s\"\n[sessions.a]\n".into())
            .unwrap();
        assert!(edited.committed_absent);
        assert_eq!(
            (edited.defaults.root.as_path(), edited.defaults.root_given),
            (Path::new("s"), true)
        );
        // Once there is a committed file, it counts as any other.
        std::fs::write(&path, "").unwrap();
        let m = load(&path, true).unwrap();
        assert!(!m.committed_absent);
        assert_eq!(m.defaults.root, Path::new("sessions"));
    }

    #[test]
    fn all_problems_are_reported_together() {
        let err = error("version = 3\n[defaults]\nroot = \"/x\"\n[sessions.\"-a\"]\n");
        assert_eq!(err.to_string(), "flowloom.toml has 3 problems");
        assert_eq!(error("version = 3").to_string(), "flowloom.toml has 1 problem");
    }

    #[test]
    fn snapshot_unknown_key_and_type() {
        let err = error("[defaults]\nbrnch = \"x/{id}\"\n\n[sessions.auth]\npurpose = 42\n");
        insta::assert_snapshot!(render(&err));
    }

    #[test]
    fn snapshot_duplicate_branch() {
        let err = error("[sessions.a]\nbranch = \"session/b\"\n\n[sessions.b]\npurpose = \"B\"\n");
        insta::assert_snapshot!(render(&err));
    }

    #[test]
    fn snapshot_default_template_for_one_session() {
        let err = error("[defaults]\nbranch = \"s/{id}\"\n\n[sessions.\"v1..2\"]\n");
        insta::assert_snapshot!(render(&err));
    }

    #[test]
    fn snapshot_bad_placeholder_and_root() {
        let err = error("[defaults]\nroot = \"../{id}.sessions\"\nworktree = \"wt-{name}\"\n");
        insta::assert_snapshot!(render(&err));
    }

    #[test]
    fn snapshot_broken_toml() {
        let err = error("[sessions.a]\npurpose = \"x\"\nbranch = \n");
        insta::assert_snapshot!(render(&err));
    }

    const FRAGMENTS: &[&str] = &[
        "version = 1\n",
        "version = ",
        "[defaults]\n",
        "[sessions.",
        "[[sessions]]\n",
        "]\n",
        "]",
        "sessions",
        "defaults",
        "base",
        "root",
        "branch",
        "worktree",
        "remote",
        "purpose",
        " = ",
        "=",
        "\"",
        "'",
        "\"\"\"",
        "{id}",
        "{",
        "}",
        "..",
        ".",
        "/",
        "\\",
        ".lock",
        ".git",
        "@{",
        "HEAD",
        "-",
        "a",
        "x",
        "1",
        "é",
        "\u{0}",
        "\n",
        "\r\n",
        "\t",
        "#",
        "[",
        ",",
        "{ a = {} }",
        "\"s/{id}\"",
        "\"w\"",
        "'x'",
    ];

    const HEADERS: &[&str] = &[
        "[defaults]\n",
        "[sessions.a]\n",
        "[sessions.b]\n",
        "[sessions.A]\n",
        "[sessions.\"a..b\"]\n",
        "[sessions.x-1]\n",
    ];
    const KEYS: &[&str] = &["base", "root", "branch", "worktree", "remote", "purpose", "brnch"];
    const VALUE_PARTS: &[&str] = &[
        "{id}", "session/", "s", "/", "..", ".", ".lock", "a", "A", "-", ".git", "{", "}", "@{", " ", "é",
    ];

    /// Manifests that are mostly valid TOML, so that the rules past the parser get exercised.
    fn manifest_lines() -> impl Strategy<Value = String> {
        let header = proptest::sample::select(HEADERS).prop_map(str::to_owned);
        let key_value = (
            proptest::sample::select(KEYS),
            proptest::collection::vec(proptest::sample::select(VALUE_PARTS), 0..6),
        )
            .prop_map(|(k, v)| format!("{k} = {:?}\n", v.concat()));
        proptest::collection::vec(prop_oneof![header, key_value], 0..16).prop_map(|l| l.concat())
    }

    proptest! {
        #[test]
        fn accepted_manifests_keep_the_rules(source in manifest_lines()) {
            match parse(&source) {
                Ok(m) => {
                    let mut branches = std::collections::BTreeSet::new();
                    let mut worktrees = std::collections::BTreeSet::new();
                    for s in m.sessions.values() {
                        prop_assert!(is_valid_id(&s.id));
                        prop_assert!(branch_problem(&s.branch).is_none());
                        prop_assert!(worktree_problem(&s.worktree).is_none());
                        prop_assert!(branches.insert(s.branch.to_lowercase()));
                        prop_assert!(worktrees.insert(s.worktree.to_lowercase()));
                    }
                    prop_assert!(normalise_root(&m.defaults.root.to_string_lossy()).is_ok());
                }
                Err(e) => {
                    prop_assert!(!e.problems.is_empty());
                    render(&e);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Err(e) = from_bytes(Path::new("flowloom.toml"), bytes) {
                render(&e);
            }
        }

        #[test]
        fn tomlish_text_never_panics(parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..60)) {
            match parse(&parts.concat()) {
                Ok(m) => {
                    // What is accepted satisfies the rules the rest of flowloom relies on.
                    for s in m.sessions.values() {
                        prop_assert!(is_valid_id(&s.id));
                        prop_assert!(branch_problem(&s.branch).is_none());
                        prop_assert!(worktree_problem(&s.worktree).is_none());
                    }
                }
                Err(e) => {
                    prop_assert!(!e.problems.is_empty());
                    render(&e);
                }
            }
        }
    }
}
