fn main() -> std::process::ExitCode { blockhost_cli::commands::build_template::main() }
