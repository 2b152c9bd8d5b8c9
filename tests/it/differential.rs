//! Differential tests (issue: "Real repositories: what flowloom checks out is what `git
//! worktree add` checks out"). Each row of [`CASES`] sets up one repository; the folder that
//! holds it is copied before anything runs. `git worktree add -b session/x
//! sessions/shell-instance-x <base>` runs in one copy and `flowloom apply --yes` (a manifest
//! declaring session `x`) in the other, and git, the oracle, compares what each made:
//!
//! - every file of the new worktree byte for byte, with its mode, and every symlink target
//!   (`sessions/x/`, which only flowloom makes, left out);
//! - the index: `git ls-files --stage`, `git ls-files --debug` without the fields that
//!   legitimately differ (ctime, mtime, dev, inode), and the index format version;
//! - `git status --porcelain=v2 --branch` in the new worktree;
//! - the worktree's administration folder: `HEAD`, `commondir`, `gitdir` and any other file
//!   in it (such as a copied `config.worktree` or `info/sparse-checkout`), except the
//!   index (compared above) and what `git worktree add` leaves as a by-product of the
//!   `git reset --hard` it runs inside (`ORIG_HEAD`, the second reflog entry under `logs/`);
//! - the branch tip, its `branch.*` configuration, and `git worktree list --porcelain`.
//!
//! Both sides run at the same absolute path: git runs in the set-up folder, its result is
//! recorded and moved aside, and the untouched copy is moved into its place for flowloom. So
//! the absolute paths git and flowloom write (`gitdir`, the worktree's `.git` file, remote and
//! alternates paths) are compared as they are; the temp folder is shown as `<side>`.
//!
//! A row that differs today is marked `known`, with why. The test asserts that it still
//! differs (a fix makes the test fail: promote the row by removing `known`) and that
//! flowloom never crashes on it (exit 1 with a message, never a panic's 101). Every
//! difference is printed as the path, git's value and flowloom's value; run
//! `cargo test --test it differential -- --nocapture` to see those of the known rows too.
//! A new case is one new row.

#![allow(clippy::print_stdout)] // the harness prints the differences it finds, as the issue asks

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::TestEnv;

const SESSION: &str = "x";
const BRANCH: &str = "session/x";
const WORKTREE: &str = "sessions/shell-instance-x";
/// One session, every key defaulted (base `main`).
const ONE_SESSION: &str = "[sessions.x]\n";

/// One row of the table.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    /// Builds the repository `<side>/repo` (its main worktree) and anything beside it in
    /// `<side>`, with the hermetic git of [`TestEnv`] (`env.repo` is `<side>/repo`).
    pub(crate) setup: fn(&TestEnv),
    /// The manifest written to `<side>/repo/flowloom.toml` (left untracked).
    pub(crate) manifest: &'static str,
    /// The start point given to `git worktree add`.
    pub(crate) base: &'static str,
    /// Environment variables for both `git worktree add` and `flowloom apply`; `{side}` in a
    /// value is replaced by the absolute side folder. The observations run without them, as
    /// a user who `cd`s into the new worktree would.
    pub(crate) env: &'static [(&'static str, &'static str)],
    /// The umask both `git worktree add` and `flowloom apply` run under (the set-up runs
    /// under the test's own); `None` keeps the test's.
    pub(crate) umask: Option<&'static str>,
    /// The oldest git (major, minor) that can set this row up; older gits skip it with a note.
    pub(crate) min_git: Option<(u32, u32)>,
    /// Why this row differs today; `None` for rows that must match.
    pub(crate) known: Option<&'static str>,
    /// A repository git refuses (`git worktree add` fails): flowloom must refuse it too, exit
    /// 1 with a message containing this text, and leave every file of the side folder as it
    /// was.
    pub(crate) refused: Option<&'static str>,
}

pub(crate) const ROW: Case = Case {
    name: "",
    setup: plain,
    manifest: ONE_SESSION,
    base: "main",
    env: &[],
    umask: None,
    min_git: None,
    known: None,
    refused: None,
};

