//! Command-line front ends of the provisioner verbs: one module per executable
//! with its arguments (clap) and its output, and the one entry wrapper they all
//! run through (parsing, failures and exit codes). The logic is in the library.

mod build_progress;
pub mod commands;
pub mod entry;
pub mod front;
pub mod library;
pub mod manual;
pub mod metrics_front;
