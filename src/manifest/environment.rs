//! SPEC §10's keys (`copy`, `setup`, `ports`, `env`): their rules, how a session's own keys
//! combine with `[defaults]`, and the placeholders of `env` values.

use std::collections::BTreeMap;
use std::ops::Range;

use super::Environment;
use super::schema::{Finding, RawEnvironment, Str, StrList, StrTable};

/// The prefix of the variables flowloom sets itself; `env` may not set them.
pub const RESERVED_PREFIX: &str = "FLOWLOOM_";

/// The longest port name: it becomes part of a variable name.
const MAX_PORT_NAME: usize = 32;

/// One environment's keys, checked. Spans are kept for the checks that need the whole
/// session (placeholders naming ports).
#[derive(Debug, Default, Clone)]
pub(super) struct Checked {
    pub copy: Option<Vec<String>>,
    pub setup: Option<Vec<String>>,
    pub ports: Option<Vec<String>>,
    pub env: Option<Vec<(String, Str)>>,
    pub teardown: Option<Vec<String>>,
    pub merge: Option<super::MergeMode>,
}

pub(super) fn check(raw: &RawEnvironment, source: &str, out: &mut Vec<Finding>) -> Checked {
    Checked {
        copy: raw.copy.as_ref().map(|l| copy(l, out)),
        setup: raw.setup.as_ref().map(|l| commands(l, "setup", out)),
        ports: raw.ports.as_ref().map(|l| ports(l, out)),
        env: raw.env.as_ref().map(|t| env(t, source, out)),
        teardown: raw.teardown.as_ref().map(|l| commands(l, "teardown", out)),
        merge: raw.merge.as_ref().and_then(|m| merge_mode(m, out)),
    }
}

/// A session's environment: its own lists where it has them, else the defaults'; `env`
/// merged name by name. Placeholders naming a port the session does not have are reported
/// here, naming the session when the value comes from `[defaults]`.
pub(super) fn merge(id: &str, defaults: &Checked, own: &Checked, source: &str, out: &mut Vec<Finding>) -> Environment {
    let pick = |own: &Option<Vec<String>>, default: &Option<Vec<String>>| {
        own.clone().or_else(|| default.clone()).unwrap_or_default()
    };
    let ports = pick(&own.ports, &defaults.ports);
    let mut env: BTreeMap<String, (Str, bool)> = BTreeMap::new();
    for (name, value) in defaults.env.iter().flatten() {
        env.insert(name.clone(), (value.clone(), true));
    }
    for (name, value) in own.env.iter().flatten() {
        env.insert(name.clone(), (value.clone(), false));
    }
    for (value, from_defaults) in env.values() {
        for (at, port) in port_placeholders(&value.value) {
            if !ports.contains(&port) {
                let label = if *from_defaults {
                    format!("session `{id}` has no port `{port}`")
                } else {
                    format!("no port `{port}` in this session")
                };
                out.push(
                    Finding::new(
                        format!("`env` names the port `{port}`, which session `{id}` does not have"),
                        super::schema::inner_span(source, value, at),
                        label,
                    )
                    .help(format!("add \"{port}\" to `ports`, or remove the placeholder")),
                );
            }
        }
    }
    Environment {
        copy: pick(&own.copy, &defaults.copy),
        setup: pick(&own.setup, &defaults.setup),
        ports,
        env: env.into_iter().map(|(k, (v, _))| (k, v.value)).collect(),
        teardown: pick(&own.teardown, &defaults.teardown),
        merge: own.merge.or(defaults.merge),
    }
}

fn copy(list: &StrList, out: &mut Vec<Finding>) -> Vec<String> {
    for item in &list.items {
        let v = &item.value;
        let problem = if v.trim().is_empty() {
            Some("empty")
        } else if v.contains(['\0', '\n', '\r']) {
            Some("holds a control character")
        } else if v.split('/').any(|c| c == "..") {
            Some("leaves the main worktree")
        } else if v.split('/').any(|c| c == ".git") {
            Some("names the `.git` folder")
        } else {
            None
        };
        if let Some(problem) = problem {
            out.push(
                Finding::new(
                    format!("invalid `copy` entry \"{}\"", super::shorten(v)),
                    item.span.clone(),
                    problem,
                )
                .help(
                    "write a path or a gitignore pattern relative to the main worktree, such as \
                         \".env\" or \"node_modules/\"; only files git ignores are copied",
                ),
            );
        }
    }
    values(list)
}