const CASES: &[Case] = &[
    Case {
        name: "plain repository",
        ..ROW
    },
    Case {
        name: "executable file",
        setup: executable,
        ..ROW
    },
    Case {
        name: "core.fileMode=false with an executable file",
        setup: file_mode_false,
        ..ROW
    },
    Case {
        name: "symlinks (file, folder, dangling)",
        setup: symlinks,
        ..ROW
    },
    Case {
        name: "core.symlinks=false",
        setup: symlinks_false,
        ..ROW
    },
    Case {
        name: "core.autocrlf=true",
        setup: autocrlf,
        ..ROW
    },
    Case {
        name: "eol attributes (text eol=crlf, eol=lf, binary)",
        setup: eol_attributes,
        ..ROW
    },
    Case {
        name: "text=auto with core.eol=crlf",
        setup: text_auto_core_eol,
        ..ROW
    },
    Case {
        name: "info/attributes eol=crlf",
        setup: info_attributes,
        ..ROW
    },
    Case {
        name: "clean/smudge filter (tr)",
        setup: smudge_filter,
        ..ROW
    },
    Case {
        name: "long-running process filter",
        setup: process_filter,
        ..ROW
    },
    Case {
        name: "working-tree-encoding=ISO-8859-1",
        setup: latin1_encoding,
        ..ROW
    },
    Case {
        name: "working-tree-encoding=UTF-16LE",
        setup: utf16_encoding,
        ..ROW
    },
    Case {
        name: "working-tree-encoding UTF-16 (byte order mark), utf-16be, UTF-32, UTF32LE, UTF-32BE; empty and non-UTF-8 files",
        setup: wide_encodings,
        ..ROW
    },
    Case {
        name: "working-tree-encoding=UTF-16 with eol=crlf, and UTF-32 under core.autocrlf",
        setup: wide_encodings_crlf,
        ..ROW
    },
    Case {
        name: "working-tree-encoding UTF-16 and UTF-32BE with a smudge filter (the filter gets the encoded bytes)",
        setup: wide_encodings_smudged,
        ..ROW
    },
    Case {
        name: "ident attribute",
        setup: ident,
        ..ROW
    },
    Case {
        name: "post-checkout hook",
        setup: post_checkout_hook,
        ..ROW
    },
    Case {
        name: "post-checkout hook's environment (GIT_* variables, folder, arguments)",
        setup: env_hook,
        ..ROW
    },
    Case {
        name: "post-checkout hook's environment under the caller's GIT_DIR and GIT_WORK_TREE",
        setup: git_dir_env_hook,
        env: &[("GIT_DIR", "{side}/store.git"), ("GIT_WORK_TREE", "{side}/repo")],
        ..ROW
    },
    Case {
        name: "core.hooksPath with a post-checkout hook",
        setup: hooks_path,
        ..ROW
    },
    Case {
        name: "core.hooksPath elsewhere hides .git/hooks/post-checkout",
        setup: hooks_path_elsewhere,
        ..ROW
    },
    Case {
        name: "sparse checkout (cone mode)",
        setup: sparse_cone,
        ..ROW
    },
    Case {
        name: "extensions.worktreeConfig with core.autocrlf in config.worktree",
        setup: worktree_config,
        ..ROW
    },
    Case {
        name: "index.version=4",
        setup: index_v4,
        ..ROW
    },
    Case {
        name: "feature.manyFiles (index format 4)",
        setup: many_files,
        ..ROW
    },
    Case {
        name: "core.untrackedCache=true (an empty untracked cache in the index)",
        setup: untracked_cache_true,
        ..ROW
    },
    Case {
        name: "core.untrackedCache=true, status.showUntrackedFiles=all (the cache's flags)",
        setup: untracked_cache_all,
        ..ROW
    },
    Case {
        name: "feature.manyFiles with core.untrackedCache=keep (not a boolean: manyFiles' cache stays)",
        setup: many_files_keep,
        ..ROW
    },
    Case {
        name: "core.untrackedCache=keep (no untracked cache)",
        setup: untracked_cache_keep,
        ..ROW
    },
    Case {
        name: "index.skipHash=true (null trailer)",
        setup: skip_hash,
        ..ROW
    },
    Case {
        name: "index.skipHash=true with index.version=4",
        setup: skip_hash_v4,
        ..ROW
    },
    Case {
        name: "feature.manyFiles with index.skipHash=false (format 4, checksum)",
        setup: many_files_checksum,
        ..ROW
    },
    Case {
        name: "core.sharedRepository=group, umask 022",
        setup: shared_group,
        umask: Some("022"),
        ..ROW
    },
    Case {
        name: "core.sharedRepository=group, umask 077",
        setup: shared_group,
        umask: Some("077"),
        ..ROW
    },
    Case {
        name: "core.sharedRepository=all, umask 077",
        setup: shared_all,
        umask: Some("077"),
        ..ROW
    },
    Case {
        name: "core.sharedRepository=0640, umask 022",
        setup: shared_0640,
        umask: Some("022"),
        ..ROW
    },
    Case {
        name: "core.sharedRepository=0600, umask 022",
        setup: shared_0600,
        umask: Some("022"),
        ..ROW
    },
    Case {
        name: "core.sharedRepository=umask, umask 077",
        setup: shared_umask,
        umask: Some("077"),
        ..ROW
    },
    Case {
        name: "core.sharedRepository=true, umask 022, executable file, a worktrees/ folder already there",
        setup: shared_true_existing,
        umask: Some("022"),
        ..ROW
    },
    Case {
        name: "core.sharedRepository=group, umask 077, base origin/main: the upstream written keeps config's mode (0640)",
        setup: cloned_shared,
        manifest: "[sessions.x]\nbase = \"origin/main\"\n",
        base: "origin/main",
        umask: Some("077"),
        ..ROW
    },
    Case {
        name: "core.sharedRepository=group, umask 077, leading folders already there (refs/heads/session/, its reflog folder, sessions/)",
        setup: shared_group_leading_folders,
        umask: Some("077"),
        ..ROW
    },
    Case {
        name: "worktree.useRelativePaths (absolute links, which every git reads)",
        setup: relative_paths,
        ..ROW
    },
    Case {
        name: "odd and non-UTF-8 file names",
        setup: odd_names,
        ..ROW
    },
    Case {
        name: "submodule (left uninitialized)",
        setup: submodule,
        ..ROW
    },
    Case {
        name: "clone --shared (alternates)",
        setup: shared_clone,
        ..ROW
    },
    Case {
        name: "objects/info/alternates with a relative path",
        setup: relative_alternates,
        ..ROW
    },
    Case {
        name: "GIT_ALTERNATE_OBJECT_DIRECTORIES (objects only found there)",
        setup: alternates_from_environment,
        env: &[("GIT_ALTERNATE_OBJECT_DIRECTORIES", "{side}/origin/.git/objects")],
        ..ROW
    },
    Case {
        name: "GIT_ALTERNATE_OBJECT_DIRECTORIES: a missing folder and a relative one going up (git skips both), then the one",
        setup: alternates_from_environment,
        env: &[(
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "{side}/nowhere:../origin/.git/objects:{side}/origin/.git/objects",
        )],
        ..ROW
    },
    Case {
        name: "--separate-git-dir",
        setup: separate_git_dir,
        ..ROW
    },
    Case {
        name: "shallow clone (--depth 1)",
        setup: shallow_clone,
        ..ROW
    },
    Case {
        name: "--object-format=sha256",
        setup: sha256,
        known: Some("refused before anything is written: flowloom's gix is built without sha256"),
        ..ROW
    },
    Case {
        name: "--ref-format=reftable",
        setup: reftable,
        min_git: Some((2, 45)),
        known: Some("refused before anything is written: gix reads no reftable"),
        ..ROW
    },
    Case {
        name: "GIT_DIR and GIT_WORK_TREE in the environment",
        setup: git_dir_env,
        env: &[("GIT_DIR", "{side}/store.git"), ("GIT_WORK_TREE", "{side}/repo")],
        ..ROW
    },
    Case {
        name: "GIT_CONFIG_COUNT sets core.autocrlf=true",
        setup: plain,
        env: &[
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "core.autocrlf"),
            ("GIT_CONFIG_VALUE_0", "true"),
        ],
        ..ROW
    },
    Case {
        name: "global config (GIT_CONFIG_GLOBAL) core.autocrlf=true",
        setup: global_autocrlf,
        ..ROW
    },
    Case {
        name: "includeIf gitdir: of the main worktree sets core.autocrlf (not the linked one's)",
        setup: include_if_main_gitdir,
        ..ROW
    },
    Case {
        name: "includeIf gitdir: of linked worktrees sets core.autocrlf",
        setup: include_if_linked_gitdir,
        ..ROW
    },
    Case {
        name: "includeIf gitdir/i: of the main worktree sets a smudge filter",
        setup: include_if_main_gitdir_filter,
        ..ROW
    },
    Case {
        name: "includeIf gitdir: of the main worktree with extensions.worktreeConfig",
        setup: include_if_main_gitdir_worktree_config,
        ..ROW
    },
    Case {
        name: "base origin/main (remote-tracking), branch.autoSetupMerge unset: tracks it",
        setup: cloned,
        manifest: "[sessions.x]\nbase = \"origin/main\"\n",
        base: "origin/main",
        ..ROW
    },
    Case {
        name: "base main, branch.autoSetupMerge=always: tracks the local branch",
        setup: cloned_always,
        base: "main",
        ..ROW
    },
    Case {
        name: "base origin/main, branch.autoSetupMerge=false: no upstream",
        setup: cloned_false,
        manifest: "[sessions.x]\nbase = \"origin/main\"\n",
        base: "origin/main",
        ..ROW
    },
    Case {
        name: "base main, branch.autoSetupMerge=inherit: main's upstream",
        setup: cloned_inherit,
        base: "main",
        ..ROW
    },
    Case {
        name: "base origin/main, branch.autoSetupMerge=simple: other name, no upstream",
        setup: cloned_simple,
        manifest: "[sessions.x]\nbase = \"origin/main\"\n",
        base: "origin/main",
        ..ROW
    },
    Case {
        name: "base :/text (youngest commit reachable from any ref whose message matches)",
        setup: message_search,
        manifest: "[sessions.x]\nbase = \":/findme\"\n",
        base: ":/findme",
        ..ROW
    },
    Case {
        name: "unknown extension (repositoryFormatVersion 1, extensions.somethingNew)",
        setup: unknown_extension,
        refused: Some("somethingnew"),
        ..ROW
    },
    Case {
        name: "version 1 with extensions.objectFormat=sha1 in a version 0 repository",
        setup: v1_extension_in_v0,
        refused: Some("objectformat"),
        ..ROW
    },
    Case {
        name: "repositoryFormatVersion 2",
        setup: format_version_2,
        refused: Some("format version 2"),
        ..ROW
    },
    Case {
        name: "known extensions (worktreeConfig, objectFormat=sha1, preciousObjects, noop) in version 1",
        setup: known_extensions,
        ..ROW
    },
    Case {
        name: "unknown extension in a version 0 repository (ignored, as git ignores it)",
        setup: unknown_extension_v0,
        ..ROW
    },
    Case {
        name: "base :/!-text (youngest commit whose message does not match)",
        setup: message_search,
        manifest: "[sessions.x]\nbase = \":/!-unrelated\"\n",
        base: ":/!-unrelated",
        ..ROW
    },
    Case {
        name: "base :/fix(es)? [0-9]+ (a regular expression, as git's :/ takes it)",
        setup: message_regex,
        manifest: "[sessions.x]\nbase = \":/fix(es)? [0-9]+\"\n",
        base: ":/fix(es)? [0-9]+",
        ..ROW
    },
    Case {
        name: "base :/!-un.elated (a negated regular expression)",
        setup: message_regex,
        manifest: "[sessions.x]\nbase = \":/!-un.elated\"\n",
        base: ":/!-un.elated",
        ..ROW
    },
    Case {
        name: "base :/^fix [[:digit:]]+.*parser (an anchor, a POSIX class, `.` across lines as in git)",
        setup: message_regex,
        manifest: "[sessions.x]\nbase = \":/^fix [[:digit:]]+.*parser\"\n",
        base: ":/^fix [[:digit:]]+.*parser",
        ..ROW
    },
    Case {
        name: "bare-clone layout (.bare, .git gitfile, worktrees beside), core.bare in config",
        setup: bare_clone_layout,
        ..ROW
    },
    Case {
        name: "bare-clone layout, core.bare in config.worktree (extensions.worktreeConfig)",
        setup: bare_clone_layout_worktree_config,
        ..ROW
    },
    Case {
        name: "default branch master, manifest base omitted",
        setup: master,
        base: "master",
        ..ROW
    },
];

