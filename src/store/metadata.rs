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
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum MetadataFile {
    Missing,
    /// Present but not a JSON object: reported, never trusted, never overwritten blindly.
    Invalid(String),
    Valid(Metadata),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Metadata {
    pub fields: Map<String, Value>,
    /// The file's exact text, for diffs.
    pub text: String,
}

impl Metadata {
    /// The file with `ports` added to its `"ports"` object, everything else kept.
    pub fn with_ports(&self, ports: &std::collections::BTreeMap<String, u16>) -> String {
        let mut fields = self.fields.clone();
        let mut all = fields
            .get("ports")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (name, port) in ports {
            all.insert(name.clone(), Value::from(*port));
        }
        fields.insert("ports".into(), Value::Object(all));
        let mut text = render(&fields);
        if !self.text.ends_with('\n') {
            text.pop();
        }
        text
    }

    /// SPEC §10: the session's ports, `"ports": {"web": 41234}`.
    pub fn ports(&self) -> std::collections::BTreeMap<String, u16> {
        self.fields
            .get("ports")
            .and_then(Value::as_object)
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), u16::try_from(v.as_u64()?).ok()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn session_id(&self) -> Option<&str> {
        self.fields
            .get("sessionId")
            .and_then(Value::as_str)
            .filter(|s| crate::names::is_valid_id(s))
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
}

/// How far a session's copy and setup got (SPEC §11.3), metadata's `"setup"` field:
/// `"incomplete"` is written before the copies start, `"ok"` or `"failed"` once setup ends.
/// A file without the field (older sessions, the manual process) counts as finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetupState {
    Incomplete,
    Ok,
    Failed,
}

impl SetupState {
    pub const FIELD: &'static str = "setup";

    pub fn as_str(self) -> &'static str {
        match self {
            SetupState::Incomplete => "incomplete",
            SetupState::Ok => "ok",
            SetupState::Failed => "failed",
        }
    }
}

impl Metadata {
    /// The recorded setup state; `Ok` when the field is absent, `Incomplete` when it holds
    /// something flowloom does not know (never report an unknown state as finished).
    pub fn setup_state(&self) -> SetupState {
        match self.fields.get(SetupState::FIELD) {
            None => SetupState::Ok,
            Some(value) => serde_json::from_value(value.clone()).unwrap_or(SetupState::Incomplete),
        }
    }

    /// Whether the file records how far copy and setup got (a session flowloom made with
    /// something to copy or set up, or is finishing).
    pub fn records_setup(&self) -> bool {
        self.fields.contains_key(SetupState::FIELD)
    }

    /// How far copy and setup got: the state, whether the copies are done (`"copied"`),
    /// and the setup commands that succeeded, in order (`"setupDone"`).
    pub fn setup_progress(&self) -> SetupProgress {
        SetupProgress {
            state: self.setup_state(),
            copied: self
                .fields
                .get(SetupProgress::COPIED)
                .and_then(Value::as_bool)
                .unwrap_or(self.setup_state() != SetupState::Incomplete),
            done: self
                .fields
                .get(SetupProgress::DONE)
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        }
    }

    /// The file with `progress` recorded, everything else kept.
    pub fn with_progress(&self, progress: &SetupProgress) -> String {
        let mut fields = self.fields.clone();
        fields.insert(SetupState::FIELD.into(), progress.state.as_str().into());
        fields.insert(SetupProgress::COPIED.into(), progress.copied.into());
        let done: Vec<Value> = progress.done.iter().map(|c| Value::from(c.as_str())).collect();
        fields.insert(SetupProgress::DONE.into(), Value::Array(done));
        self.rewritten(&fields)
    }

    /// A parsed file's text, `None` when it is not a JSON object.
    pub fn parse(text: &str) -> Option<Metadata> {
        match serde_json::from_str(text) {
            Ok(Value::Object(fields)) => Some(Metadata {
                fields,
                text: text.to_owned(),
            }),
            _ => None,
        }
    }

    /// `fields` rendered, ending in a newline only when this file did.
    fn rewritten(&self, fields: &Map<String, Value>) -> String {
        let mut text = render(fields);
        if !self.text.ends_with('\n') {
            text.pop();
        }
        text
    }
}

/// SPEC §11.3: how far a session's copy and setup got, as its metadata records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SetupProgress {
    pub state: SetupState,
    /// The copies finished (an interrupted or failed copy leaves this false).
    pub copied: bool,
    /// The setup commands that succeeded, in order: never run again by a finishing apply.
    pub done: Vec<String>,
}

impl SetupProgress {
    pub const COPIED: &'static str = "copied";
    pub const DONE: &'static str = "setupDone";

