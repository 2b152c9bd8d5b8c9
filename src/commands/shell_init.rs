//! `flowloom shell-init SHELL`: a shell function so that `flowloom cd ID` changes the
//! shell's directory (a program cannot change its parent's), and every other use of
//! `flowloom` runs the program; then the completion script of `flowloom completions SHELL`,
//! which offers the manifest's session ids after `cd` too.

use std::process::ExitCode;

use crate::cli::{InitShell, ShellInitArgs};
use crate::render::output::Printer;

const POSIX: &str = r#"# flowloom: `flowloom cd ID` changes directory to a session's worktree.
# Add to your shell's startup file: eval "$(flowloom shell-init bash)"
flowloom() {
    if [ "$1" = "cd" ]; then
        shift
        local __flowloom_dir
        __flowloom_dir="$(command flowloom path "$@")" || return $?
        cd -- "$__flowloom_dir"
    elif [ "$1" = "merge" ]; then
        # `merge` run inside a session removes it: this shell then moves to the base's
        # worktree, so it does not hold the session (the pid says which shell moves).
        local __flowloom_to __flowloom_rc
        __flowloom_to="$(mktemp)" || return $?
        FLOWLOOM_SHELL_PID=$$ FLOWLOOM_CD_FILE="$__flowloom_to" command flowloom "$@"
        __flowloom_rc=$?
        if [ -s "$__flowloom_to" ]; then
            cd -- "$(cat "$__flowloom_to")"
        fi
        rm -f -- "$__flowloom_to"
        return $__flowloom_rc
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
    else if test (count $argv) -ge 1; and test "$argv[1]" = merge
        set -l to (mktemp); or return $status
        FLOWLOOM_SHELL_PID=$fish_pid FLOWLOOM_CD_FILE=$to command flowloom $argv
        set -l rc $status
        if test -s $to
            cd -- (cat $to)
        end
        rm -f -- $to
        return $rc
    else
        command flowloom $argv
    end
end
"#;

pub fn run(args: &ShellInitArgs, printer: &Printer) -> ExitCode {
    let (function, shell) = match args.shell {
        InitShell::Bash => (POSIX, clap_complete::Shell::Bash),
        InitShell::Zsh => (POSIX, clap_complete::Shell::Zsh),
        InitShell::Fish => (FISH, clap_complete::Shell::Fish),
    };
    // Then the completions, session ids included (`flowloom cd <TAB>`).
    printer.out(&format!("{function}{}", super::completions::script(shell)));
    ExitCode::SUCCESS
}
