fn main() -> std::process::ExitCode { blockhost_cli::entry::main::<blockhost_cli::commands::update_gecos::Args>() }