    /// A session whose copy and setup have not started.
    pub fn started() -> SetupProgress {
        SetupProgress {
            state: SetupState::Incomplete,
            copied: false,
            done: Vec::new(),
        }
    }

    /// The setup commands of `commands` still to run: those after the longest start of the
    /// list that already succeeded in this order.
    pub fn remaining<'a>(&self, commands: &'a [String]) -> &'a [String] {
        let ran = commands
            .iter()
            .zip(&self.done)
            .take_while(|(want, done)| want == done)
            .count();
        commands.get(ran..).unwrap_or_default()
    }
}

/// What the manifest says the determined fields of a session are.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

    /// `found` with the determined fields replaced, everything else kept in place, down to
    /// whether the file ended in a newline (the manual process's `json.dump` writes none).
    pub fn update(&self, found: &Metadata) -> String {
        let mut fields = found.fields.clone();
        for (k, v) in self.pairs() {
            fields.insert(k.to_owned(), Value::String(v.to_owned()));
        }
        let mut text = render(&fields);
        if !found.text.ends_with('\n') {
            text.pop();
        }
        text
    }

    /// A new file: the manual process's fields, with `shellPid` and `startTime` given.
    pub fn create(&self, shell_pid: u32, start_time: &str) -> String {
        self.create_with_ports(shell_pid, start_time, &std::collections::BTreeMap::new())
    }

    /// A new file, with the session's ports (SPEC §10) when it has any.
    pub fn create_with_ports(
        &self,
        shell_pid: u32,
        start_time: &str,
        ports: &std::collections::BTreeMap<String, u16>,
    ) -> String {
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
        if !ports.is_empty() {
            let ports: Map<String, Value> = ports.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect();
            fields.insert("ports".into(), Value::Object(ports));
        }
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
    worktree.join(crate::names::metadata_file(id))
}

/// The largest metadata file flowloom reads; the manual process writes a few hundred bytes.
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Read a session's metadata. Only a regular file of at most [`MAX_BYTES`], reached from the
/// worktree without a symlink on the way, is read: anything else (a FIFO, a device, a
/// symlinked `sessions/<id>/`) is `Invalid`, so that its session is blocked and the file
/// never overwritten.
pub fn read(worktree: &Path, id: &str) -> MetadataFile {
    let rel = crate::names::metadata_file(id);
    let bytes = match crate::fsutil::read_regular_beneath(worktree, &rel, MAX_BYTES) {
        Ok(Some(b)) => b,
        Ok(None) => return MetadataFile::Missing,
        Err(e) => return MetadataFile::Invalid(e.to_string()),
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return MetadataFile::Invalid(format!("not UTF-8: {}", e.utf8_error())),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(fields)) => MetadataFile::Valid(Metadata { fields, text }),
        Ok(_) => MetadataFile::Invalid("not a JSON object".to_owned()),
        Err(e) => MetadataFile::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Wanted {
        Wanted {
            session_id: "x".into(),
            purpose: "new".into(),
            working_directory: "/r/sessions/shell-instance-x".into(),
            git_branch: "session/x".into(),
            worktree_name: "shell-instance-x".into(),
        }
    }

    fn parse(text: &str) -> Metadata {
        match serde_json::from_str(text) {
            Ok(Value::Object(fields)) => Metadata {
                fields,
                text: text.to_owned(),
            },
            _ => panic!("test input is a JSON object"),
        }
    }

    #[test]
    fn update_keeps_order_unknown_fields_and_the_final_newline_convention() {
        let found =
            parse("{\n  \"sessionId\": \"x\",\n  \"shellPid\": 7,\n  \"purpose\": \"old\",\n  \"extra\": [1]\n}");
        let text = wanted().update(&found);
        assert!(!text.ends_with('\n'));
        let keys: Vec<&str> = text.lines().filter_map(|l| l.trim().split('"').nth(1)).collect();
        assert_eq!(&keys[..4], ["sessionId", "shellPid", "purpose", "extra"]);
        assert!(text.contains("\"purpose\": \"new\"") && text.contains("\"shellPid\": 7"));
        let with_newline = parse("{\"purpose\": \"old\"}\n");
        assert!(wanted().update(&with_newline).ends_with("}\n"));
    }

    #[test]
    fn a_new_file_has_the_fields_of_the_manual_process() {
        let text = wanted().create(42, "2026-01-01T00:00:00Z");
        let m = parse(&text);
        assert!(wanted().matches(&m));
        assert_eq!(m.fields["shellPid"], 42);
        assert_eq!(m.fields["createdManually"], false);
        assert_eq!(m.fields["managedBy"], "flowloom");
    }
}
