fn main() -> std::process::ExitCode { blockhost_cli::commands::destroy::main() }