/// `merge = "squash" | "rebase" | "ff-only"` (SPEC §11.2).
fn merge_mode(value: &Str, out: &mut Vec<Finding>) -> Option<super::MergeMode> {
    let mode = super::MergeMode::parse(&value.value);
    if mode.is_none() {
        out.push(
            Finding::new(
                format!("invalid `merge` mode \"{}\"", super::shorten(&value.value)),
                value.span.clone(),
                "not a merge mode",
            )
            .help("write \"squash\", \"rebase\" or \"ff-only\""),
        );
    }
    mode
}

/// `setup` and `teardown`: one shell command per string.
fn commands(list: &StrList, key: &str, out: &mut Vec<Finding>) -> Vec<String> {
    for item in &list.items {
        let problem = if item.value.trim().is_empty() {
            Some("empty command")
        } else if item.value.contains('\0') {
            Some("holds a NUL byte")
        } else {
            None
        };
        if let Some(problem) = problem {
            out.push(
                Finding::new(format!("invalid `{key}` command"), item.span.clone(), problem)
                    .help("write one shell command per string, e.g. \"npm ci\"; remove empty ones"),
            );
        }
    }
    values(list)
}

fn ports(list: &StrList, out: &mut Vec<Finding>) -> Vec<String> {
    let most = crate::names::MAX_PORTS_PER_REPOSITORY;
    if list.items.len() > most {
        out.push(
            Finding::new(
                format!("{} ports for one session", list.items.len()),
                list.span.clone(),
                format!("more than the {most} one repository may hold"),
            )
            .help("name the ports the session's servers listen on, e.g. [\"web\", \"api\"]"),
        );
        return Vec::new();
    }
    let mut seen: BTreeMap<String, &Str> = BTreeMap::new();
    for item in &list.items {
        let name = &item.value;
        if !is_port_name(name) {
            out.push(
                Finding::new(
                    format!("invalid port name \"{}\"", super::shorten(name)),
                    item.span.clone(),
                    "not a port name",
                )
                .help(format!(
                    "a port name starts with a letter and continues with letters, digits, `_` or \
                     `-`, at most {MAX_PORT_NAME} characters; it becomes FLOWLOOM_PORT_<NAME>"
                )),
            );
            continue;
        }
        match seen.get(&variable_part(name)) {
            Some(first) => out.push(
                Finding::new(
                    format!("port `{name}` is listed twice"),
                    item.span.clone(),
                    "again here",
                )
                .label(first.span.clone(), "first here")
                .help(format!(
                    "both give the variable FLOWLOOM_PORT_{}: keep one",
                    variable_part(name)
                )),
            ),
            None => {
                seen.insert(variable_part(name), item);
            }
        }
    }
    values(list)
}

fn env(table: &StrTable, source: &str, out: &mut Vec<Finding>) -> Vec<(String, Str)> {
    for (name, value) in &table.entries {
        if !is_variable_name(&name.value) {
            out.push(
                Finding::new(
                    format!("invalid variable name \"{}\"", super::shorten(&name.value)),
                    name.span.clone(),
                    "not a variable name",
                )
                .help("a variable name starts with a letter or `_` and continues with letters, digits or `_`"),
            );
        } else if name.value.starts_with(RESERVED_PREFIX) {
            out.push(
                Finding::new(
                    format!("`{}` is set by flowloom", name.value),
                    name.span.clone(),
                    "reserved name",
                )
                .help(format!(
                    "flowloom sets every {RESERVED_PREFIX}* variable itself; choose another name"
                )),
            );
        }
        if value.value.contains('\0') {
            out.push(
                Finding::new("invalid `env` value", value.span.clone(), "holds a NUL byte")
                    .help("a variable's value cannot hold a NUL byte"),
            );
        } else if let Err((at, what)) = parse(&value.value) {
            out.push(
                Finding::new(
                    format!("invalid `env` value: {what}"),
                    super::schema::inner_span(source, value, at),
                    what,
                )
                .help(
                    "the placeholders are {id}, {branch}, {worktree} and {port.<name>}; \
                     write {{ and }} for literal braces",
                ),
            );
        }
    }
    table
        .entries
        .iter()
        .map(|(k, v)| (k.value.clone(), v.clone()))
        .collect()
}