#[test]
fn differential_git_worktree_add_is_the_oracle() {
    run_table(CASES);
}

/// Runs every row of `cases` (see the module's comment) and fails with each row's problem.
pub(crate) fn run_table(cases: &[Case]) {
    let git_version = git_version();
    let mut failures = Vec::new();
    for case in cases {
        if let Some((major, minor)) = case.min_git
            && git_version < (major, minor)
        {
            println!(
                "skipped `{}`: needs git {major}.{minor}, this is {}.{}",
                case.name, git_version.0, git_version.1
            );
            continue;
        }
        let outcome = run_case(case);
        let report = outcome.report();
        println!("{report}");
        if let Some(problem) = outcome.problem(case) {
            failures.push(format!("{problem}\n{report}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// What one row gave: flowloom's exit and output, and every difference from git's result.
struct Outcome {
    name: &'static str,
    known: Option<&'static str>,
    code: i32,
    stderr: String,
    differences: Vec<Difference>,
}

struct Difference {
    what: String,
    git: Option<String>,
    flowloom: Option<String>,
}

impl Outcome {
    /// Why this row fails the test, if it does.
    fn problem(&self, case: &Case) -> Option<String> {
        let name = case.name;
        if self.code != 0 && self.code != 1 {
            return Some(format!("`{name}`: flowloom crashed (exit code {})", self.code));
        }
        if self.code == 1 && self.stderr.trim().is_empty() {
            return Some(format!("`{name}`: flowloom exited 1 without saying why"));
        }
        if case.refused.is_some() && case.known.is_none() {
            return (!self.differences.is_empty())
                .then(|| format!("`{name}`: git refuses this repository; flowloom must refuse it and write nothing"));
        }
        match case.known {
            None if self.code != 0 || !self.differences.is_empty() => Some(format!(
                "`{name}`: flowloom's session differs from git's (or mark the row known, with why)"
            )),
            Some(why) if self.code == 0 && self.differences.is_empty() => Some(format!(
                "`{name}`: now matches git; promote the row (remove `known: {why:?}`)"
            )),
            _ => None,
        }
    }

    fn report(&self) -> String {
        let mut text = format!("row `{}`", self.name);
        if let Some(why) = self.known {
            text.push_str(&format!(" (known: {why})"));
        }
        if self.differences.is_empty() {
            text.push_str(": matches git");
            return text;
        }
        text.push_str(&format!(": {} difference(s)", self.differences.len()));
        for d in &self.differences {
            let show = |v: &Option<String>| v.as_deref().map_or("(absent)".to_owned(), clip);
            text.push_str(&format!(
                "\n  {}\n    git:      {}\n    flowloom: {}",
                d.what,
                show(&d.git),
                show(&d.flowloom)
            ));
        }
        text
    }
}

fn clip(value: &str) -> String {
    const MAX: usize = 400;
    match value.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}… ({} bytes)", &value[..at], value.len()),
        None => value.to_owned(),
    }
}

fn run_case(case: &Case) -> Outcome {
    OBSERVED_WITH.with(|with| with.borrow_mut().clear());
    let mut env = TestEnv::empty();
    let side = env.tmp.path().join("side");
    std::fs::create_dir(&side).expect("side folder");
    env.repo = side.join("repo");
    (case.setup)(&env);
    env.manifest(case.manifest);
    let vars: Vec<(&str, String)> = case
        .env
        .iter()
        .map(|(k, v)| (*k, v.replace("{side}", &side.display().to_string())))
        .collect();
    // A user who reads objects through `GIT_ALTERNATE_OBJECT_DIRECTORIES` keeps it set in
    // the new worktree too: the observations get it (and no other variable of the row).
    let kept: Vec<(String, String)> = vars
        .iter()
        .filter(|(k, _)| *k == "GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    OBSERVED_WITH.with(|with| *with.borrow_mut() = kept);

    // Copy the whole side folder before either runs.
    let pristine = env.tmp.path().join("pristine");
    let out = Command::new("cp")
        .arg("-a")
        .arg(&side)
        .arg(&pristine)
        .output()
        .expect("cp");
    assert!(out.status.success(), "cp -a: {}", String::from_utf8_lossy(&out.stderr));

    // git, in the set-up folder.
    let worktree = env.repo.join(WORKTREE);
    let mut add = git(&env, &env.repo);
    add.envs(vars.iter().map(|(k, v)| (k, v)))
        .args(["worktree", "add", "-q", "-b", BRANCH])
        .arg(&worktree)
        .arg(case.base);
    let out = under_umask(add, case.umask).output().expect("git worktree add");
    if let Some(named) = case.refused {
        assert!(
            !out.status.success(),
            "`{}`: git took the repository it should refuse",
            case.name
        );
        return run_refused(case, &env, &pristine, &side, &vars, named);
    }
    assert!(
        out.status.success(),
        "`{}`: git worktree add failed (the set-up is wrong): {}",
        case.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let by_git = observe(&env, &side);

    // flowloom, in the copy moved to the same path.
    std::fs::rename(&side, env.tmp.path().join("done-by-git")).expect("move git's result aside");
    std::fs::rename(&pristine, &side).expect("move the copy in");
    let mut apply = env.flowloom_in(&env.repo);
    apply.envs(vars.iter().map(|(k, v)| (k, v))).args(["apply", "--yes"]);
    let out = under_umask(apply, case.umask).output().expect("run flowloom");
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let by_flowloom = observe(&env, &side);

    let differences = differences(&by_git, &by_flowloom, code, &stderr, &side);
    Outcome {
        name: case.name,
        known: case.known,
        code,
        stderr,
        differences,
    }
}

/// Where flowloom's result differs from git's: its exit code, then each thing observed.
fn differences(
    by_git: &BTreeMap<String, String>,
    by_flowloom: &BTreeMap<String, String>,
    code: i32,
    stderr: &str,
    side: &Path,
) -> Vec<Difference> {
    let mut differences = Vec::new();
    if code != 0 {
        let said = normalize(BTreeMap::from([(String::new(), stderr.trim().to_owned())]), side);
        differences.push(Difference {
            what: "exit code (git worktree add, flowloom apply)".into(),
            git: Some("0".into()),
            flowloom: Some(format!("{code}: {}", said[""].replace('\n', "\n              "))),
        });
    }
    if by_flowloom.contains_key("worktree") {
        // Nothing to compare entry by entry.
        differences.push(Difference {
            what: "worktree".into(),
            git: Some(format!("made ({} things compared)", by_git.len())),
            flowloom: Some("(missing)".into()),
        });
        return differences;
    }
    for key in by_git
        .keys()
        .chain(by_flowloom.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (g, f) = (by_git.get(key), by_flowloom.get(key));
        if g != f {
            differences.push(Difference {
                what: key.clone(),
                git: g.cloned(),
                flowloom: f.cloned(),
            });
        }
    }
    differences
}

/// A row git refuses: flowloom, in the untouched copy, must refuse too (exit 1, naming
/// `named`) and change nothing in the side folder.
fn run_refused(
    case: &Case,
    env: &TestEnv,
    pristine: &Path,
    side: &Path,
    vars: &[(&str, String)],
    named: &str,
) -> Outcome {
    std::fs::rename(side, env.tmp.path().join("refused-by-git")).expect("move git's side aside");
    std::fs::rename(pristine, side).expect("move the copy in");
    let mut before = BTreeMap::new();
    walk(side, Path::new(""), &mut before);
    let out = env
        .flowloom_in(&env.repo)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .args(["apply", "--yes"])
        .output()
        .expect("run flowloom");
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut after = BTreeMap::new();
    walk(side, Path::new(""), &mut after);
    let mut differences = Vec::new();
    let flat = stderr
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" │", "");
    if code != 1 || !flat.contains(named) {
        differences.push(Difference {
            what: format!("refusal naming `{named}` (exit code 1)"),
            git: Some("refused".into()),
            flowloom: Some(format!("{code}: {}", stderr.trim())),
        });
    }
    for key in before
        .keys()
        .chain(after.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if before.get(key) != after.get(key) {
            differences.push(Difference {
                what: format!("written by a refused apply: {key}"),
                git: before.get(key).cloned(),
                flowloom: after.get(key).cloned(),
            });
        }
    }
    Outcome {
        name: case.name,
        known: case.known,
        code,
        stderr,
        differences,
    }
}

/// The index entries' stat data git keeps (`ls-files --debug`), as `index stat <path>`:
/// ctime, mtime, dev and inode are the file system's; uid, gid, size and flags are not.
fn index_stats(env: &TestEnv, worktree: &Path, seen: &mut BTreeMap<String, String>) {
    let gitlinks: Vec<String> = seen
        .iter()
        .filter(|(k, v)| k.starts_with("index entry ") && v.contains(" 160000 "))
        .map(|(k, _)| k["index entry ".len()..].to_owned())
        .collect();
    let debug = git_text(env, worktree, &["ls-files", "--debug"]);
    let mut path = String::new();
    for line in debug.lines() {
        if !line.starts_with(' ') {
            path = line.to_owned();
            continue;
        }
        // ctime, mtime, dev and inode are the file system's; uid, gid, size and flags are
        // not. A gitlink's size is its folder's, which git ignores too ("We ignore most of
        // the st_xxx fields for gitlinks", read-cache.c).
        let gitlink = gitlinks.contains(&path);
        let kept: Vec<&str> = line
            .trim()
            .split('\t')
            .filter(|f| !["ctime:", "mtime:", "dev:", "ino:"].iter().any(|p| f.starts_with(p)))
            .filter(|f| !(gitlink && f.starts_with("size:")))
            .collect();
        if !kept.is_empty() {
            let value = seen.entry(format!("index stat {path}")).or_default();
            if !value.is_empty() {
                value.push_str("  ");
            }
            value.push_str(&kept.join("  "));
        }
    }
}

/// Everything compared about the session worktree, as `what → value`; absolute paths under
/// `side` shown as `<side>`.
fn observe(env: &TestEnv, side: &Path) -> BTreeMap<String, String> {
    let worktree = env.repo.join(WORKTREE);
    let mut seen = BTreeMap::new();
    if !worktree.is_dir() {
        seen.insert("worktree".into(), "(missing)".into());
        return normalize(seen, side);
    }
    let mut files = BTreeMap::new();
    walk(&worktree, Path::new(""), &mut files);
    // `sessions/` itself is only flowloom's when nothing tracked lies in it.
    if !files.keys().any(|k| k.starts_with("sessions/")) {
        files.remove("sessions");
    }
    seen.extend(files.into_iter().map(|(k, v)| (format!("file {k}"), v)));

    // The index, before anything (git status) refreshes it.
    // `-t` tags each entry: `H` cached, `S` skip-worktree (sparse checkout).
    for line in git_text(env, &worktree, &["ls-files", "--stage", "-t"]).lines() {
        let (entry, path) = line.split_once('\t').unwrap_or((line, ""));
        seen.insert(format!("index entry {path}"), entry.to_owned());
    }
    index_stats(env, &worktree, &mut seen);

    let admin = PathBuf::from(git_text(env, &worktree, &["rev-parse", "--absolute-git-dir"]).trim());
    let index = std::fs::read(admin.join("index")).unwrap_or_default();
    let version = index
        .get(4..8)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]).to_string());
    seen.insert("index format version".into(), version.unwrap_or("(no index)".into()));
    // `index.skipHash` (and `feature.manyFiles`): git writes 20 zero bytes for the checksum.
    let trailer = index.len().checked_sub(20).map(|at| match &index[at..] {
        t if t.iter().all(|b| *b == 0) => "null (index.skipHash)",
        _ => "checksum",
    });
    seen.insert("index trailer".into(), trailer.unwrap_or("(no index)").into());
    // `core.untrackedCache` (and `feature.manyFiles`): git adds an empty untracked cache.
    let untracked = index.windows(4).position(|w| w == b"UNTR").and_then(|at| {
        let size = u32::from_be_bytes(index.get(at + 4..at + 8)?.try_into().ok()?) as usize;
        index.get(at + 8..at + 8 + size).map(esc)
    });
    seen.insert("index untracked cache".into(), untracked.unwrap_or("(none)".into()));
    for (what, value) in index_extensions(&index) {
        seen.insert(what, value);
    }
    seen.insert(
        "admin folder name".into(),
        admin.file_name().map(|n| esc(n.as_bytes())).unwrap_or_default(),
    );
    seen.extend(modes(env, &worktree, &admin));
    let mut admin_files = BTreeMap::new();
    walk(&admin, Path::new(""), &mut admin_files);
    for (k, v) in admin_files {
        // The index is compared entry by entry above; ORIG_HEAD and the reflog come from
        // the `git reset --hard` that `git worktree add` runs inside, not from the contract.
        // Folders are not compared: git 2.4x makes an empty `refs/` that no reader needs.
        if k == "index" || k == "ORIG_HEAD" || k.starts_with("logs/") || v.starts_with("folder ") {
            continue;
        }
        seen.insert(format!("admin {k}"), v);
    }

    for line in git_text(env, &worktree, &["status", "--porcelain=v2", "--branch"]).lines() {
        seen.insert(format!("status {}", status_key(line)), line.to_owned());
    }
    seen.insert(
        "git fsck --strict".into(),
        git_text(env, &worktree, &["fsck", "--strict", "--no-progress"]),
    );
    let tip = git_text(env, &worktree, &["rev-parse", BRANCH]);
    seen.insert("branch tip".into(), tip.trim().to_owned());
    seen.insert(
        "branch config".into(),
        git_text(env, &worktree, &["config", "--get-regexp", r"^branch\.session/x\."]),
    );
    let canonical = worktree.canonicalize().unwrap_or(worktree.clone());
    let list = git_text(env, &worktree, &["worktree", "list", "--porcelain"]);
    let mine = format!("worktree {}", canonical.display());
    let entry = list
        .split("\n\n")
        .find(|block| block.lines().next() == Some(mine.as_str()))
        .unwrap_or("(not listed)");
    seen.insert("git worktree list".into(), entry.trim().replace('\n', "; "));
    normalize(seen, side)
}

/// The index's extensions but the cache tree (`TREE`, which git's `reset --hard` adds and
/// flowloom does not): their signatures in order, the offset table (`IEOT`) whole, and the
/// end-of-entries extension (`EOIE`) as its offset and whether its hash is right.
fn index_extensions(index: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(body) = index.len().checked_sub(20).map(|end| &index[..end]) else {
        return out;
    };
    let word = |at: usize| {
        body.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let Some(end) = body.windows(4).rposition(|w| w == b"EOIE").and_then(|at| {
        // The end-of-entries extension says where the extensions start; without one, they are
        // found from the end: none of git's rows writes others without it and the cache tree.
        word(at + 8).filter(|_| body.len() == at + 8 + 24)
    }) else {
        out.push(("index extensions".into(), "(no EOIE: not listed)".into()));
        return out;
    };
    let mut at = end;
    let mut names = Vec::new();
    let mut headers = Vec::new();
    while at + 8 <= body.len() {
        let Some(size) = word(at + 4) else { break };
        let signature = String::from_utf8_lossy(&body[at..at + 4]).into_owned();
        match signature.as_str() {
            "IEOT" => out.push((
                "index IEOT".into(),
                esc(body.get(at + 8..at + 8 + size).unwrap_or_default()),
            )),
            "EOIE" => {
                let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
                hasher.update(&headers);
                let digest = hasher
                    .try_finalize()
                    .map(|id| id.as_bytes().to_vec())
                    .unwrap_or_default();
                let valid = body.get(at + 12..at + 32) == Some(&digest[..]);
                out.push((
                    "index EOIE".into(),
                    format!("offset {end}, hash {}", if valid { "right" } else { "wrong" }),
                ));
            }
            _ => {}
        }
        if signature != "TREE" {
            names.push(signature);
        }
        headers.extend_from_slice(&body[at..at + 8]);
        at += 8 + size;
    }
    out.push(("index extensions".into(), names.join(" ")));
    out
}

/// `cmd` run by `sh` under `umask` (the same program, arguments, folder and environment).
fn under_umask(cmd: Command, umask: Option<&str>) -> Command {
    let Some(umask) = umask else { return cmd };
    let mut sh = Command::new("sh");
    sh.env_clear()
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$@\""))
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            sh.env(key, value);
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    sh
}

