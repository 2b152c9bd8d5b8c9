//! The repository format (`core.repositoryFormatVersion` and `extensions.*` in the
//! repository's own `config`), checked as git checks it before it touches anything
//! (git's `setup.c`, `verify_repository_format`):
//!
//! - a format version above 1 is refused;
//! - in version 1, an extension git does not know is refused (a newer git wrote the
//!   repository in a way this reader cannot honour);
//! - in version 0, unknown extensions are ignored, but one that only version 1 defines
//!   (`objectFormat`, `refStorage`, ...) is refused;
//! - extensions git knows but gitoxide cannot honour (SHA-256 objects, reftable refs, a
//!   compatibility object map) are refused with that reason.
//!
//! gix checks only `objectFormat` and `relativeWorktrees` and opens a repository with any
//! other unknown extension, so flowloom checks the whole list itself.

use std::path::{Path, PathBuf};

use miette::Diagnostic;

/// Extensions that version 0 repositories may carry (git's `handle_extension_v0`).
const V0_EXTENSIONS: [&str; 4] = ["noop", "preciousobjects", "partialclone", "worktreeconfig"];
/// Extensions that only version 1 defines (git's `handle_extension`), plus
/// `relativeworktrees` (git 2.48), which gix honours.
const V1_EXTENSIONS: [&str; 5] = [
    "noop-v1",
    "objectformat",
    "compatobjectformat",
    "refstorage",
    "relativeworktrees",
];

/// Why flowloom refuses a repository's format. Nothing has been read or written.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum FormatError {
    #[error(
        "the repository at {} has format version {version} (core.repositoryFormatVersion), and git reads versions 0 and 1 only",
        common_dir.display()
    )]
    #[diagnostic(
        code(flowloom::repository_format),
        help("git refuses this repository too (\"Expected git repo version <= 1\"); flowloom changed nothing")
    )]
    Version { common_dir: PathBuf, version: String },

    #[error(
        "the repository at {} uses {} git does not know: {}",
        common_dir.display(),
        if names.len() == 1 { "a repository extension" } else { "repository extensions" },
        names.join(", ")
    )]
    #[diagnostic(
        code(flowloom::repository_extension),
        help(
            "git refuses this repository too (\"unknown repository extension found\"): a newer tool wrote it in a form flowloom cannot honour. flowloom changed nothing; use the tool that set extensions.* in {}/config",
            common_dir.display()
        )
    )]
    Unknown { common_dir: PathBuf, names: Vec<String> },

    #[error(
        "the repository at {} has format version 0 but uses the version 1 extension{} {}",
        common_dir.display(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    )]
    #[diagnostic(
        code(flowloom::repository_extension),
        help(
            "git refuses this repository too (\"repo version is 0, but v1-only extension found\"); flowloom changed nothing. Set core.repositoryFormatVersion = 1 if the extension is meant"
        )
    )]
    V1OnlyInV0 { common_dir: PathBuf, names: Vec<String> },

    #[error(
        "the repository at {} sets extensions.{name} = {value}, which {why}",
        common_dir.display()
    )]
    #[diagnostic(code(flowloom::repository_extension), help("{help}"))]
    Unsupported {
        common_dir: PathBuf,
        name: String,
        value: String,
        why: String,
        help: String,
    },
}

/// Checks the format of the repository whose common directory is `common_dir`, from its
/// `config` file alone (no includes, as git reads it).
pub fn check(common_dir: &Path) -> Result<(), FormatError> {
    let path = common_dir.join("config");
    let Ok(bytes) = std::fs::read(&path) else {
        // No config (or none readable): version 0 without extensions, as git takes it.
        return Ok(());
    };
    let meta = gix::config::file::Metadata::from(gix::config::Source::Local);
    let Ok(config) = gix::config::File::from_bytes_no_includes(&bytes, meta, Default::default()) else {
        // A config git cannot parse either: opening the repository says why.
        return Ok(());
    };
    check_config(common_dir, &config)
}

fn check_config(common_dir: &Path, config: &gix::config::File) -> Result<(), FormatError> {
    let version = match config.string("core.repositoryFormatVersion") {
        None => 0,
        Some(raw) => match raw.to_string().trim().parse::<i64>() {
            Ok(v @ 0..=1) => v,
            _ => {
                return Err(FormatError::Version {
                    common_dir: common_dir.to_owned(),
                    version: raw.to_string(),
                });
            }
        },
    };
    let extensions = extensions(config);
    let (mut unknown, mut v1_only) = (Vec::new(), Vec::new());
    for (name, _) in &extensions {
        if V0_EXTENSIONS.contains(&name.as_str()) {
            continue;
        }
        if V1_EXTENSIONS.contains(&name.as_str()) {
            v1_only.push(name.clone());
        } else {
            unknown.push(name.clone());
        }
    }
    let common_dir = common_dir.to_owned();
    if version == 1 && !unknown.is_empty() {
        return Err(FormatError::Unknown {
            common_dir,
            names: unknown,
        });
    }
    if version == 0 && !v1_only.is_empty() {
        return Err(FormatError::V1OnlyInV0 {
            common_dir,
            names: v1_only,
        });
    }
    if version == 0 {
        return Ok(());
    }
    for (name, value) in extensions {
        if let Some((why, help)) = unsupported(&name, &value) {
            return Err(FormatError::Unsupported {
                common_dir,
                name,
                value,
                why: why.into(),
                help: help.into(),
            });
        }
    }
    Ok(())
}

