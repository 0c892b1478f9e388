fn main() -> std::process::ExitCode { blockhost_cli::front::main::<blockhost_cli::commands::destroy::Args>() }
