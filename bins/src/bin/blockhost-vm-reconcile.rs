fn main() -> std::process::ExitCode { blockhost_cli::entry::main::<blockhost_cli::commands::reconcile::Args>() }
