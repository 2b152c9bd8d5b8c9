fn main() -> std::process::ExitCode {
    flowloom::commands::main()
}
