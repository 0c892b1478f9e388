fn main() -> std::process::ExitCode { blockhost_cli::entry::main::<blockhost_cli::commands::build_template::Args>() }
