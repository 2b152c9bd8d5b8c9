//! `flowloom.toml`: the clean, validated model that the rest of flowloom works with.
//!
//! Parsing (serde schema with spans) lives in `schema.rs`; the rules of SPEC §2 and the
//! diagnostics that point back into the file live in `validate.rs`. Nothing outside this
//! module sees raw TOML.

mod document;
pub mod environment;
mod schema;
mod source;
mod validate;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use crate::names::{branch_problem, is_valid_id};
pub use document::json_schema;
pub use source::ManifestSource;
pub use validate::{MAX_BYTES, ManifestError, Problem, shorten};

/// The file name looked for at the root of the main worktree.
pub const FILE_NAME: &str = "flowloom.toml";

/// This clone's own sessions, beside the manifest, never committed (SPEC §11.1).
pub const LOCAL_FILE_NAME: &str = "flowloom.local.toml";

/// The `root` that `flowloom init`'s starter writes: beside the repository. Also the root
/// of a repository without `flowloom.toml` whose local layer names none (first use).
pub const STARTER_ROOT: &str = "../{repo}.sessions";

/// A manifest file's text, read as `load` reads it; `None` when there is no such file.
pub fn read_text(path: &Path) -> Result<Option<String>, ManifestError> {
    validate::read_text(path)
}

/// The local layer's path for the manifest at `path`.
pub fn local_path(path: &Path) -> PathBuf {
    path.with_file_name(LOCAL_FILE_NAME)
}

/// Which file declares a session (SPEC §11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// The committed manifest: the team's sessions.
    Shared,
    /// `flowloom.local.toml`: this clone's own.
    Local,
}

/// The local layer as read.
#[derive(Debug, Clone)]
pub struct LocalFile {
    pub path: PathBuf,
    pub source: String,
    /// Where its text starts in the committed text, a line break and its text: the
    /// coordinates of every span of a [`Manifest`] (`Session::base_span`).
    pub offset: usize,
}

/// A parsed and validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Where the manifest was read from (as given or discovered, made absolute).
    pub path: PathBuf,
    /// The folder that holds the manifest: every relative path in it is relative to this.
    pub dir: PathBuf,
    /// What `{repo}` in `root` stands for: the main worktree's folder name once a command
    /// opened the repository ([`Manifest::use_repo_name`]), until then the manifest folder's.
    pub repo: std::ffi::OsString,
    /// The file's text, kept so that later errors (an unresolvable `base`) can point into it.
    pub source: String,
    /// The local layer, when `flowloom.local.toml` exists.
    pub local: Option<LocalFile>,
    /// SPEC §11.1, first use: there is no committed file (`flowloom.toml`, found by the
    /// usual search) — the committed layer is empty, with `flowloom init`'s defaults
    /// ([`Manifest::load_or_empty`]); `source` is then `""`.
    pub committed_absent: bool,
    pub defaults: Defaults,
    /// Declared sessions by id, in id order.
    pub sessions: BTreeMap<String, Session>,
}

/// `[defaults]`, with SPEC §2's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub base: String,
    /// Whether `[defaults] base` is written in the file; when it is not, the default base
    /// is the repository's (`Manifest::use_default_base`, SPEC §2).
    pub base_given: bool,
    /// Relative to [`Manifest::dir`], normalised (no `.` components, no trailing slash,
    /// `..` only at the start), with `{repo}` not expanded: see [`Manifest::root_rel`].
    pub root: PathBuf,
    /// Whether either file writes `[defaults] root`.
    pub root_given: bool,
    pub branch: Template,
    pub worktree: Template,
    pub remote: String,
    /// `[defaults]`' session environment (SPEC §10), before any session's own keys.
    pub environment: Environment,
}

/// One declared session with its templates expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub purpose: String,
    /// The revspec new branches start at.
    pub base: String,
    /// Byte range of the `base` value in [`Manifest::source`] (this session's own, or the
    /// `[defaults]` one), when the file spells it out.
    pub base_span: Option<Range<usize>>,
    /// Short branch name, e.g. `session/auth-refactor`.
    pub branch: String,
    /// Worktree folder name inside the root, e.g. `shell-instance-auth-refactor`.
    pub worktree: String,
    /// The session environment: `[defaults]`' lists unless the session sets its own, and
    /// `env` merged name by name (the session's value wins).
    pub environment: Environment,
    /// The file that declares it.
    pub layer: Layer,
}