/// The `extensions.*` settings, named as git names them (lower case, `sub.name` for a
/// subsection), each with its last value (`true` when the key has no `=`), in first-seen order.
fn extensions(config: &gix::config::File) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for section in config.sections_by_name("extensions").into_iter().flatten() {
        let mut names: Vec<String> = section.value_names().map(|n| n.to_ascii_lowercase()).collect();
        names.dedup();
        for key in names {
            let value = match section.value_implicit(&key) {
                Some(Some(v)) => v.to_string(),
                _ => "true".to_owned(),
            };
            let name = match section.header().subsection_name() {
                Some(sub) => format!("{sub}.{key}"),
                None => key,
            };
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => out.push((name, value)),
            }
        }
    }
    out
}

/// Why a known extension's value cannot be honoured, and what to do: `None` when it can.
fn unsupported(name: &str, value: &str) -> Option<(&'static str, &'static str)> {
    match (name, value) {
        ("objectformat", "sha1") | ("refstorage", "files") => None,
        ("objectformat", "sha256") => Some((
            "this build of flowloom cannot read: its gitoxide is built for SHA-1 object names only",
            "flowloom changed nothing; use git itself for this repository (`git worktree add`)",
        )),
        ("objectformat", _) => Some((
            "is no object format git knows (git refuses it too)",
            "flowloom changed nothing; fix extensions.objectFormat (sha1 or sha256)",
        )),
        ("refstorage", "reftable") => Some((
            "gitoxide cannot read or write yet: the refs are stored in the reftable format",
            "flowloom changes nothing here. To use it, convert the refs with `git refs migrate --ref-format=files`",
        )),
        ("refstorage", _) => Some((
            "is no ref storage git knows (git refuses it too)",
            "flowloom changed nothing; fix extensions.refStorage (files or reftable)",
        )),
        ("compatobjectformat", _) => Some((
            "gitoxide cannot keep: every object written must also be recorded under its other name, and gitoxide does not",
            "flowloom changed nothing; use git itself for this repository, or remove extensions.compatObjectFormat",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<(), FormatError> {
        let meta = gix::config::file::Metadata::from(gix::config::Source::Local);
        let config = gix::config::File::from_bytes_no_includes(text.as_bytes(), meta, Default::default())
            .expect("config parses");
        check_config(Path::new("/repo/.git"), &config)
    }

    #[test]
    fn version_1_refuses_unknown_extensions_and_version_0_ignores_them() {
        let v1 = "[core]\n\trepositoryformatversion = 1\n[extensions]\n\tsomethingNew = x\n\tnoop = true\n";
        match check_text(v1) {
            Err(FormatError::Unknown { names, .. }) => assert_eq!(names, ["somethingnew"]),
            other => panic!("{other:?}"),
        }
        assert!(check_text("[extensions]\n\tsomethingNew = x\n").is_ok());
        assert!(check_text("[core]\n\trepositoryformatversion = 0\n[extensions \"Sub\"]\n\tx = y\n").is_ok());
        match check_text("[core]\n\trepositoryformatversion = 1\n[extensions \"Sub\"]\n\tKey\n") {
            Err(FormatError::Unknown { names, .. }) => assert_eq!(names, ["Sub.key"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn known_extensions_keep_working() {
        let ok = "[core]\n\trepositoryformatversion = 1\n[extensions]\n\tworktreeConfig = true\n\
                  \tobjectFormat = sha1\n\tpreciousObjects = true\n\tnoop\n\tnoop-v1 = 1\n\trefStorage = files\n";
        assert!(check_text(ok).is_ok(), "{:?}", check_text(ok));
    }

    #[test]
    fn version_1_only_extensions_in_version_0_and_too_new_versions_are_refused() {
        match check_text("[extensions]\n\tobjectFormat = sha1\n") {
            Err(FormatError::V1OnlyInV0 { names, .. }) => assert_eq!(names, ["objectformat"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check_text("[core]\n\trepositoryformatversion = 2\n"),
            Err(FormatError::Version { .. })
        ));
    }

    #[test]
    fn extensions_gitoxide_cannot_honour_are_refused_with_the_reason() {
        for (text, name) in [
            ("objectFormat = sha256", "objectformat"),
            ("refStorage = reftable", "refstorage"),
            ("compatObjectFormat = sha256", "compatobjectformat"),
            ("objectFormat = md5", "objectformat"),
        ] {
            let config = format!("[core]\n\trepositoryformatversion = 1\n[extensions]\n\t{text}\n");
            match check_text(&config) {
                Err(FormatError::Unsupported { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{text}: {other:?}"),
            }
        }
        // The last value counts, as in git.
        let last = "[core]\n\trepositoryformatversion = 1\n[extensions]\n\trefStorage = reftable\n[extensions]\n\trefStorage = files\n";
        assert!(check_text(last).is_ok());
    }
}
