fn main() -> std::process::ExitCode { blockhost_cli::commands::update_gecos::main() }
