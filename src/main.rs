fn main() -> std::process::ExitCode {
    flowloom::run::main()
}