impl Session {
    /// SPEC §10's variables for this session working in `worktree`, with the ports it holds.
    pub fn variables(&self, worktree: &Path, ports: &BTreeMap<String, u16>) -> Vec<(String, String)> {
        let worktree = worktree.to_string_lossy();
        environment::variables(
            &self.environment,
            &environment::Values {
                id: &self.id,
                branch: &self.branch,
                worktree: &worktree,
                ports,
            },
        )
    }
}

/// SPEC §10: what a new session gets besides its checkout.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Environment {
    /// Ignored files and folders copied from the main worktree into each new session
    /// (gitignore patterns, as in `.worktreeinclude`); tracked files are never copied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy: Vec<String>,
    /// Shell commands run, in order, in each new session after the copies, once this
    /// machine trusts exactly this list (`flowloom trust`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<String>,
    /// Names of the TCP ports each session gets, unique on this machine; set as
    /// `FLOWLOOM_PORT_<NAME>` and kept in `metadata.json`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// Variables set for `setup` and `flowloom run`; values may use `{id}`, `{branch}`,
    /// `{worktree}` and `{port.<name>}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Shell commands run, in order, in a session right before its worktree is removed
    /// (`apply`, `rm`, `merge`); trusted together with `setup`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teardown: Vec<String>,
    /// How `flowloom merge` lands a session on its base: `squash` (one commit, the
    /// default), `rebase` (each commit replayed) or `ff-only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeMode>,
}

/// SPEC §11.2: how `flowloom merge` integrates a session's branch into its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MergeMode {
    #[default]
    Squash,
    Rebase,
    FfOnly,
}

impl MergeMode {
    /// The mode a manifest value names.
    pub fn parse(text: &str) -> Option<MergeMode> {
        match text {
            "squash" => Some(MergeMode::Squash),
            "rebase" => Some(MergeMode::Rebase),
            "ff-only" => Some(MergeMode::FfOnly),
            _ => None,
        }
    }
}

impl Environment {
    /// Whether it runs commands (setup or teardown), which this machine must trust first.
    pub fn runs_commands(&self) -> bool {
        !self.setup.is_empty() || !self.teardown.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.copy.is_empty()
            && self.setup.is_empty()
            && self.ports.is_empty()
            && self.env.is_empty()
            && self.teardown.is_empty()
            && self.merge.is_none()
    }
}

/// A name template that knows the one placeholder `{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
}

impl Template {
    pub const PLACEHOLDER: &'static str = "{id}";

    /// A template from its text; validation of placeholders happens in `validate.rs`.
    pub fn new(text: impl Into<String>) -> Self {
        Template { text: text.into() }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn expand(&self, id: &str) -> String {
        self.text.replace(Self::PLACEHOLDER, id)
    }

    /// The id that, expanded, gives `name`; `None` when this template cannot produce `name`
    /// or what would stand for `{id}` is not a valid session id.
    pub fn match_id<'a>(&self, name: &'a str) -> Option<&'a str> {
        let (prefix, rest) = self.text.split_once(Self::PLACEHOLDER)?;
        if rest.contains(Self::PLACEHOLDER) {
            // `{id}` k times: the fixed text is the same in every expansion, so the id's
            // length follows from the name's; the expansion then has to match exactly.
            let k = self.text.matches(Self::PLACEHOLDER).count();
            let fixed = self.text.len() - k * Self::PLACEHOLDER.len();
            let id_len = name.len().checked_sub(fixed)?;
            if id_len % k != 0 {
                return None;
            }
            // `get`, not indexing: the computed end need not be a char boundary.
            let id = name.strip_prefix(prefix)?.get(..id_len / k)?;
            return (is_valid_id(id) && self.expand(id) == name).then_some(id);
        }
        let id = name.strip_prefix(prefix)?.strip_suffix(rest)?;
        is_valid_id(id).then_some(id)
    }
}

