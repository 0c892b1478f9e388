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

use crate::entry::{command, Executable};
use crate::manual::Manual;

/// Every executable's name and clap definition, in the order of the manifest's
/// verbs; what man pages, shell completions and interface checks are made
/// from, and its manual's sections.
pub fn all() -> Vec<(&'static str, clap::Command, Manual)> {
    vec![
        (create::PROG, command::<create::Args>(), create::Args::MANUAL),
        (destroy::PROG, command::<destroy::Args>(), destroy::Args::MANUAL),
        (start::PROG, command::<start::Args>(), start::Args::MANUAL),
        (stop::PROG, command::<stop::Args>(), stop::Args::MANUAL),
        (kill::PROG, command::<kill::Args>(), kill::Args::MANUAL),
        (status::PROG, command::<status::Args>(), status::Args::MANUAL),
        (list::PROG, command::<list::Args>(), list::Args::MANUAL),
        (metrics::PROG, command::<metrics::Args>(), metrics::Args::MANUAL),
        (throttle::PROG, command::<throttle::Args>(), throttle::Args::MANUAL),
        (gc::PROG, command::<gc::Args>(), gc::Args::MANUAL),
        (resume::PROG, command::<resume::Args>(), resume::Args::MANUAL),
        (update_gecos::PROG, command::<update_gecos::Args>(), update_gecos::Args::MANUAL),
        (guest_exec::PROG, command::<guest_exec::Args>(), guest_exec::Args::MANUAL),
        (build_template::PROG, command::<build_template::Args>(), build_template::Args::MANUAL),
        (detect::PROG, command::<detect::Args>(), detect::Args::MANUAL),
    ]
}
