fn main() -> std::process::ExitCode { blockhost_cli::commands::start::main() }