impl Manifest {
    /// Read, parse and validate the manifest at `path`. Every problem is reported at once.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        validate::load(path, false)
    }

    /// As [`Manifest::load`], but a committed file that does not exist is an empty layer
    /// with `flowloom init`'s defaults ([`Manifest::committed_absent`], SPEC §11.1): for the
    /// manifest found by the usual search, not one named with `--manifest`.
    pub fn load_or_empty(path: &Path) -> Result<Manifest, ManifestError> {
        validate::load(path, true)
    }

    /// Parse and validate manifest text as if read from `path`.
    pub fn from_source(path: &Path, source: String) -> Result<Manifest, ManifestError> {
        validate::from_source(path, source)
    }

    /// The one placeholder `root` knows: the main worktree's folder name.
    pub const REPO_PLACEHOLDER: &'static str = "{repo}";

    /// `root` with `{repo}` expanded, relative to [`Manifest::dir`].
    pub fn root_rel(&self) -> PathBuf {
        self.defaults
            .root
            .iter()
            .map(|part| {
                let text = part.to_string_lossy();
                let mut pieces = text.split(Self::REPO_PLACEHOLDER);
                let mut out = std::ffi::OsString::from(pieces.next().unwrap_or_default());
                for piece in pieces {
                    out.push(&self.repo);
                    out.push(piece);
                }
                out
            })
            .collect()
    }

    /// Whether `root` names `{repo}`, which then needs a folder name to stand for.
    pub fn root_uses_repo(&self) -> bool {
        self.defaults.root.to_string_lossy().contains(Self::REPO_PLACEHOLDER)
    }

    /// Absolute folder that holds the session worktrees. `..` is folded away: the manifest's
    /// folder is canonical, so its parent is the real one.
    pub fn root_dir(&self) -> PathBuf {
        let mut dir = self.dir.clone();
        for part in self.root_rel().components() {
            match part {
                std::path::Component::ParentDir => {
                    dir.pop();
                }
                other => dir.push(other),
            }
        }
        dir
    }

    /// `{repo}` stands for `name`, the main worktree's folder name (commands that open the
    /// repository call this, as they do [`Manifest::use_default_base`]).
    pub fn use_repo_name(&mut self, name: &std::ffi::OsStr) {
        name.clone_into(&mut self.repo);
    }

    /// `text` parsed as this manifest's new content, with what the repository told this one
    /// (the default base, `{repo}`): for commands that edit the manifest and go on with it.
    pub fn with_source(&self, text: String) -> Result<Manifest, ManifestError> {
        self.with_texts(Some(text), self.local.as_ref().map(|l| l.source.clone()))
    }

    /// As [`Manifest::with_source`], for both layers' texts (`None`: no local file).
    pub fn with_sources(&self, text: String, local: Option<String>) -> Result<Manifest, ManifestError> {
        self.with_texts(Some(text), local)
    }

    /// As [`Manifest::with_sources`]; `committed` `None`: there is no committed file. A
    /// first-use root that the repository told this one ([`Manifest::use_default_root`])
    /// is kept while no file writes one.
    pub fn with_texts(&self, committed: Option<String>, local: Option<String>) -> Result<Manifest, ManifestError> {
        let mut manifest = validate::from_layers(&self.path, committed, local)?;
        manifest.use_default_base(&self.defaults.base);
        manifest.use_repo_name(&self.repo);
        if manifest.committed_absent && self.committed_absent && !manifest.defaults.root_given {
            manifest.defaults.root.clone_from(&self.defaults.root);
        }
        Ok(manifest)
    }

    /// The committed file's text; `None` when there is no such file.
    pub fn committed_text(&self) -> Option<String> {
        (!self.committed_absent).then(|| self.source.clone())
    }

    /// SPEC §11.1, first use: the root to use while no file writes one (the folder the
    /// sessions flowloom made are in); `false`, and nothing changed, when `text` is not a
    /// valid `root`.
    pub fn use_default_root(&mut self, text: &str) -> bool {
        if self.defaults.root_given {
            return false;
        }
        match validate::normalise_root(text) {
            Ok(root) => {
                self.defaults.root = root;
                true
            }
            Err(_) => false,
        }
    }

    /// `root` as written in a file (`/` separators, `{repo}` kept).
    pub fn root_text(&self) -> String {
        self.defaults
            .root
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The text of one layer's file (empty for a local layer not written yet).
    pub fn layer_source(&self, layer: Layer) -> &str {
        match layer {
            Layer::Shared => &self.source,
            Layer::Local => self.local.as_ref().map_or("", |l| l.source.as_str()),
        }
    }

    /// The path of one layer's file.
    pub fn layer_path(&self, layer: Layer) -> PathBuf {
        match layer {
            Layer::Shared => self.path.clone(),
            Layer::Local => local_path(&self.path),
        }
    }

    /// This manifest with one layer's text replaced by `text`.
    pub fn with_layer(&self, layer: Layer, text: String) -> Result<Manifest, ManifestError> {
        match layer {
            Layer::Shared => self.with_source(text),
            Layer::Local => self.with_texts(self.committed_text(), Some(text)),
        }
    }

    /// The file and the span within it of a `span` of this manifest (in the coordinates
    /// of [`LocalFile::offset`]).
    pub fn locate(&self, span: &Range<usize>) -> (PathBuf, &str, Range<usize>) {
        match &self.local {
            Some(l) if span.start >= l.offset => (
                l.path.clone(),
                l.source.as_str(),
                span.start - l.offset..span.end.saturating_sub(l.offset),
            ),
            _ => (self.path.clone(), self.source.as_str(), span.clone()),
        }
    }

    /// Absolute path of a session's worktree.
    pub fn worktree_path(&self, session: &Session) -> PathBuf {
        self.root_dir().join(&session.worktree)
    }

    /// SPEC §2: when the file names no `[defaults] base`, sessions without a `base` of their
    /// own start at the repository's default branch, `base`.
    pub fn use_default_base(&mut self, base: &str) {
        if self.defaults.base_given {
            return;
        }
        self.defaults.base = base.to_owned();
        for session in self.sessions.values_mut() {
            if session.base_span.is_none() {
                session.base = base.to_owned();
            }
        }
    }

    /// A path inside the manifest's folder, relative to it, with `/` separators (for output);
    /// beside it (a root `../x`), with the root's leading `..`.
    pub fn relative(&self, path: &Path) -> String {
        relative(&self.dir, &self.defaults.root, path)
    }
}

