//! The shape of `flowloom.toml`: which keys exist where and what type their values have.
//!
//! We walk toml's spanned document tree by hand instead of deriving `Deserialize` because
//! serde stops at the first error, and SPEC §8 wants every problem of the file reported at
//! once, each pointing at its key or value. What comes out is still raw (strings with their
//! spans); what the values *mean* is checked in `validate.rs`.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

/// A problem found in the file, before it is tied to the file's text as a miette diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    pub message: String,
    /// The first label is the primary one.
    pub labels: Vec<(Range<usize>, String)>,
    pub help: Option<String>,
}

impl Finding {
    pub fn new(message: impl Into<String>, span: Range<usize>, label: impl Into<String>) -> Self {
        Finding {
            message: message.into(),
            labels: vec![(span, label.into())],
            help: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn label(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.labels.push((span, label.into()));
        self
    }
}

/// A string value and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Str {
    pub value: String,
    pub span: Range<usize>,
}

/// An array of strings and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StrList {
    pub items: Vec<Str>,
    pub span: Range<usize>,
}

/// An `env` table: names and values, with their spans, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StrTable {
    pub entries: Vec<(Str, Str)>,
    pub span: Range<usize>,
}

/// The session-environment keys (SPEC §10), allowed in `[defaults]` and per session.
#[derive(Debug, Default, Clone)]
pub(super) struct RawEnvironment {
    pub copy: Option<StrList>,
    pub setup: Option<StrList>,
    pub ports: Option<StrList>,
    pub env: Option<StrTable>,
    pub teardown: Option<StrList>,
    pub merge: Option<Str>,
}

impl RawEnvironment {
    /// Reads `key` into its slot; false when `key` is not one of the environment keys.
    fn read(&mut self, key: &Spanned<DeString<'_>>, value: &Spanned<DeValue<'_>>, out: &mut Vec<Finding>) -> bool {
        match key.get_ref().as_ref() {
            "copy" => self.copy = string_list(key, value, out),
            "setup" => self.setup = string_list(key, value, out),
            "ports" => self.ports = string_list(key, value, out),
            "env" => self.env = string_table(key, value, out),
            "teardown" => self.teardown = string_list(key, value, out),
            "merge" => self.merge = string(key, value, out),
            _ => return false,
        }
        true
    }
}

#[derive(Debug, Default)]
pub(super) struct RawDefaults {
    pub base: Option<Str>,
    pub root: Option<Str>,
    pub branch: Option<Str>,
    pub worktree: Option<Str>,
    pub remote: Option<Str>,
    pub environment: RawEnvironment,
}

#[derive(Debug)]
pub(super) struct RawSession {
    /// The table key, with the span of the key in `[sessions.<id>]`.
    pub id: Str,
    pub purpose: Option<Str>,
    pub base: Option<Str>,
    pub branch: Option<Str>,
    pub worktree: Option<Str>,
    pub environment: RawEnvironment,
}

#[derive(Debug, Default)]
pub(super) struct RawManifest {
    pub defaults: RawDefaults,
    /// In id order (toml's map is sorted).
    pub sessions: Vec<RawSession>,
}

pub(super) const TOP_KEYS: &[&str] = &["version", "defaults", "sessions"];
pub(super) const DEFAULTS_KEYS: &[&str] = &[
    "base", "root", "branch", "worktree", "remote", "copy", "setup", "ports", "env", "teardown", "merge",
];
pub(super) const SESSION_KEYS: &[&str] = &[
    "purpose", "base", "branch", "worktree", "copy", "setup", "ports", "env", "teardown", "merge",
];
/// Keys valid in `[defaults]` and in a session alike (no "misplaced key" hint for them).
const SHARED_KEYS: &[&str] = &[
    "base", "branch", "worktree", "copy", "setup", "ports", "env", "teardown", "merge",
];

/// Parses the document. `None` when it is not TOML at all: then the syntax errors are the
/// only findings, as anything read from a half-parsed document would be guesswork.
pub(super) fn parse(source: &str, out: &mut Vec<Finding>) -> Option<RawManifest> {
    parse_layer(source, false, out)
}