fn values(list: &StrList) -> Vec<String> {
    list.items.iter().map(|s| s.value.clone()).collect()
}

pub fn is_port_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_PORT_NAME
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `web-ui` → `WEB_UI`, the part after `FLOWLOOM_PORT_`.
pub fn variable_part(port: &str) -> String {
    port.to_ascii_uppercase().replace('-', "_")
}

/// One piece of an `env` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(std::borrow::Cow<'a, str>),
    Id,
    Branch,
    Worktree,
    Port(&'a str),
}

/// Splits a value into text and placeholders; on error, the byte range of the bad brace
/// and what is wrong with it.
pub fn parse(value: &str) -> Result<Vec<Piece<'_>>, (Range<usize>, String)> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut at = 0;
    while let Some(rest) = value.get(at..).filter(|r| !r.is_empty()) {
        let Some(offset) = rest.find(['{', '}']) else {
            text.push_str(rest);
            break;
        };
        text.push_str(rest.get(..offset).unwrap_or_default());
        at += offset;
        let tail = value.get(at..).unwrap_or_default();
        if tail.starts_with("{{") || tail.starts_with("}}") {
            text.push_str(tail.get(..1).unwrap_or_default());
            at += 2;
            continue;
        }
        if tail.starts_with('}') {
            return Err((at..at + 1, "`}` without a `{` (write `}}` for a brace)".into()));
        }
        let Some(end) = tail.find('}') else {
            return Err((at..at + 1, "`{` that is never closed (write `{{` for a brace)".into()));
        };
        let name = tail.get(1..end).unwrap_or_default();
        let piece = match name {
            "id" => Piece::Id,
            "branch" => Piece::Branch,
            "worktree" => Piece::Worktree,
            _ => match name.strip_prefix("port.") {
                Some(port) if is_port_name(port) => Piece::Port(port),
                _ => return Err((at..at + end + 1, format!("unknown placeholder `{{{name}}}`"))),
            },
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text).into()));
        }
        pieces.push(piece);
        at += end + 1;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text.into()));
    }
    Ok(pieces)
}

/// The ports an `env` value names, with where.
fn port_placeholders(value: &str) -> Vec<(Range<usize>, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = value.get(from..).and_then(|r| r.find("{port.")) {
        let at = from + offset;
        let end = value
            .get(at..)
            .and_then(|t| t.find('}'))
            .map_or(value.len(), |e| at + e + 1);
        // `{{port.x}}` is a literal: skip when the brace is escaped.
        let escaped = value.get(..at).is_some_and(|before| before.ends_with('{'));
        if !escaped && let Ok(pieces) = parse(value.get(at..end).unwrap_or_default()) {
            for piece in pieces {
                if let Piece::Port(name) = piece {
                    found.push((at..end, name.to_owned()));
                }
            }
        }
        from = end.max(at + 1);
    }
    found
}

/// What the placeholders stand for in one session.
pub struct Values<'a> {
    pub id: &'a str,
    pub branch: &'a str,
    pub worktree: &'a str,
    pub ports: &'a BTreeMap<String, u16>,
}

/// A piece of an `env` value once `{id}`, `{branch}` and `{worktree}` are filled in: text,
/// or a port the value names, whose number may not be known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filled<'a> {
    Text(String),
    Port(&'a str),
}