/// `path` relative to `dir` (a manifest's folder, whose `root` may reach above it), as
/// [`Manifest::relative`] shows it.
pub fn relative(dir: &Path, root: &Path, path: &Path) -> String {
    let join = |rel: &Path| {
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    };
    if let Ok(rel) = path.strip_prefix(dir) {
        return join(rel);
    }
    // Beside the manifest's folder, as a root `../{repo}.sessions` puts it: as many `..`
    // as the root starts with, at most.
    let ups = root.components().take_while(|c| *c == std::path::Component::ParentDir);
    let mut above = dir;
    let mut prefix = String::new();
    for _ in ups {
        let Some(parent) = above.parent() else { break };
        above = parent;
        prefix.push_str("../");
        if let Ok(rel) = path.strip_prefix(above) {
            return format!("{prefix}{}", join(rel));
        }
    }
    // Elsewhere: shown as it is, not as `//abs/path`.
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_round_trips_ids() {
        let t = Template::new("session/{id}");
        assert_eq!(t.expand("x"), "session/x");
        assert_eq!(t.match_id("session/x"), Some("x"));
        assert_eq!(t.match_id("session/a/b"), None);
        assert_eq!(t.match_id("feature/x"), None);
        let t = Template::new("shell-instance-{id}");
        assert_eq!(t.match_id("shell-instance-4242"), Some("4242"));
        let t = Template::new("{id}-{id}");
        assert_eq!(t.match_id("a-a"), Some("a"));
        assert_eq!(t.match_id("a-b"), None);
        assert_eq!(t.match_id("ab-ab"), Some("ab"));
        assert_eq!(t.match_id("é-é-"), None);
        assert_eq!(Template::new("fixed").match_id("fixed"), None);
    }

    #[test]
    fn repo_in_root_is_the_main_worktrees_folder_name() {
        let source = "[defaults]\nroot = \"../{repo}.sessions\"\n[sessions.a]\n";
        let mut m = Manifest::from_source(Path::new("/src/app/flowloom.toml"), source.into()).expect("test");
        assert_eq!(m.root_dir(), Path::new("/src/app.sessions"));
        m.use_repo_name(std::ffi::OsStr::new("checkout"));
        assert_eq!(m.root_dir(), Path::new("/src/checkout.sessions"));
        let wt = m.worktree_path(&m.sessions["a"]);
        assert_eq!(m.relative(&wt), "../checkout.sessions/shell-instance-a");
        assert_eq!(m.relative(Path::new("/elsewhere/x")), "/elsewhere/x");
        // An edited manifest keeps what the repository said.
        assert_eq!(m.with_source(source.into()).expect("test").root_dir(), m.root_dir());
        let two_up = Manifest::from_source(
            Path::new("/a/b/flowloom.toml"),
            "[defaults]\nroot = \"../../s\"\n".into(),
        );
        assert!(two_up.is_err(), "a root two folders up is refused");
    }

    #[test]
    fn ids_follow_the_spec() {
        assert!(is_valid_id("auth-refactor"));
        assert!(is_valid_id("4242-my.purpose_x"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("-x"));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("x.lock"));
        assert!(!is_valid_id(&"a".repeat(65)));
    }
}
