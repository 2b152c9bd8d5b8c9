//! `flowloom completions <shell>`: the completion script clap generates from `cli.rs`.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::output::Printer;

pub fn run(args: &CompletionsArgs, printer: &Printer) -> ExitCode {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "flowloom", &mut script);
    printer.out(&String::from_utf8_lossy(&script));
    ExitCode::SUCCESS
}