/// The value with `{id}`, `{branch}` and `{worktree}` filled in from `values` (its ports are
/// not looked at), as text and the ports it names, for whoever knows the ports' numbers: the
/// planner builds a step's variables with it before apply allocates the ports. A value that
/// does not parse (validation refuses it) is text as it is.
pub fn fill<'a>(value: &'a str, values: &Values<'_>) -> Vec<Filled<'a>> {
    let Ok(pieces) = parse(value) else {
        return vec![Filled::Text(value.to_owned())];
    };
    let mut out: Vec<Filled<'a>> = Vec::new();
    for piece in pieces {
        let text = match piece {
            Piece::Text(t) => t.into_owned(),
            Piece::Id => values.id.to_owned(),
            Piece::Branch => values.branch.to_owned(),
            Piece::Worktree => values.worktree.to_owned(),
            Piece::Port(name) => {
                out.push(Filled::Port(name));
                continue;
            }
        };
        match out.last_mut() {
            Some(Filled::Text(last)) => last.push_str(&text),
            _ => out.push(Filled::Text(text)),
        }
    }
    out
}

/// The number of a port as a variable holds it: empty when the session has none for it (it
/// was made before the manifest named the port).
pub fn port_value(ports: &BTreeMap<String, u16>, name: &str) -> String {
    ports.get(name).map(u16::to_string).unwrap_or_default()
}

/// The value with its placeholders filled in. A port the session has no number for (it was
/// made before the manifest named it) expands to the empty string.
pub fn expand(value: &str, values: &Values<'_>) -> String {
    fill(value, values)
        .into_iter()
        .map(|piece| match piece {
            Filled::Text(text) => text,
            Filled::Port(name) => port_value(values.ports, name),
        })
        .collect()
}

/// The variables flowloom sets that name no port: `FLOWLOOM_SESSION`, `FLOWLOOM_BRANCH`,
/// `FLOWLOOM_WORKTREE`.
pub fn own_variables(values: &Values<'_>) -> Vec<(String, String)> {
    vec![
        ("FLOWLOOM_SESSION".to_owned(), values.id.to_owned()),
        ("FLOWLOOM_BRANCH".to_owned(), values.branch.to_owned()),
        ("FLOWLOOM_WORKTREE".to_owned(), values.worktree.to_owned()),
    ]
}

/// `FLOWLOOM_PORT_<NAME>`, the variable that holds the port `name`.
pub fn port_variable(name: &str) -> String {
    format!("FLOWLOOM_PORT_{}", variable_part(name))
}

/// The variables of SPEC §10 for one session: flowloom's own, then `env`'s.
pub fn variables(environment: &Environment, values: &Values<'_>) -> Vec<(String, String)> {
    let mut vars = own_variables(values);
    for (name, port) in values.ports {
        vars.push((port_variable(name), port.to_string()));
    }
    for (name, value) in &environment.env {
        vars.push((name.clone(), expand(value, values)));
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expand_placeholders_and_escapes() {
        let ports = BTreeMap::from([("web".to_owned(), 41234)]);
        let v = Values {
            id: "a",
            branch: "session/a",
            worktree: "/w/a",
            ports: &ports,
        };
        assert_eq!(
            expand("http://localhost:{port.web}/{id}", &v),
            "http://localhost:41234/a"
        );
        assert_eq!(
            expand("{{literal}} {branch}@{worktree}", &v),
            "{literal} session/a@/w/a"
        );
        assert_eq!(expand("{port.api}", &v), "");
        assert_eq!(
            fill("{{x}} {id}:{port.web}/{worktree}", &v),
            vec![
                Filled::Text("{x} a:".to_owned()),
                Filled::Port("web"),
                Filled::Text("//w/a".to_owned())
            ]
        );
        assert!(parse("{nope}").is_err());
        assert!(parse("{").is_err());
        assert!(parse("}").is_err());
        assert!(parse("{port.}").is_err());
        assert_eq!(
            port_placeholders("x{port.web}y{{port.no}}"),
            vec![(1..11, "web".to_owned())]
        );
    }

    #[test]
    fn port_names_make_variable_names() {
        assert!(is_port_name("web"));
        assert!(is_port_name("web-ui_2"));
        assert!(!is_port_name("2web"));
        assert!(!is_port_name("we b"));
        assert!(!is_port_name(""));
        assert_eq!(variable_part("web-ui"), "WEB_UI");
    }
}
