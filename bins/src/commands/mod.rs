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

use crate::entry::{command, run, Executable};
use crate::manual::Manual;
use std::ffi::OsString;

/// Runs an executable's command line, returning its exit code.
pub type Runner = fn(Vec<OsString>) -> u8;

/// The run of the executable named `prog`, for the library's entry point.
pub fn runner(prog: &str) -> Option<Runner> {
    let run: Runner = match prog {
        create::PROG => |argv| run::<create::Args>(argv),
        destroy::PROG => |argv| run::<destroy::Args>(argv),
        start::PROG => |argv| run::<start::Args>(argv),
        stop::PROG => |argv| run::<stop::Args>(argv),
        kill::PROG => |argv| run::<kill::Args>(argv),
        status::PROG => |argv| run::<status::Args>(argv),
        list::PROG => |argv| run::<list::Args>(argv),
        metrics::PROG => |argv| run::<metrics::Args>(argv),
        throttle::PROG => |argv| run::<throttle::Args>(argv),
        gc::PROG => |argv| run::<gc::Args>(argv),
        resume::PROG => |argv| run::<resume::Args>(argv),
        update_gecos::PROG => |argv| run::<update_gecos::Args>(argv),
        guest_exec::PROG => |argv| run::<guest_exec::Args>(argv),
        build_template::PROG => |argv| run::<build_template::Args>(argv),
        detect::PROG => |argv| run::<detect::Args>(argv),
        _ => return None,
    };
    Some(run)
}

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