/// The modes (`stat %a`) of what `git worktree add` makes or adjusts outside the files
/// compared one by one: the worktree folder and the folder it is in, and in the common dir
/// `worktrees/`, the administration folder, its `HEAD`, index and reflog, the branch's ref
/// and reflog and the folders made for them, `info/exclude`.
fn modes(env: &TestEnv, worktree: &Path, admin: &Path) -> BTreeMap<String, String> {
    let common = PathBuf::from(
        git_text(
            env,
            worktree,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        )
        .trim(),
    );
    let mut paths = vec![
        ("worktree folder".to_owned(), worktree.to_path_buf()),
        (
            "worktree's parent folder".to_owned(),
            worktree.parent().unwrap_or(worktree).to_path_buf(),
        ),
        ("admin folder".to_owned(), admin.to_path_buf()),
    ];
    for rel in [
        "worktrees",
        "refs/heads/session",
        "refs/heads/session/x",
        "logs/refs/heads/session",
        "logs/refs/heads/session/x",
        "info",
        "info/exclude",
        "packed-refs",
        "config",
    ] {
        paths.push((format!("common {rel}"), common.join(rel)));
    }
    for rel in ["HEAD", "index", "logs", "logs/HEAD"] {
        paths.push((format!("admin {rel}"), admin.join(rel)));
    }
    paths
        .into_iter()
        .map(|(what, path)| {
            let mode = std::fs::symlink_metadata(&path).map_or("(absent)".to_owned(), |m| {
                format!("{:04o}", m.permissions().mode() & 0o7777)
            });
            (format!("mode of {what}"), mode)
        })
        .collect()
}

