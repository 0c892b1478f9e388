fn main() -> std::process::ExitCode { blockhost_cli::front::main::<blockhost_cli::commands::update_gecos::Args>() }
