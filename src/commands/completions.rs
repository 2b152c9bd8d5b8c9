//! `flowloom completions <shell>`: the completion script clap generates from `cli.rs`, and
//! for bash, zsh and fish a layer over it that offers the manifest's session ids where one
//! goes (`cd`, `path`, `run`, `rm`, `--target`), asking the hidden `flowloom __complete`.
//! `shell-init` prints the same script after its `flowloom cd` function.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionsArgs};
use crate::render::output::Printer;

pub fn run(args: &CompletionsArgs, printer: &Printer) -> ExitCode {
    printer.out(&script(args.shell));
    ExitCode::SUCCESS
}

/// clap's function, renamed so that the layer can take its name (`_flowloom`), which the
/// script's own `complete -F` / `compdef` lines and zsh's autoloading look for.
const CLAP_FUNCTION: &str = "_flowloom() {";
const CLAP_RENAMED: &str = "_flowloom_static() {";

/// bash: the word being completed and those before it go to `flowloom __complete`; when it
/// says no id goes there, clap's function answers.
const BASH: &str = r#"
# flowloom: session ids where one goes (`flowloom __complete` reads the manifest).
_flowloom() {
    local __flowloom_ids
    if __flowloom_ids="$(command flowloom __complete -- "${COMP_WORDS[@]:0:COMP_CWORD+1}" 2>/dev/null)"; then
        COMPREPLY=()
        local __flowloom_id
        for __flowloom_id in $__flowloom_ids; do
            COMPREPLY+=("$__flowloom_id")
        done
        return 0
    fi
    _flowloom_static "$@"
}
"#;

/// zsh: as bash, with `words` and `CURRENT`; defined before clap's closing lines, which
/// call `_flowloom` when the file is autoloaded from `fpath` and register it otherwise.
const ZSH: &str = r#"
# flowloom: session ids where one goes (`flowloom __complete` reads the manifest).
_flowloom() {
    local __flowloom_out
    if __flowloom_out="$(command flowloom __complete -- "${(@)words[1,CURRENT]}" 2>/dev/null)"; then
        local -a __flowloom_ids
        __flowloom_ids=(${(f)__flowloom_out})
        compadd -a __flowloom_ids
        return 0
    fi
    _flowloom_static "$@"
}

"#;

/// clap's zsh script registers itself with `compdef`, which exists only after `compinit`:
/// without it, `eval "$(flowloom shell-init zsh)"` stays quiet instead of failing.
const ZSH_COMPDEF: &str = "    compdef _flowloom flowloom";
const ZSH_COMPDEF_GUARDED: &str = "    (( $+functions[compdef] )) && compdef _flowloom flowloom";

/// fish: completions add up, so ids are one more `complete` line with its condition.
const FISH: &str = r#"
# flowloom: session ids where one goes (`flowloom __complete` reads the manifest).
function __flowloom_complete
    set -l typed (commandline -opc)
    # Quoted: an empty word being completed is still a word.
    set -l current (commandline -ct)
    command flowloom __complete -- $typed "$current" 2>/dev/null
end
complete -c flowloom -f -n '__flowloom_complete >/dev/null' -a '(__flowloom_complete)'
# An option's value is completed from that option's lines alone.
complete -c flowloom -l target -r -f -n '__flowloom_complete >/dev/null' -a '(__flowloom_complete)'
"#;

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut command = Cli::command();
    let mut bytes = Vec::new();
    clap_complete::generate(shell, &mut command, "flowloom", &mut bytes);
    let clap = String::from_utf8_lossy(&bytes).into_owned();
    match shell {
        Shell::Bash => format!("{}{BASH}", rename(&clap)),
        Shell::Zsh => {
            let renamed = rename(&clap).replace(ZSH_COMPDEF, ZSH_COMPDEF_GUARDED);
            // Before clap's closing `if [ "$funcstack[1]" = "_flowloom" ]` block.
            match renamed.rfind("\nif [ \"$funcstack[1]\"") {
                Some(at) => format!("{}{ZSH}{}", &renamed[..=at], &renamed[at + 1..]),
                None => format!("{renamed}{ZSH}"),
            }
        }
        Shell::Fish => format!("{clap}{FISH}"),
        _ => clap,
    }
}

/// clap's script with its main function renamed (only the definition: the script never
/// calls it by name but through `complete`/`compdef`, which the layer takes over).
fn rename(clap: &str) -> String {
    clap.lines()
        .map(|line| if line == CLAP_FUNCTION { CLAP_RENAMED } else { line })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_layer_takes_clap_s_function_name() {
        for shell in [Shell::Bash, Shell::Zsh] {
            let text = script(shell);
            assert_eq!(text.matches(CLAP_RENAMED).count(), 1, "{shell}");
            assert_eq!(text.matches(CLAP_FUNCTION).count(), 1, "{shell}");
            assert!(text.contains("flowloom __complete --"), "{shell}");
            assert!(
                !text.contains("__complete)"),
                "the hidden command is not offered: {shell}"
            );
        }
        let zsh = script(Shell::Zsh);
        let layer = zsh.find("compadd -a __flowloom_ids").expect("test");
        assert!(layer < zsh.find("if [ \"$funcstack[1]\"").expect("test"));
        assert!(zsh.contains(ZSH_COMPDEF_GUARDED));
        assert!(script(Shell::Fish).contains("(__flowloom_complete)"));
        assert!(!script(Shell::Elvish).contains("__complete --"));
    }
}
