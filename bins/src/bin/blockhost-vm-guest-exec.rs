fn main() -> std::process::ExitCode { blockhost_cli::commands::guest_exec::main() }
