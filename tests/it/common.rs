//! A hermetic test environment: temp repositories built with the real git CLI (the
//! oracle), and the flowloom binary run with a cleared environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;

/// A temp folder with `home/` (an empty HOME and global config) and `repo/`.
pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
}

/// Environment shared by git and flowloom: no system or user config, fixed identities
/// and dates, so commit ids and snapshots are stable.
pub fn hermetic(cmd: &mut Command, home: &Path) {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
        .env("GIT_AUTHOR_NAME", "flowloom test suite")
        .env("GIT_AUTHOR_EMAIL", "tests@flowloom.invalid")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "flowloom test suite")
        .env("GIT_COMMITTER_EMAIL", "tests@flowloom.invalid")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env("TZ", "UTC")
        .env("LANG", "C")
        .env("NO_COLOR", "1");
}

impl TestEnv {
    /// A repository on `main` with two commits, a `develop` branch one commit ahead, an
    /// executable file and a symlink.
    pub fn new() -> TestEnv {
        let tmp = tempfile::Builder::new()
            .prefix("flowloom-it")
            .tempdir()
            .expect("tempdir");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        std::fs::write(home.join(".gitconfig"), "").expect("global config");
        let repo = tmp.path().join("repo");
        let env = TestEnv { tmp, repo };
        env.git_in(env.tmp.path(), &["init", "-q", "-b", "main", "repo"]);
        env.write("README.md", "hello\n");
        env.write("src/lib.rs", "pub fn f() {}\n");
        env.commit("initial");
        env.write("bin/run.sh", "#!/bin/sh\necho run\n");
        set_executable(&env.repo.join("bin/run.sh"));
        std::os::unix::fs::symlink("README.md", env.repo.join("link")).expect("symlink");
        env.commit("tools");
        env.git(&["branch", "develop"]);
        env.git(&["checkout", "-q", "develop"]);
        env.write("DEVELOP.md", "develop\n");
        env.commit("develop work");
        env.git(&["checkout", "-q", "main"]);
        env
    }

    /// Only the temp folder and HOME, no repository (for commands that need none).
    pub fn empty() -> TestEnv {
        let tmp = tempfile::Builder::new()
            .prefix("flowloom-it")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("home")).expect("home");
        std::fs::write(tmp.path().join("home/.gitconfig"), "").expect("global config");
        let repo = tmp.path().join("repo");
        TestEnv { tmp, repo }
    }

    pub fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.repo.join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.repo.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    pub fn manifest(&self, text: &str) {
        self.write("flowloom.toml", text);
    }

    pub fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// Write `file` in the worktree at `dir` and commit it there.
    pub fn commit_file(&self, dir: &Path, file: &str, text: &str, message: &str) {
        std::fs::write(dir.join(file), text).expect("write");
        self.git_in(dir, &["add", file]);
        self.git_in(dir, &["commit", "-q", "-m", message]);
    }

    /// Run git in the repository; panics with its stderr when it fails.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.repo, args)
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_output(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    pub fn git_output(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new("git");
        hermetic(&mut cmd, &self.home());
        cmd.current_dir(dir).args(args).output().expect("run git")
    }

    /// The flowloom binary, hermetic, started in the repository.
    pub fn flowloom(&self) -> Command {
        self.flowloom_in(&self.repo)
    }

    pub fn flowloom_in(&self, dir: &Path) -> Command {
        let mut cmd = Command::cargo_bin("flowloom").expect("binary");
        hermetic(&mut cmd, &self.home());
        cmd.current_dir(dir);
        cmd
    }

    /// Run flowloom, returning (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        run(self.flowloom().args(args))
    }

    /// `apply --yes`, asserting success.
    pub fn apply(&self) -> String {
        let (code, out, err) = self.run(&["apply", "--yes"]);
        assert_eq!(code, 0, "apply failed:\n{out}\n{err}");
        out
    }

    /// `git worktree list --porcelain` as (path relative to the repo, branch) pairs of the
    /// linked worktrees.
    pub fn worktrees(&self) -> Vec<(String, String)> {
        let text = self.git(&["worktree", "list", "--porcelain"]);
        let repo = self.repo.canonicalize().expect("canonical");
        let mut out = Vec::new();
        for block in text.split("\n\n").skip(1) {
            let mut path = String::new();
            let mut branch = String::new();
            for line in block.lines() {
                if let Some(p) = line.strip_prefix("worktree ") {
                    path = Path::new(p)
                        .strip_prefix(&repo)
                        .map(|r| r.display().to_string())
                        .unwrap_or(p.into());
                }
                if let Some(b) = line.strip_prefix("branch refs/heads/") {
                    branch = b.to_owned();
                }
            }
            if !path.is_empty() {
                out.push((path, branch));
            }
        }
        out
    }

    /// Asserts git finds nothing wrong with the repository.
    pub fn fsck(&self) {
        self.git(&["fsck", "--strict", "--no-progress"]);
    }

    pub fn branches(&self) -> Vec<String> {
        self.git(&["for-each-ref", "--format=%(refname:short)", "refs/heads/"])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run flowloom");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf8 stdout"),
        String::from_utf8(out.stderr).expect("utf8 stderr"),
    )
}

pub fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path).expect("stat").permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod");
}

/// Run `cmd` as [`run`] does, but fail the test if it has not ended after `secs` seconds
/// (it is killed first): for inputs that once made flowloom hang.
pub fn run_timeout(cmd: &mut Command, secs: u64) -> (i32, String, String) {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flowloom");
    // Read both pipes meanwhile: a child blocked on a full pipe is not a hang of its own.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("flowloom did not finish within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        out.join().expect("stdout"),
        err.join().expect("stderr"),
    )
}

/// The manifest of [`orphan`]: two sessions.
pub const TWO: &str = "[sessions.keep]\n[sessions.gone]\n";
/// Where [`orphan`]'s orphan lives.
pub const GONE: &str = "sessions/shell-instance-gone";

/// Two sessions applied, then `gone` dropped from the manifest: an orphan.
pub fn orphan() -> TestEnv {
    let env = TestEnv::new();
    env.manifest(TWO);
    env.apply();
    env.manifest("[sessions.keep]\n");
    env
}
