//! `flowloom __complete -- WORDS...` (no command of the CLI: see [`NAME`]): what the completion scripts of `completions`
//! and `shell-init` ask when a session id may be typed: after `cd`, `path`, `run` and `rm`,
//! and after `--target`. The words are parsed here, once for every shell; the manifest is
//! found as every command finds it (`-C` and `--manifest` among the words count) and read
//! alone: no repository scan, so it answers at once. Every error prints nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::manifest::{self, Manifest};

/// Subcommands whose first argument is a session id (`cd` is the shell function's).
const TAKE_AN_ID: &[&str] = &["cd", "path", "run", "rm", "setup"];
/// Subcommands whose `--target` takes a session id.
const TAKE_TARGETS: &[&str] = &["plan", "apply"];

/// `flowloom __complete -- WORDS...`: the first argument, recognised before clap parses.
pub const NAME: &str = "__complete";

/// `args`: what follows [`NAME`]: `--`, then the command line up to the word being
/// completed, that word last. Prints the ids that fit, one per line, and exits 0 when an id
/// goes there; else prints nothing and exits 1.
pub fn run(args: &[std::ffi::OsString]) -> ExitCode {
    let words: Option<Vec<String>> = match args.split_first() {
        Some((dashes, words)) if dashes == "--" => words.iter().map(|w| w.to_str().map(str::to_owned)).collect(),
        _ => None,
    };
    let Some(wanted) = words.as_deref().and_then(parse) else {
        return ExitCode::from(1);
    };
    let mut out = String::new();
    for id in session_ids(&wanted)
        .into_iter()
        .filter(|id| id.starts_with(&wanted.current))
    {
        out.push_str(&id);
        out.push('\n');
    }
    // A closed pipe is no error here either.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
    ExitCode::SUCCESS
}

/// An id is wanted at the end of the command line: where to look for the manifest, and
/// what is typed of the id so far.
#[derive(Debug, PartialEq, Eq)]
struct Wanted {
    directory: Option<String>,
    manifest: Option<String>,
    current: String,
}

/// `words`: the command name, the words before the cursor, the word being completed.
/// `Some` when that last word is a session id's place.
fn parse(words: &[String]) -> Option<Wanted> {
    let (current, before) = words.split_last()?;
    let mut before = before.iter().skip(1).map(String::as_str);
    let (mut directory, mut manifest) = (None, None);
    let mut subcommand: Option<&str> = None;
    let mut positionals = 0;
    let mut after_dashes = false;
    // The option whose value is the word being completed, if any.
    let mut pending: Option<&str> = None;
    while let Some(word) = before.next() {
        if after_dashes {
            positionals += 1;
            continue;
        }
        let takes_value = matches!(word, "-C" | "--manifest" | "--color" | "--lock-timeout")
            || (subcommand.is_some() && matches!(word, "--target" | "--out" | "--purpose" | "--base"));
        if takes_value {
            match before.next() {
                Some(value) if word == "-C" => directory = Some(value.to_owned()),
                Some(value) if word == "--manifest" => manifest = Some(value.to_owned()),
                Some(_) => {}
                None => pending = Some(word),
            }
        } else if let Some(value) = word.strip_prefix("--manifest=") {
            manifest = Some(value.to_owned());
        } else if let Some(value) = word.strip_prefix("-C").filter(|v| !v.is_empty()) {
            directory = Some(value.to_owned());
        } else if word == "--" {
            after_dashes = true;
        } else if word.starts_with('-') {
            // A flag (`--json`, `-q`), or an option with its value attached.
        } else if subcommand.is_none() {
            subcommand = Some(word);
        } else {
            positionals += 1;
        }
    }
    let subcommand = subcommand?;
    let wanted = match pending {
        Some("--target") => TAKE_TARGETS.contains(&subcommand),
        Some(_) => false,
        None => TAKE_AN_ID.contains(&subcommand) && positionals == 0 && !after_dashes && !current.starts_with('-'),
    };
    wanted.then(|| Wanted {
        directory,
        manifest,
        current: current.clone(),
    })
}

/// The declared session ids, in id order; none when anything goes wrong.
fn session_ids(wanted: &Wanted) -> Vec<String> {
    let Ok(cwd) = std::env::current_dir() else {
        return Vec::new();
    };
    let start = match &wanted.directory {
        Some(dir) => cwd.join(tilde(dir)),
        None => cwd,
    };
    let Ok(start) = start.canonicalize() else {
        return Vec::new();
    };
    let path = match &wanted.manifest {
        Some(path) => start.join(tilde(path)),
        None => match super::open_repo(&start).ok().and_then(|repo| main_worktree(&repo)) {
            Some(top) => top.join(manifest::FILE_NAME),
            None => start.join(manifest::FILE_NAME),
        },
    };
    let manifest = match &wanted.manifest {
        Some(_) => Manifest::load(&path),
        // SPEC §11.1, first use: the local layer alone.
        None => Manifest::load_or_empty(&path),
    };
    manifest.map(|m| m.sessions.into_keys().collect()).unwrap_or_default()
}

fn main_worktree(repo: &gix::Repository) -> Option<PathBuf> {
    repo.main_repo().ok()?.workdir().map(Path::to_owned)
}

/// The shell did not expand `~` in a word being typed: do it as it would.
fn tilde(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ if path == "~" => std::env::var_os("HOME").map_or_else(|| PathBuf::from(path), PathBuf::from),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: &str) -> Option<Wanted> {
        let mut words: Vec<String> = line.split(' ').map(str::to_owned).collect();
        if line.ends_with(' ') {
            // The word being completed is empty.
            words.pop();
            words.push(String::new());
        }
        parse(&words)
    }

    fn wants(line: &str) -> bool {
        at(line).is_some()
    }

    #[test]
    fn ids_are_wanted_where_a_session_id_goes() {
        for line in [
            "flowloom cd ",
            "flowloom cd au",
            "flowloom path x",
            "flowloom run ",
            "flowloom rm --yes ",
            "flowloom -q rm ",
            "flowloom -C ../app path ",
            "flowloom --color never path ",
            "flowloom plan --target ",
            "flowloom apply --yes --target a",
            "flowloom plan --target a --target ",
        ] {
            assert!(wants(line), "{line:?}");
        }
        for line in [
            "flowloom ",
            "flowloom pa",
            "flowloom path a ",
            "flowloom run a ",
            "flowloom run a -- ",
            "flowloom rm -",
            "flowloom status ",
            "flowloom new ",
            "flowloom -C ",
            "flowloom path --manifest ",
            "flowloom plan --out ",
            "flowloom new x --base ",
            "flowloom show --target ",
            "flowloom",
        ] {
            assert!(!wants(line), "{line:?}");
        }
    }

    #[test]
    fn the_manifest_is_found_as_the_command_would() {
        assert_eq!(
            at("flowloom -C ~/app --manifest=m.toml cd a"),
            Some(Wanted {
                directory: Some("~/app".into()),
                manifest: Some("m.toml".into()),
                current: "a".into(),
            })
        );
        assert_eq!(
            at("flowloom -Capp path --manifest x.toml ")
                .expect("test")
                .directory
                .as_deref(),
            Some("app")
        );
        assert_eq!(
            at("flowloom -Capp path --manifest x.toml ")
                .expect("test")
                .manifest
                .as_deref(),
            Some("x.toml")
        );
    }
}
