//! `flowloom shell-init SHELL`: a shell function so that `flowloom cd ID` changes the
//! shell's directory (a program cannot change its parent's), and every other use of
//! `flowloom` runs the program; then the completion script of `flowloom completions SHELL`,
//! which offers the manifest's session ids after `cd` too.

use std::process::ExitCode;

use crate::cli::{InitShell, ShellInitArgs};
use crate::render::output::Printer;

const POSIX: &str = r#"# flowloom: `flowloom cd ID` changes directory to a session's worktree; `flowloom new`
# leaves the shell in the new session, and `flowloom rm` run inside a session in the main
# worktree.
# Add to your shell's startup file: eval "$(flowloom shell-init bash)"
flowloom() {
    # The command is the first word that is neither a global option nor its value
    # (`flowloom -C DIR new x` as well as `flowloom new x`).
    local __flowloom_cmd= __flowloom_at=0 __flowloom_skip=0 __flowloom_arg
    for __flowloom_arg in "$@"; do
        __flowloom_at=$((__flowloom_at + 1))
        if [ "$__flowloom_skip" = 1 ]; then
            __flowloom_skip=0
            continue
        fi
        case "$__flowloom_arg" in
        -C | --manifest | --color | --lock-timeout) __flowloom_skip=1 ;;
        -*) ;;
        *)
            __flowloom_cmd=$__flowloom_arg
            break
            ;;
        esac
    done
    case "$__flowloom_cmd" in
    cd)
        local __flowloom_dir __flowloom_i=0
        # The same words with `cd` replaced by `path` (global options kept).
        for __flowloom_arg in "$@"; do
            shift
            __flowloom_i=$((__flowloom_i + 1))
            if [ "$__flowloom_i" = "$__flowloom_at" ]; then
                set -- "$@" path
            else
                set -- "$@" "$__flowloom_arg"
            fi
        done
        __flowloom_dir="$(command flowloom "$@")" || return $?
        cd -- "$__flowloom_dir" || return $?
        # Variables that named where the shell was would send git there from the session.
        unset @PLACES@
        ;;
    new | rm | merge)
        local __flowloom_file __flowloom_status __flowloom_dir
        __flowloom_file="$(mktemp "${TMPDIR:-/tmp}/flowloom-cd.XXXXXX")" || return 1
        FLOWLOOM_CD_FILE="$__flowloom_file" FLOWLOOM_SHELL_PID=$$ command flowloom "$@"
        __flowloom_status=$?
        __flowloom_dir="$(cat -- "$__flowloom_file")"
        command rm -f -- "$__flowloom_file"
        if [ -n "$__flowloom_dir" ]; then
            cd -- "$__flowloom_dir" || return $?
            unset @PLACES@
        fi
        return $__flowloom_status
        ;;
    *)
        command flowloom "$@"
        ;;
    esac
}
"#;

const FISH: &str = r#"# flowloom: `flowloom cd ID` changes directory to a session's worktree; `flowloom new`
# leaves the shell in the new session, and `flowloom rm` run inside a session in the main
# worktree.
# Add to config.fish: flowloom shell-init fish | source
function flowloom
    # The command is the first word that is neither a global option nor its value.
    set -l cmd
    set -l at 0
    set -l skip 0
    for i in (seq (count $argv))
        if test $skip = 1
            set skip 0
            continue
        end
        switch $argv[$i]
            case -C --manifest --color --lock-timeout
                set skip 1
            case '-*'
            case '*'
                set cmd $argv[$i]
                set at $i
                break
        end
    end
    if test "$cmd" = cd
        set -l words $argv
        set words[$at] path
        set -l dir (command flowloom $words); or return $status
        cd -- $dir; or return $status
        # Variables that named where the shell was would send git there from the session.
        set -e @PLACES@
        return 0
    else if contains -- "$cmd" new rm merge
        set -l file (mktemp (set -q TMPDIR; and echo $TMPDIR; or echo /tmp)/flowloom-cd.XXXXXX); or return 1
        FLOWLOOM_CD_FILE=$file FLOWLOOM_SHELL_PID=$fish_pid command flowloom $argv
        set -l code $status
        set -l dir (cat -- $file)
        command rm -f -- $file
        if test -n "$dir"
            cd -- $dir; or return $status
            set -e @PLACES@
        end
        return $code
    else
        command flowloom $argv
    end
end
"#;

/// Through the shell function, the folder the shell moves to once flowloom is done: the
/// function passes a file in `FLOWLOOM_CD_FILE` (a program cannot change its parent's
/// directory). Only an existing regular file is written; without the function, nothing.
pub(super) fn change_directory(dir: &std::path::Path) {
    let Some(file) = std::env::var_os("FLOWLOOM_CD_FILE").map(std::path::PathBuf::from) else {
        return;
    };
    if !std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_file()) {
        return;
    }
    let _ = std::fs::write(&file, dir.as_os_str().as_encoded_bytes());
}

pub fn run(args: &ShellInitArgs, printer: &Printer) -> ExitCode {
    let (function, shell) = match args.shell {
        InitShell::Bash => (POSIX, clap_complete::Shell::Bash),
        InitShell::Zsh => (POSIX, clap_complete::Shell::Zsh),
        InitShell::Fish => (FISH, clap_complete::Shell::Fish),
    };
    // After a move into a session (or back), git's variables that named where the shell
    // was are dropped (SPEC §11.4): git there works on the folder it is in.
    let function = function.replace("@PLACES@", &crate::apply::setup::CALLER_GIT_PLACES.join(" "));
    // Then the completions, session ids included (`flowloom cd <TAB>`).
    printer.out(&format!("{function}{}", super::completions::script(shell)));
    ExitCode::SUCCESS
}
