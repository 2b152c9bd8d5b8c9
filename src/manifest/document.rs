//! The JSON Schema of `flowloom.toml` (`flowloom schema`), generated with `schemars` from
//! the types below, so that editors with a TOML language server complete and check the
//! manifest. A test holds these types to the keys `schema.rs` accepts, so the schema and
//! the parser cannot drift apart.

use std::collections::BTreeMap;

use schemars::JsonSchema;

use super::Environment;

/// flowloom.toml: the work sessions a team wants, committed with the code; and
/// flowloom.local.toml beside it, this clone's own sessions (never committed), whose
/// `[defaults]` may set `root` only.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields, title = "flowloom.toml and flowloom.local.toml")]
#[allow(dead_code)]
struct Document {
    /// The manifest format; only 1 exists.
    #[schemars(range(min = 1, max = 1))]
    version: Option<u8>,
    /// Settings for every session; each one optional.
    defaults: Option<DefaultsDoc>,
    /// The declared sessions: the table key is the session id.
    sessions: Option<BTreeMap<String, SessionDoc>>,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct DefaultsDoc {
    /// Start point of new session branches: any revspec. Default: the remote's default
    /// branch, else `main`, else `master`.
    base: Option<String>,
    /// Folder that holds the session worktrees, relative to the manifest's folder (it may
    /// leave it: `../{repo}.sessions`). Default `sessions`. The one key flowloom.local.toml's
    /// `[defaults]` may set: this clone's choice, for every session.
    root: Option<String>,
    /// Branch name template; `{id}` is the session id. Default `session/{id}`.
    branch: Option<String>,
    /// Worktree folder name template (inside root); `{id}` is the session id. Default
    /// `shell-instance-{id}`.
    worktree: Option<String>,
    /// Where existing session branches are looked for. Default `origin`.
    remote: Option<String>,
    #[serde(flatten)]
    environment: Environment,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct SessionDoc {
    /// What the session is for; defaults to the id.
    purpose: Option<String>,
    /// This session's start point: any revspec.
    base: Option<String>,
    /// This session's branch name (`{id}` allowed).
    branch: Option<String>,
    /// This session's worktree folder name (`{id}` allowed).
    worktree: Option<String>,
    #[serde(flatten)]
    environment: Environment,
}

/// The pattern session ids follow (SPEC §2); also not ending in `.lock`.
const ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";

/// The schema, as pretty JSON.
pub fn json_schema() -> String {
    let mut schema = serde_json::to_value(schemars::schema_for!(Document)).unwrap_or_default();
    if let Some(sessions) = schema.pointer_mut("/properties/sessions") {
        sessions["propertyNames"] = serde_json::json!({ "pattern": ID_PATTERN, "not": { "pattern": "\\.lock$" } });
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(schema: &serde_json::Value, pointer: &str) -> Vec<String> {
        let mut found: Vec<String> = schema
            .pointer(pointer)
            .and_then(|p| p.as_object())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        found.sort();
        found
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut k: Vec<String> = keys.iter().map(|s| (*s).to_owned()).collect();
        k.sort();
        k
    }

    #[test]
    fn the_schema_knows_exactly_the_keys_the_parser_accepts() {
        let schema: serde_json::Value = serde_json::from_str(&json_schema()).expect("JSON");
        assert_eq!(keys(&schema, "/properties"), sorted(super::super::schema::TOP_KEYS));
        assert_eq!(
            keys(&schema, "/$defs/DefaultsDoc/properties"),
            sorted(super::super::schema::DEFAULTS_KEYS)
        );
        assert_eq!(
            keys(&schema, "/$defs/SessionDoc/properties"),
            sorted(super::super::schema::SESSION_KEYS)
        );
    }
}
