//! `flowloom shell-init SHELL`: a shell function so that `flowloom cd ID` changes the
//! shell's directory (a program cannot change its parent's), and every other use of
//! `flowloom` runs the program.

use std::process::ExitCode;

use crate::cli::{InitShell, ShellInitArgs};
use crate::output::Printer;

const POSIX: &str = r#"# flowloom: `flowloom cd ID` changes directory to a session's worktree.
# Add to your shell's startup file: eval "$(flowloom shell-init bash)"
flowloom() {
    if [ "$1" = "cd" ]; then
        shift
        local __flowloom_dir
        __flowloom_dir="$(command flowloom path "$@")" || return $?
        cd -- "$__flowloom_dir"
    else
        command flowloom "$@"
    fi
}
"#;

const FISH: &str = r#"# flowloom: `flowloom cd ID` changes directory to a session's worktree.
# Add to config.fish: flowloom shell-init fish | source
function flowloom
    if test (count $argv) -ge 1; and test "$argv[1]" = cd
        set -l dir (command flowloom path $argv[2..-1]); or return $status
        cd -- $dir
    else
        command flowloom $argv
    end
end
"#;

pub fn run(args: &ShellInitArgs, printer: &Printer) -> ExitCode {
    printer.out(match args.shell {
        InitShell::Bash | InitShell::Zsh => POSIX,
        InitShell::Fish => FISH,
    });
    ExitCode::SUCCESS
}
