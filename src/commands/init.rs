//! `flowloom init`: a commented starter manifest, written where flowloom looks for it.

use std::path::Path;
use std::process::ExitCode;

use super::{Error, manifest_path, open_repo};
use crate::cli::Cli;
use crate::error::RepoError;
use crate::render::output::Printer;

/// The starter manifest: every default spelled out as a comment, and one example session,
/// so a new user sees what can be said without reading the docs. It must validate (tested).
pub const STARTER: &str = r#"# flowloom.toml: the work sessions this repository wants, one table per session.
#
# `flowloom plan` shows how the repository differs from this file, `flowloom apply`
# makes it so, and `flowloom status` shows every session. Commit this file: it is how a
# team shares its sessions. `flowloom new ID` declares a session of your own in
# flowloom.local.toml beside it, which is never committed.

version = 1

# Every key of [defaults] is optional; the values shown are the defaults, but for root.
[defaults]
# base     = "main"                  # where new session branches start: any revspec
root       = "../{repo}.sessions"    # the session worktrees, beside the repository (default "sessions")
# branch   = "session/{id}"          # branch name template; `{id}` is the session id
# worktree = "shell-instance-{id}"   # worktree folder name template (inside root)
# remote   = "origin"                # where existing session branches are looked for

# One table per session; the table key is the session id
# ([A-Za-z0-9][A-Za-z0-9._-]*, at most 64 characters). For example:
#
# [sessions.auth-refactor]
# purpose  = "Refactor the auth middleware"   # optional; defaults to the id
# base     = "develop"                        # optional overrides of the defaults
# branch   = "feature/auth"
# worktree = "auth"
#
# Sessions made by hand can be added here with `flowloom import`.
"#;

pub fn run(cli: &Cli, start_dir: &Path, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = if cli.global.manifest.is_some() {
        // With a manifest path given, a repository is optional, but one whose format is
        // refused still is.
        match open_repo(start_dir) {
            Ok(repo) => Some(repo),
            Err(Error::Format(refusal)) => return Err(refusal.into()),
            Err(_) => None,
        }
    } else {
        Some(open_repo(start_dir)?)
    };
    let path = manifest_path(cli, start_dir, repo.as_ref())?;
    let shown = path.display().to_string();
    // The base it detected is written out (SPEC §2), so the team shares it.
    let base = repo.as_ref().map(|r| super::default_base(r, "origin"));
    let text = match &base {
        Some(base) => STARTER.replacen(
            "# base     = \"main\"                  # where new session branches start: any revspec",
            &format!(
                "base       = {:<23} # where new session branches start: any revspec",
                toml_string(base)
            ),
            1,
        ),
        None => STARTER.to_owned(),
    };
    match crate::fsutil::write_new_atomic(&path, text.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::ManifestExists { file: shown });
        }
        Err(e) => return Err(RepoError::io("write", &path, e).into()),
    }
    printer.status(&format!("wrote {shown}"));
    // Say so where the base would not resolve (a repository without commits).
    let base = base.unwrap_or_else(|| "main".to_owned());
    if let Some(repo) = &repo
        && repo
            .rev_parse_single(crate::names::commit_spec(&base).as_str())
            .is_err()
    {
        printer.warn(&format!(
            "`{base}` does not name a commit here: set `base` under [defaults] in {shown} before declaring sessions"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    toml_edit::Value::from(text).to_string().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    #[test]
    fn starter_validates_and_declares_nothing() {
        let manifest = Manifest::from_source(Path::new("/repo/flowloom.toml"), STARTER.to_owned())
            .expect("the starter manifest validates");
        assert!(manifest.sessions.is_empty());
        assert_eq!(manifest.defaults.base, "main");
    }

    #[test]
    fn starter_example_validates_when_uncommented() {
        // The commented example must be right too: users uncomment it.
        let uncommented: String = STARTER
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.starts_with('[') || rest.contains(" = ") => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let manifest = Manifest::from_source(Path::new("/repo/flowloom.toml"), uncommented)
            .expect("the uncommented starter validates");
        let session = &manifest.sessions["auth-refactor"];
        assert_eq!(session.branch, "feature/auth");
        assert_eq!(session.worktree, "auth");
    }
}