/// As [`parse`]; for the local layer (`flowloom.local.toml`, SPEC §11.1) `[defaults]` may
/// set `root` only: its sessions inherit the committed file's defaults.
pub(super) fn parse_layer(source: &str, local: bool, out: &mut Vec<Finding>) -> Option<RawManifest> {
    let (doc, errors) = DeTable::parse_recoverable(source);
    if !errors.is_empty() {
        for e in errors {
            let message = e.message().trim().to_owned();
            let span = e.span().unwrap_or(0..0);
            out.push(
                Finding::new(format!("invalid TOML: {message}"), span, "here")
                    .help("fix the TOML syntax (https://toml.io)"),
            );
        }
        return None;
    }

    let mut raw = RawManifest::default();
    for (key, value) in doc.get_ref().iter() {
        match key.get_ref().as_ref() {
            "version" => check_version(value, out),
            "defaults" => {
                let Some(table) = table(key, value, "`[defaults]`", out) else {
                    continue;
                };
                for (k, v) in table.iter() {
                    if local && k.get_ref().as_ref() != "root" {
                        out.push(local_default(k));
                        continue;
                    }
                    if raw.defaults.environment.read(k, v, out) {
                        continue;
                    }
                    let slot = match k.get_ref().as_ref() {
                        "base" => &mut raw.defaults.base,
                        "root" => &mut raw.defaults.root,
                        "branch" => &mut raw.defaults.branch,
                        "worktree" => &mut raw.defaults.worktree,
                        "remote" => &mut raw.defaults.remote,
                        _ => {
                            out.push(unknown_key(k, "[defaults]", DEFAULTS_KEYS));
                            continue;
                        }
                    };
                    *slot = string(k, v, out);
                }
            }
            "sessions" => {
                let Some(table) = table(key, value, "`[sessions]`", out) else {
                    continue;
                };
                for (id, body) in table.iter() {
                    if let Some(session) = session(id, body, out) {
                        raw.sessions.push(session);
                    }
                }
            }
            _ => out.push(unknown_key(key, "the top level", TOP_KEYS)),
        }
    }
    Some(raw)
}

/// A `[defaults]` key other than `root` in the local layer.
fn local_default(key: &Spanned<DeString<'_>>) -> Finding {
    Finding::new(
        format!("`{}` cannot be set in the local layer's `[defaults]`", key.get_ref()),
        key.span(),
        "only `root` may be set here",
    )
    .help(
        "this clone's sessions inherit the committed manifest's `[defaults]`; set the key per session, \
         or in the committed manifest",
    )
}

fn session(id: &Spanned<DeString<'_>>, body: &Spanned<DeValue<'_>>, out: &mut Vec<Finding>) -> Option<RawSession> {
    let what = format!("session `{}`", id.get_ref());
    let table = table(id, body, &what, out)?;
    let mut session = RawSession {
        id: Str {
            value: id.get_ref().to_string(),
            span: id.span(),
        },
        purpose: None,
        base: None,
        branch: None,
        worktree: None,
        environment: RawEnvironment::default(),
    };
    for (k, v) in table.iter() {
        if session.environment.read(k, v, out) {
            continue;
        }
        let slot = match k.get_ref().as_ref() {
            "purpose" => &mut session.purpose,
            "base" => &mut session.base,
            "branch" => &mut session.branch,
            "worktree" => &mut session.worktree,
            _ => {
                out.push(unknown_key(
                    k,
                    &format!("[{}]", session_header(id.get_ref())),
                    SESSION_KEYS,
                ));
                continue;
            }
        };
        *slot = string(k, v, out);
    }
    Some(session)
}

fn check_version(value: &Spanned<DeValue<'_>>, out: &mut Vec<Finding>) {
    let help = "only `version = 1` exists; write that, or remove the line";
    match value.get_ref() {
        DeValue::Integer(i) => {
            // A number too big for i64 is just as unsupported as 2.
            if i64::from_str_radix(i.as_str(), i.radix()) != Ok(1) {
                out.push(
                    Finding::new(
                        format!("unsupported manifest version {i}"),
                        value.span(),
                        "this version of flowloom knows version 1 only",
                    )
                    .help(help),
                );
            }
        }
        other => out.push(
            Finding::new(
                format!("`version` must be an integer, found {}", other.type_str()),
                value.span(),
                "expected an integer",
            )
            .help(help),
        ),
    }
}

/// The value as a table, or a finding that it is not one. `what` names it in the message.
fn table<'a, 'i>(
    key: &Spanned<DeString<'_>>,
    value: &'a Spanned<DeValue<'i>>,
    what: &str,
    out: &mut Vec<Finding>,
) -> Option<&'a DeTable<'i>> {
    if let DeValue::Table(t) = value.get_ref() {
        return Some(t);
    }
    let found = value.get_ref().type_str();
    out.push(
        Finding::new(
            format!("{what} must be a table, found {found}"),
            value.span(),
            "expected a table",
        )
        .help(format!("write it as a table header: `[{}]`", table_path(key, what))),
    );
    None
}

/// The header a user should have written, for the help of a type error.
fn table_path(key: &Spanned<DeString<'_>>, what: &str) -> String {
    if what.starts_with("session ") {
        session_header(key.get_ref())
    } else {
        key.get_ref().to_string()
    }
}

/// `sessions.<id>` as a TOML key path; ids with dots or other non-bare characters need quotes.
pub(super) fn session_header(id: &str) -> String {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        format!("sessions.{id}")
    } else {
        format!("sessions.{id:?}")
    }
}

fn string(key: &Spanned<DeString<'_>>, value: &Spanned<DeValue<'_>>, out: &mut Vec<Finding>) -> Option<Str> {
    match value.get_ref() {
        DeValue::String(s) => Some(Str {
            value: s.to_string(),
            span: value.span(),
        }),
        other => {
            out.push(
                Finding::new(
                    format!("`{}` must be a string, found {}", key.get_ref(), other.type_str()),
                    value.span(),
                    "expected a string",
                )
                .help("put the value in double quotes"),
            );
            None
        }
    }
}

