//! SPEC §2 rules and their diagnostics (placeholder: parses without checks).

use std::collections::BTreeMap;
use std::path::Path;

use super::{Defaults, Manifest, Session, Template};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("invalid manifest {path}")]
pub struct ManifestError {
    pub path: String,
    #[related]
    pub problems: Vec<Problem>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct Problem {
    pub message: String,
}

#[derive(serde::Deserialize)]
struct Raw {
    #[serde(default)]
    defaults: BTreeMap<String, String>,
    #[serde(default)]
    sessions: BTreeMap<String, BTreeMap<String, String>>,
}

pub(super) fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let source = std::fs::read_to_string(path).map_err(|e| ManifestError {
        path: path.display().to_string(),
        problems: vec![Problem { message: e.to_string() }],
    })?;
    from_source(path, source)
}

pub(super) fn from_source(path: &Path, source: String) -> Result<Manifest, ManifestError> {
    let raw: Raw = toml::from_str(&source).map_err(|e| ManifestError {
        path: path.display().to_string(),
        problems: vec![Problem { message: e.to_string() }],
    })?;
    let get = |k: &str, d: &str| raw.defaults.get(k).cloned().unwrap_or_else(|| d.to_owned());
    let defaults = Defaults {
        base: get("base", "main"),
        root: get("root", "sessions").into(),
        branch: Template::new(get("branch", "session/{id}")),
        worktree: Template::new(get("worktree", "shell-instance-{id}")),
        remote: get("remote", "origin"),
    };
    let sessions = raw
        .sessions
        .iter()
        .map(|(id, t)| {
            let s = Session {
                id: id.clone(),
                purpose: t.get("purpose").cloned().unwrap_or_else(|| id.clone()),
                base: t.get("base").cloned().unwrap_or_else(|| defaults.base.clone()),
                base_span: None,
                branch: t
                    .get("branch")
                    .map(|b| Template::new(b.clone()))
                    .unwrap_or(defaults.branch.clone())
                    .expand(id),
                worktree: t
                    .get("worktree")
                    .map(|b| Template::new(b.clone()))
                    .unwrap_or(defaults.worktree.clone())
                    .expand(id),
            };
            (id.clone(), s)
        })
        .collect();
    let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
    Ok(Manifest {
        path: path.to_owned(),
        dir,
        source,
        defaults,
        sessions,
    })
}