/// A porcelain v2 line's key: the header's name, or the entry's path.
fn status_key(line: &str) -> String {
    let fields = match line.chars().next() {
        Some('#') => return line.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" "),
        Some('1') => 9,
        Some('2') => 10,
        Some('u') => 11,
        _ => 2,
    };
    line.splitn(fields, ' ').last().unwrap_or(line).to_owned()
}

fn normalize(seen: BTreeMap<String, String>, side: &Path) -> BTreeMap<String, String> {
    let mut forms = vec![side.display().to_string()];
    if let Ok(real) = side.canonicalize() {
        forms.push(real.display().to_string());
    }
    seen.into_iter()
        .map(|(k, mut v)| {
            for form in &forms {
                v = v.replace(form.as_str(), "<side>");
            }
            (k, v)
        })
        .collect()
}

/// Every entry below `root/rel`: type, mode and bytes (escaped), or a symlink's target.
pub(crate) fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(dir) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    let mut names: Vec<_> = dir.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        if rel == Path::new("sessions").join(SESSION) {
            continue;
        }
        let path = root.join(&rel);
        let key = esc(rel.as_os_str().as_bytes());
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        let mode = meta.permissions().mode() & 0o7777;
        let value = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).expect("readlink");
            format!("symlink -> {}", esc(target.as_os_str().as_bytes()))
        } else if meta.is_dir() {
            walk(root, &rel, out);
            format!("folder {mode:04o}")
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).expect("read");
            format!("file {mode:04o} \"{}\"", esc(&bytes))
        } else {
            format!("special file {:?}", meta.file_type())
        };
        out.insert(key, value);
    }
}