fn string_list(key: &Spanned<DeString<'_>>, value: &Spanned<DeValue<'_>>, out: &mut Vec<Finding>) -> Option<StrList> {
    let DeValue::Array(items) = value.get_ref() else {
        out.push(
            Finding::new(
                format!(
                    "`{}` must be an array of strings, found {}",
                    key.get_ref(),
                    value.get_ref().type_str()
                ),
                value.span(),
                "expected an array of strings",
            )
            .help(format!("write it as a list: `{} = [\"...\"]`", key.get_ref())),
        );
        return None;
    };
    let mut list = StrList {
        items: Vec::with_capacity(items.len()),
        span: value.span(),
    };
    // The strings are kept and checked even when others are not strings: every problem
    // of the file is reported at once.
    for item in items.iter() {
        match item.get_ref() {
            DeValue::String(s) => list.items.push(Str {
                value: s.to_string(),
                span: item.span(),
            }),
            other => {
                out.push(
                    Finding::new(
                        format!("`{}` holds strings only, found {}", key.get_ref(), other.type_str()),
                        item.span(),
                        "expected a string",
                    )
                    .help("put the value in double quotes"),
                );
            }
        }
    }
    Some(list)
}

fn string_table(key: &Spanned<DeString<'_>>, value: &Spanned<DeValue<'_>>, out: &mut Vec<Finding>) -> Option<StrTable> {
    let DeValue::Table(table) = value.get_ref() else {
        out.push(
            Finding::new(
                format!(
                    "`{}` must be a table, found {}",
                    key.get_ref(),
                    value.get_ref().type_str()
                ),
                value.span(),
                "expected a table of strings",
            )
            .help(format!("write it as `{} = {{ NAME = \"value\" }}`", key.get_ref())),
        );
        return None;
    };
    let mut entries = Vec::with_capacity(table.len());
    let mut ok = true;
    for (k, v) in table.iter() {
        let name = Str {
            value: k.get_ref().to_string(),
            span: k.span(),
        };
        match string(k, v, out) {
            Some(v) => entries.push((name, v)),
            None => ok = false,
        }
    }
    ok.then(|| StrTable {
        entries,
        span: value.span(),
    })
}

fn unknown_key(key: &Spanned<DeString<'_>>, place: &str, known: &[&str]) -> Finding {
    let name = key.get_ref().as_ref();
    let finding = Finding::new(format!("unknown key `{name}` in {place}"), key.span(), "unknown key");
    // A key that is valid one level up or down is a misplaced line, not a typo.
    let elsewhere = if place == "[defaults]" && SESSION_KEYS.contains(&name) && !SHARED_KEYS.contains(&name) {
        Some(format!("`{name}` is set per session, in `[sessions.<id>]`"))
    } else if place.starts_with("[sessions.") && DEFAULTS_KEYS.contains(&name) && !SHARED_KEYS.contains(&name) {
        Some(format!("`{name}` applies to all sessions: set it in `[defaults]`"))
    } else if place == "the top level" && (DEFAULTS_KEYS.contains(&name) || SESSION_KEYS.contains(&name)) {
        Some(format!(
            "`{name}` belongs in `[defaults]` or in a `[sessions.<id>]` table"
        ))
    } else {
        None
    };
    let help = elsewhere.unwrap_or_else(|| match did_you_mean(name, known) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("the keys known here are {}", list(known)),
    });
    finding.help(help)
}

fn list(known: &[&str]) -> String {
    known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// The known key closest to `key`, when it is close enough to be a typo of it.
pub(super) fn did_you_mean<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&key, k), *k))
        // Two edits catch a transposition (`baes`); requiring fewer edits than characters
        // keeps `x` from "resembling" every short key.
        .filter(|(d, k)| *d <= 2 && *d < key.chars().count().min(k.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over chars, one row at a time.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev.get(j).map_or(usize::MAX, |d| d + usize::from(ca != *cb));
            let delete = prev.get(j + 1).map_or(usize::MAX, |d| d + 1);
            let insert = row.last().map_or(usize::MAX, |d| d + 1);
            row.push(substitute.min(delete).min(insert));
        }
        prev = row;
    }
    prev.last().copied().unwrap_or(0)
}

/// A span inside a string value's text, when the source spells it plainly (quotes and no
/// escapes); else the whole value, which is never wrong, only less precise.
pub(super) fn inner_span(source: &str, value: &Str, inner: Range<usize>) -> Range<usize> {
    let plain = source
        .get(value.span.clone())
        .and_then(|raw| raw.get(1..raw.len().saturating_sub(1)))
        .is_some_and(|body| body == value.value);
    if plain {
        let start = value.span.start + 1;
        start + inner.start..start + inner.end
    } else {
        value.span.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("purpse", "purpose"), 1);
        assert_eq!(edit_distance("baes", "base"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(did_you_mean("Purpse", SESSION_KEYS), Some("purpose"));
        assert_eq!(did_you_mean("x", SESSION_KEYS), None);
        assert_eq!(did_you_mean("session", TOP_KEYS), Some("sessions"));
    }
}
