//! `sessions/<id>/metadata.json` (SPEC §5): the fields of the manual process, camelCase.
//!
//! The manifest determines five fields; every other one (`startTime`, `shellPid`,
//! `createdManually`, anything a tool added) is kept exactly as found when the file is
//! rewritten. The file is therefore handled as a JSON object, not a closed struct.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The fields a manifest determines (SPEC §7), in the order they are written.
pub const DETERMINED: [&str; 5] = ["sessionId", "purpose", "workingDirectory", "gitBranch", "worktreeName"];

/// A metadata file as found on disk.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataFile {
    Missing,
    /// Present but not a JSON object: reported, never trusted, never overwritten blindly.
    Invalid(String),
    Valid(Metadata),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub fields: Map<String, Value>,
    /// The file's exact text, for diffs.
    pub text: String,
}

impl Metadata {
    pub fn session_id(&self) -> Option<&str> {
        self.fields
            .get("sessionId")
            .and_then(Value::as_str)
            .filter(|s| crate::manifest::is_valid_id(s))
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
}

/// What the manifest says the determined fields of a session are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub session_id: String,
    pub purpose: String,
    pub working_directory: String,
    pub git_branch: String,
    pub worktree_name: String,
}

impl Wanted {
    fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            ("sessionId", &self.session_id),
            ("purpose", &self.purpose),
            ("workingDirectory", &self.working_directory),
            ("gitBranch", &self.git_branch),
            ("worktreeName", &self.worktree_name),
        ]
    }

    /// Whether `found` already has every determined field as wanted.
    pub fn matches(&self, found: &Metadata) -> bool {
        self.pairs().iter().all(|(k, v)| found.str_field(k) == Some(v))
    }

    /// `found` with the determined fields replaced, everything else kept in place.
    pub fn update(&self, found: &Metadata) -> String {
        let mut fields = found.fields.clone();
        for (k, v) in self.pairs() {
            fields.insert(k.to_owned(), Value::String(v.to_owned()));
        }
        render(&fields)
    }

    /// A new file: the manual process's fields, with `shellPid` and `startTime` given.
    pub fn create(&self, shell_pid: u32, start_time: &str) -> String {
        let mut fields = Map::new();
        fields.insert("sessionId".into(), self.session_id.clone().into());
        fields.insert("shellPid".into(), shell_pid.into());
        fields.insert("purpose".into(), self.purpose.clone().into());
        fields.insert("createdManually".into(), false.into());
        fields.insert("startTime".into(), start_time.into());
        fields.insert("workingDirectory".into(), self.working_directory.clone().into());
        fields.insert("gitBranch".into(), self.git_branch.clone().into());
        fields.insert("worktreeName".into(), self.worktree_name.clone().into());
        fields.insert("status".into(), "active".into());
        fields.insert("managedBy".into(), "flowloom".into());
        render(&fields)
    }
}

/// Two-space indented JSON with a final newline, like the manual process's `json.dump`.
fn render(fields: &Map<String, Value>) -> String {
    let mut text = serde_json::to_string_pretty(fields).expect("a JSON map serialises");
    text.push('\n');
    text
}

pub fn path(worktree: &Path, id: &str) -> PathBuf {
    worktree.join("sessions").join(id).join("metadata.json")
}

pub fn read(worktree: &Path, id: &str) -> MetadataFile {
    let path = path(worktree, id);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return MetadataFile::Missing,
        Err(e) => return MetadataFile::Invalid(e.to_string()),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(fields)) => MetadataFile::Valid(Metadata { fields, text }),
        Ok(_) => MetadataFile::Invalid("not a JSON object".to_owned()),
        Err(e) => MetadataFile::Invalid(e.to_string()),
    }
}
