//! One module per executable.

pub mod build_template;
pub mod create;
pub mod destroy;
pub mod detect;
pub mod gc;
pub mod guest_exec;
pub mod kill;
pub mod list;
pub mod metrics;
mod reconcile;
pub mod resume;
pub mod start;
pub mod status;
pub mod stop;
pub mod throttle;
pub mod update_gecos;

use clap::CommandFactory;

/// Every executable's name and clap definition, in the order of the manifest's
/// verbs; what man pages, shell completions and interface checks are made from.
pub fn all() -> Vec<(&'static str, clap::Command)> {
    vec![
        (create::PROG, create::Args::command()),
        (destroy::PROG, destroy::Args::command()),
        (start::PROG, start::Args::command()),
        (stop::PROG, stop::Args::command()),
        (kill::PROG, kill::Args::command()),
        (status::PROG, status::Args::command()),
        (list::PROG, list::Args::command()),
        (metrics::PROG, metrics::Args::command()),
        (throttle::PROG, throttle::Args::command()),
        (gc::PROG, gc::Args::command()),
        (resume::PROG, resume::Args::command()),
        (update_gecos::PROG, update_gecos::Args::command()),
        (guest_exec::PROG, guest_exec::Args::command()),
        (build_template::PROG, build_template::Args::command()),
        (detect::PROG, detect::Args::command()),
    ]
}
