fn main() -> std::process::ExitCode { blockhost_cli::metrics_front::main() }