fn esc(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

thread_local! {
    /// Variables of the row under way that every git run of it gets (see `run_case`).
    static OBSERVED_WITH: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// git with the hermetic environment of [`TestEnv`] (copied from its flowloom command, so
/// the two never drift apart), started in `dir`.
fn git(env: &TestEnv, dir: &Path) -> Command {
    let template = env.flowloom_in(dir);
    let mut cmd = Command::new("git");
    cmd.env_clear().current_dir(dir);
    for (key, value) in template.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    OBSERVED_WITH.with(|with| cmd.envs(with.borrow().iter().map(|(k, v)| (k, v))));
    cmd
}

/// git's stdout, or what went wrong as the value (a broken worktree is a difference to
/// show, not a reason to stop).
fn git_text(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let out: Output = git(env, dir).args(args).output().expect("run git");
    if out.status.success() || (out.stdout.is_empty() && out.status.code() == Some(1)) {
        // `git config --get-regexp` exits 1 when nothing matches.
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }
}

fn git_version() -> (u32, u32) {
    let out = Command::new("git").arg("--version").output().expect("git --version");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text
        .split_whitespace()
        .nth(2)
        .unwrap_or("0.0")
        .split('.')
        .map(|n| n.parse().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

// ---- set-ups ---------------------------------------------------------------------------

pub(crate) fn side(env: &TestEnv) -> PathBuf {
    env.repo.parent().expect("side folder").to_path_buf()
}

/// `git init` of `<side>/<name>` on `branch`, with `extra` options.
pub(crate) fn init(env: &TestEnv, name: &str, branch: &str, extra: &[&str]) {
    let mut args = vec!["init", "-q", "-b", branch];
    args.extend_from_slice(extra);
    args.push(name);
    env.git_in(&side(env), &args);
}

/// The files every row starts from.
pub(crate) fn seed(env: &TestEnv) {
    env.write("README.md", "hello\n");
    env.write("src/lib.rs", "pub fn f() {}\n");
}

pub(crate) fn write_bytes(env: &TestEnv, rel: &[u8], bytes: &[u8]) {
    let path = env.repo.join(OsStr::from_bytes(rel));
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, bytes).expect("write");
}

pub(crate) fn chmod(env: &TestEnv, rel: &str, mode: u32) {
    std::fs::set_permissions(env.path(rel), std::fs::Permissions::from_mode(mode)).expect("chmod");
}

pub(crate) fn config(env: &TestEnv, key: &str, value: &str) {
    env.git(&["config", key, value]);
}

pub(crate) fn plain(env: &TestEnv) {
    init(env, "repo", "main", &[]);
    seed(env);
    env.commit("initial");
}

fn executable(env: &TestEnv) {
    plain(env);
    env.write("bin/run.sh", "#!/bin/sh\necho run\n");
    chmod(env, "bin/run.sh", 0o755);
    env.commit("tools");
}

fn file_mode_false(env: &TestEnv) {
    executable(env);
    config(env, "core.fileMode", "false");
}

fn symlinks(env: &TestEnv) {
    plain(env);
    std::os::unix::fs::symlink("README.md", env.path("link")).expect("symlink");
    std::os::unix::fs::symlink("src", env.path("src-link")).expect("symlink");
    std::os::unix::fs::symlink("../nowhere", env.path("src/dangling")).expect("symlink");
    env.commit("links");
}

fn symlinks_false(env: &TestEnv) {
    symlinks(env);
    config(env, "core.symlinks", "false");
}

/// Text with LF, text with CRLF, and a binary file with both, for the eol rows.
fn eol_files(env: &TestEnv) {
    env.write("notes.txt", "one\ntwo\n");
    env.write("mixed.txt", "dos\r\nunix\n");
    write_bytes(env, b"blob.bin", b"\0bin\r\nary\n");
}

fn autocrlf(env: &TestEnv) {
    plain(env);
    eol_files(env);
    env.commit("text");
    config(env, "core.autocrlf", "true");
}

fn eol_attributes(env: &TestEnv) {
    plain(env);
    env.write(
        ".gitattributes",
        "* text=auto\n*.crlf text eol=crlf\n*.lf text eol=lf\n*.bin binary\n",
    );
    eol_files(env);
    env.write("a.crlf", "one\ntwo\n");
    env.write("b.lf", "one\r\ntwo\r\n");
    env.commit("eol");
}

fn text_auto_core_eol(env: &TestEnv) {
    plain(env);
    env.write(".gitattributes", "* text=auto\n");
    eol_files(env);
    env.commit("eol");
    config(env, "core.eol", "crlf");
}

fn info_attributes(env: &TestEnv) {
    plain(env);
    eol_files(env);
    env.commit("text");
    env.write(".git/info/attributes", "*.txt text eol=crlf\n");
}

fn smudge_filter(env: &TestEnv) {
    plain(env);
    config(env, "filter.upper.clean", "tr A-Z a-z");
    config(env, "filter.upper.smudge", "tr a-z A-Z");
    env.write(".gitattributes", "*.up filter=upper\n");
    env.write("shout.up", "Hello World\n");
    env.commit("filter");
}

/// A long-running filter (git's `filter.<driver>.process` protocol, pkt-lines): smudge
/// upper-cases, clean lower-cases.
const PROCESS_FILTER: &str = r#"
use strict; use warnings;
binmode STDIN; binmode STDOUT; $| = 1;
sub rd { my $n = read(STDIN, my $len, 4); return undef unless $n;
  return '' if $len eq '0000'; my $size = hex($len) - 4; my $buf = '';
  while (length($buf) < $size) { read(STDIN, $buf, $size - length($buf), length($buf)) or die "short"; }
  return $buf; }
sub txt { my $l = rd(); $l =~ s/\n\z// if defined $l; return $l; }
sub wr { my $d = shift; printf STDOUT "%04x", length($d) + 4; print STDOUT $d; }
sub fl { print STDOUT "0000"; }
txt() eq "git-filter-client" or die "client"; txt() eq "version=2" or die "version";
defined(rd()) or die "flush";
wr("git-filter-server\n"); wr("version=2\n"); fl();
while (1) { my $l = rd(); last if !defined($l) || $l eq ''; }
wr("capability=clean\n"); wr("capability=smudge\n"); fl();
while (defined(my $cmd = txt())) {
  while (1) { my $l = rd(); die "eof" unless defined $l; last if $l eq ''; }
  my $data = '';
  while (1) { my $p = rd(); die "eof" unless defined $p; last if $p eq ''; $data .= $p; }
  $data = $cmd eq "command=smudge" ? uc($data) : lc($data);
  wr("status=success\n"); fl();
  for (my $i = 0; $i < length($data); $i += 65516) { wr(substr($data, $i, 65516)); }
  fl(); fl();
}
"#;

fn process_filter(env: &TestEnv) {
    plain(env);
    let script = side(env).join("upper-filter.pl");
    std::fs::write(&script, PROCESS_FILTER).expect("filter script");
    config(env, "filter.upper.process", &format!("perl '{}'", script.display()));
    config(env, "filter.upper.required", "true");
    env.write(".gitattributes", "*.up filter=upper\n");
    env.write("shout.up", "Hello World\n");
    env.write("deep/more.up", "Second File\n");
    env.commit("filter");
}

fn latin1_encoding(env: &TestEnv) {
    plain(env);
    env.write(".gitattributes", "*.latin text working-tree-encoding=ISO-8859-1\n");
    write_bytes(env, b"cafe.latin", b"caf\xe9\nna\xefve\n");
    env.commit("latin-1");
}

fn utf16_encoding(env: &TestEnv) {
    plain(env);
    env.write(".gitattributes", "*.u16 text working-tree-encoding=UTF-16LE\n");
    let bytes: Vec<u8> = "h\u{e9}llo\nworld\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    write_bytes(env, b"wide.u16", &bytes);
    env.commit("utf-16");
}

/// Files in `encoding` (UTF-8 text converted by iconv, as a user's editor would save them)
/// committed under the attribute `pattern`.
fn wide_files(env: &TestEnv, attributes: &str, files: &[(&str, &str)]) {
    env.write(".gitattributes", attributes);
    for (name, encoding) in files {
        let out = Command::new("iconv")
            .args(["-f", "UTF-8", "-t", encoding])
            .stdin(std::fs::File::open(env.path("README.md")).expect("README"))
            .output()
            .expect("iconv");
        assert!(out.status.success(), "iconv to {encoding}");
        write_bytes(env, name.as_bytes(), &out.stdout);
    }
}

fn wide_encodings(env: &TestEnv) {
    plain(env);
    // A blob that is not UTF-8 (committed before the attribute): git cannot convert it and
    // checks it out as it is.
    write_bytes(env, b"latin.u16", b"caf\xe9\n");
    env.commit("not utf-8");
    env.git(&["update-index", "--assume-unchanged", "latin.u16"]);
    env.write("README.md", "h\u{e9}llo \u{1F600}\nworld\n");
    wide_files(
        env,
        "*.u16 text working-tree-encoding=UTF-16\n*.be16 text working-tree-encoding=utf-16be\n\
         *.u32 text working-tree-encoding=UTF-32\n*.le32 text working-tree-encoding=UTF32LE\n\
         *.be32 text working-tree-encoding=UTF-32BE\n",
        &[
            ("a.u16", "UTF-16"),
            ("deep/b.be16", "UTF-16BE"),
            ("c.u32", "UTF-32"),
            ("d.le32", "UTF-32LE"),
            ("e.be32", "UTF-32BE"),
        ],
    );
    write_bytes(env, b"empty.u16", b"");
    env.commit("wide encodings");
}

fn wide_encodings_crlf(env: &TestEnv) {
    plain(env);
    env.write("README.md", "one\ntwo\n");
    wide_files(
        env,
        "*.u16 text eol=crlf working-tree-encoding=UTF-16\n*.u32 text working-tree-encoding=UTF-32\n",
        &[("a.u16", "UTF-16"), ("b.u32", "UTF-32")],
    );
    env.commit("wide with crlf");
    config(env, "core.autocrlf", "true");
}

/// A smudge filter that writes a byte before what it gets: git encodes first, so the byte
/// comes before the byte order mark, and the rest is the encoded text.
fn wide_encodings_smudged(env: &TestEnv) {
    plain(env);
    env.write("README.md", "one\ntwo\n");
    wide_files(
        env,
        "*.u16 text working-tree-encoding=UTF-16 filter=mark\n*.be32 text working-tree-encoding=UTF-32BE filter=mark\n",
        &[("a.u16", "UTF-16"), ("b.be32", "UTF-32BE")],
    );
    env.commit("wide, filtered");
    config(env, "filter.mark.smudge", "printf X; cat");
}

fn ident(env: &TestEnv) {
    plain(env);
    env.write(".gitattributes", "*.c ident\n");
    env.write("main.c", "/* $Id$ */\nint main(void) { return 0; }\n");
    env.commit("ident");
}

const MARKER_HOOK: &str = "#!/bin/sh\necho \"$@\" > post-checkout-ran\n";

fn post_checkout_hook(env: &TestEnv) {
    plain(env);
    env.write(".git/hooks/post-checkout", MARKER_HOOK);
    chmod(env, ".git/hooks/post-checkout", 0o755);
}

/// Writes the hook's `GIT_*` variables (but `GIT_EXEC_PATH`, which git sets to its own
/// install), its folder and its arguments to `hook-env` where it runs.
pub const ENV_HOOK: &str =
    "#!/bin/sh\n{ env | grep '^GIT_' | grep -v '^GIT_EXEC_PATH=' | sort; pwd; echo \"$@\"; } > hook-env\n";

fn env_hook(env: &TestEnv) {
    plain(env);
    env.write(".git/hooks/post-checkout", ENV_HOOK);
    chmod(env, ".git/hooks/post-checkout", 0o755);
}

fn git_dir_env_hook(env: &TestEnv) {
    git_dir_env(env);
    let hook = side(env).join("store.git/hooks/post-checkout");
    std::fs::write(&hook, ENV_HOOK).expect("hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn hooks_path(env: &TestEnv) {
    plain(env);
    // A tracked hooks folder (relative paths are taken from the worktree the hook runs in).
    env.write(".githooks/post-checkout", MARKER_HOOK);
    chmod(env, ".githooks/post-checkout", 0o755);
    env.commit("hooks");
    config(env, "core.hooksPath", ".githooks");
}

fn hooks_path_elsewhere(env: &TestEnv) {
    post_checkout_hook(env);
    config(env, "core.hooksPath", "no-hooks-here");
}

fn sparse_cone(env: &TestEnv) {
    plain(env);
    env.write("docs/guide.md", "guide\n");
    env.write("docs/deep/more.md", "more\n");
    env.write("src/deep/mod.rs", "mod m;\n");
    env.commit("more folders");
    env.git(&["sparse-checkout", "set", "--cone", "src"]);
}

fn worktree_config(env: &TestEnv) {
    plain(env);
    eol_files(env);
    env.commit("text");
    config(env, "extensions.worktreeConfig", "true");
    env.git(&["config", "--worktree", "core.autocrlf", "true"]);
}

fn index_v4(env: &TestEnv) {
    plain(env);
    config(env, "index.version", "4");
}

fn relative_paths(env: &TestEnv) {
    plain(env);
    config(env, "worktree.useRelativePaths", "true");
}

fn many_files(env: &TestEnv) {
    plain(env);
    config(env, "feature.manyFiles", "true");
}

fn skip_hash(env: &TestEnv) {
    plain(env);
    config(env, "index.skipHash", "true");
}

fn skip_hash_v4(env: &TestEnv) {
    skip_hash(env);
    config(env, "index.version", "4");
}

fn untracked_cache_true(env: &TestEnv) {
    plain(env);
    config(env, "core.untrackedCache", "true");
}

fn untracked_cache_all(env: &TestEnv) {
    untracked_cache_true(env);
    config(env, "status.showUntrackedFiles", "all");
}

fn untracked_cache_keep(env: &TestEnv) {
    plain(env);
    config(env, "core.untrackedCache", "keep");
}

fn many_files_keep(env: &TestEnv) {
    many_files(env);
    config(env, "core.untrackedCache", "keep");
}

fn many_files_checksum(env: &TestEnv) {
    many_files(env);
    config(env, "index.skipHash", "false");
}

fn shared(env: &TestEnv, value: &str) {
    plain(env);
    config(env, "core.sharedRepository", value);
}

fn shared_group(env: &TestEnv) {
    shared(env, "group");
}

fn shared_all(env: &TestEnv) {
    shared(env, "all");
}

fn shared_0640(env: &TestEnv) {
    shared(env, "0640");
}

fn shared_0600(env: &TestEnv) {
    shared(env, "0600");
}

fn shared_umask(env: &TestEnv) {
    shared(env, "umask");
}

/// `worktrees/` made before the setting (by a worktree since removed): git leaves its mode.
fn shared_true_existing(env: &TestEnv) {
    executable(env);
    env.git(&["worktree", "add", "-q", "../gone"]);
    env.git(&["worktree", "remove", "../gone"]);
    std::fs::create_dir_all(env.path(".git/worktrees")).expect("worktrees folder");
    config(env, "core.sharedRepository", "true");
}

fn odd_names(env: &TestEnv) {
    plain(env);
    let names: &[&[u8]] = &[
        b"with space.txt",
        b"tab\there.txt",
        b"new\nline.txt",
        b"quote\"d.txt",
        b"back\\slash.txt",
        b"-leading-dash.txt",
        b"star*.txt",
        "\u{fc}n\u{ef}c\u{f6}d\u{e9}/\u{e9}t\u{e9}.txt".as_bytes(),
        b"latin1-\xe9t\xe9.txt",
        b"bad-utf8-\xff\xfe.txt",
    ];
    for name in names {
        write_bytes(env, name, b"odd\n");
    }
    env.commit("odd names");
}

fn submodule(env: &TestEnv) {
    init(env, "library", "main", &[]);
    let library = side(env).join("library");
    std::fs::write(library.join("lib.txt"), "library\n").expect("write");
    env.git_in(&library, &["add", "-A"]);
    env.git_in(&library, &["commit", "-q", "-m", "library"]);
    plain(env);
    let url = library.display().to_string();
    env.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        &url,
        "vendor/library",
    ]);
    env.commit("submodule");
}

/// Moves `<side>/repo` to `<side>/origin`, to clone it back as `repo`.
pub(crate) fn as_origin(env: &TestEnv) -> PathBuf {
    let origin = side(env).join("origin");
    std::fs::rename(&env.repo, &origin).expect("rename");
    origin
}

fn shared_clone(env: &TestEnv) {
    plain(env);
    as_origin(env);
    env.git_in(&side(env), &["clone", "-q", "--shared", "origin", "repo"]);
}

/// `clone --shared` with the alternates path made relative (to the objects folder, as git
/// reads it).
fn relative_alternates(env: &TestEnv) {
    shared_clone(env);
    std::fs::write(
        env.path(".git/objects/info/alternates"),
        "../../../origin/.git/objects\n",
    )
    .expect("alternates");
}

/// A clone whose objects are all in `<side>/origin` and found through the environment only:
/// its refs copied, no objects, no alternates file.
fn alternates_from_environment(env: &TestEnv) {
    shared_clone(env);
    std::fs::remove_file(env.path(".git/objects/info/alternates")).expect("alternates");
}

fn separate_git_dir(env: &TestEnv) {
    let store = side(env).join("repo.git");
    init(
        env,
        "repo",
        "main",
        &["--separate-git-dir", &store.display().to_string()],
    );
    seed(env);
    env.commit("initial");
}

fn shallow_clone(env: &TestEnv) {
    plain(env);
    env.write("CHANGELOG.md", "two\n");
    env.commit("second");
    env.write("CHANGELOG.md", "three\n");
    env.commit("third");
    let origin = as_origin(env);
    let url = format!("file://{}", origin.display());
    env.git_in(&side(env), &["clone", "-q", "--depth", "1", &url, "repo"]);
}

fn sha256(env: &TestEnv) {
    init(env, "repo", "main", &["--object-format=sha256"]);
    seed(env);
    env.commit("initial");
}

fn reftable(env: &TestEnv) {
    init(env, "repo", "main", &["--ref-format=reftable"]);
    seed(env);
    env.commit("initial");
}

/// The main worktree `repo/` has no `.git`: its repository is `<side>/store.git`, found
/// only through the environment.
fn git_dir_env(env: &TestEnv) {
    plain(env);
    std::fs::rename(env.repo.join(".git"), side(env).join("store.git")).expect("rename");
}

fn master(env: &TestEnv) {
    init(env, "repo", "master", &[]);
    seed(env);
    env.commit("initial");
}

/// Written last: the set-up's own commits are made without it.
fn global_autocrlf(env: &TestEnv) {
    plain(env);
    eol_files(env);
    env.commit("text");
    std::fs::write(env.home().join(".gitconfig"), "[core]\n\tautocrlf = true\n").expect("global config");
}

/// `includeIf "gitdir:<pattern>"` pulling in `included.config` (written beside the repository)
/// with `text`.
fn include_if(env: &TestEnv, condition: &str, text: &str) {
    let included = side(env).join("included.config");
    std::fs::write(&included, text).expect("included config");
    let key = format!("includeIf.{condition}.path");
    env.git(&["config", &key, &included.display().to_string()]);
}

/// git evaluates `gitdir:` against the repository's git dir, which for a linked worktree is
/// `.git/worktrees/<id>`: the main worktree's exact condition does not apply there.
fn include_if_main_gitdir(env: &TestEnv) {
    plain(env);
    eol_files(env);
    env.commit("text");
    let gitdir = format!("gitdir:{}", env.repo.join(".git").display());
    include_if(env, &gitdir, "[core]\n\tautocrlf = true\n");
}

fn include_if_linked_gitdir(env: &TestEnv) {
    plain(env);
    eol_files(env);
    env.commit("text");
    let gitdir = format!("gitdir:{}/", env.repo.join(".git/worktrees").display());
    include_if(env, &gitdir, "[core]\n\tautocrlf = true\n");
}

fn include_if_main_gitdir_filter(env: &TestEnv) {
    plain(env);
    env.write(".gitattributes", "*.up filter=upper\n");
    env.write("shout.up", "Hello World\n");
    env.commit("filter");
    let gitdir = format!("gitdir/i:{}", env.repo.join(".git").display());
    include_if(
        env,
        &gitdir,
        "[filter \"upper\"]\n\tclean = tr A-Z a-z\n\tsmudge = tr a-z A-Z\n",
    );
}

/// The same condition where gix registers the worktree itself (it copies `config.worktree`).
fn include_if_main_gitdir_worktree_config(env: &TestEnv) {
    include_if_main_gitdir(env);
    config(env, "extensions.worktreeConfig", "true");
    env.git(&["config", "--worktree", "core.fileMode", "true"]);
}

/// A clone of `<side>/origin`: `main` tracks `origin/main`.
pub(crate) fn cloned(env: &TestEnv) {
    plain(env);
    as_origin(env);
    env.git_in(&side(env), &["clone", "-q", "origin", "repo"]);
}

/// A clone shared with the group whose `config` is 0640: git keeps a config file's mode
/// when it rewrites it.
fn cloned_shared(env: &TestEnv) {
    cloned(env);
    config(env, "core.sharedRepository", "group");
    chmod(env, ".git/config", 0o640);
}

/// Folders on the way to what the session makes, made before (under the test's umask):
/// git leaves their modes and adjusts only what it makes inside them.
fn shared_group_leading_folders(env: &TestEnv) {
    shared_group(env);
    env.git(&["branch", "session/y"]);
    std::fs::create_dir_all(env.path("sessions")).expect("sessions folder");
}

fn cloned_always(env: &TestEnv) {
    cloned(env);
    config(env, "branch.autoSetupMerge", "always");
}

fn cloned_false(env: &TestEnv) {
    cloned(env);
    config(env, "branch.autoSetupMerge", "false");
}

fn cloned_inherit(env: &TestEnv) {
    cloned(env);
    config(env, "branch.autoSetupMerge", "inherit");
}

fn cloned_simple(env: &TestEnv) {
    cloned(env);
    config(env, "branch.autoSetupMerge", "simple");
}

/// Two commits mention `findme`: an older one on `main` and the youngest on `other`, a
/// branch `HEAD` does not reach.
fn message_search(env: &TestEnv) {
    plain(env);
    env.write("a.txt", "a\n");
    env.commit("findme on main");
    env.git(&["checkout", "-q", "-b", "other"]);
    env.write("b.txt", "b\n");
    env.git(&["add", "-A"]);
    let out = git(env, &env.repo)
        .env("GIT_COMMITTER_DATE", "2026-01-02T00:00:00Z")
        .args(["commit", "-q", "-m", "findme on other"])
        .output()
        .expect("git commit");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    env.git(&["checkout", "-q", "main"]);
    env.write("c.txt", "c\n");
    env.commit("unrelated");
}

/// Messages that only a regular expression tells apart: a literal search for the patterns
/// of the rows finds nothing (or, negated, the youngest commit), git's finds an older one.
fn message_regex(env: &TestEnv) {
    plain(env);
    env.write("a.txt", "a\n");
    env.commit("fix 12\n\nin the parser");
    env.write("b.txt", "b\n");
    env.commit("fixes 7 in the lexer");
    env.git(&["checkout", "-q", "-b", "other"]);
    env.write("c.txt", "c\n");
    env.git(&["add", "-A"]);
    let out = git(env, &env.repo)
        .env("GIT_COMMITTER_DATE", "2026-01-02T00:00:00Z")
        .args(["commit", "-q", "-m", "unrelated"])
        .output()
        .expect("git commit");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    env.git(&["checkout", "-q", "main"]);
}

/// Appends `text` to the repository's own `config` (git refuses to edit a repository whose
/// format it refuses, so the file is written directly).
pub(crate) fn append_config(env: &TestEnv, text: &str) {
    let path = env.repo.join(".git/config");
    let mut config = std::fs::read_to_string(&path).expect("config");
    config.push_str(text);
    std::fs::write(path, config).expect("config");
}

fn unknown_extension(env: &TestEnv) {
    plain(env);
    config(env, "core.repositoryFormatVersion", "1");
    append_config(env, "[extensions]\n\tsomethingNew = true\n");
}

fn unknown_extension_v0(env: &TestEnv) {
    plain(env);
    append_config(env, "[extensions]\n\tsomethingNew = true\n");
}

fn v1_extension_in_v0(env: &TestEnv) {
    plain(env);
    append_config(env, "[extensions]\n\tobjectFormat = sha1\n");
}

fn format_version_2(env: &TestEnv) {
    plain(env);
    config(env, "core.repositoryFormatVersion", "2");
}

fn known_extensions(env: &TestEnv) {
    plain(env);
    eol_files(env);
    env.commit("text");
    config(env, "core.repositoryFormatVersion", "1");
    config(env, "extensions.worktreeConfig", "true");
    config(env, "extensions.objectFormat", "sha1");
    config(env, "extensions.preciousObjects", "true");
    config(env, "extensions.noop", "true");
    env.git(&["config", "--worktree", "core.autocrlf", "true"]);
}

/// `<side>/repo` in the bare-clone layout: the repository in `repo/.bare`, `repo/.git` a
/// gitfile to it, `main` checked out beside (`repo/main`); `repo/` is no worktree and holds
/// the manifest.
fn bare_clone_layout(env: &TestEnv) {
    plain(env);
    let origin = as_origin(env);
    std::fs::create_dir(&env.repo).expect("mkdir");
    env.git_in(
        &side(env),
        &["clone", "-q", "--bare", &origin.display().to_string(), "repo/.bare"],
    );
    std::fs::write(env.path(".git"), "gitdir: ./.bare\n").expect("gitfile");
    env.git(&["worktree", "add", "-q", "main", "main"]);
}

fn bare_clone_layout_worktree_config(env: &TestEnv) {
    bare_clone_layout(env);
    config(env, "extensions.worktreeConfig", "true");
    env.git(&["config", "--unset", "core.bare"]);
    env.git(&["config", "--worktree", "core.bare", "true"]);
}
