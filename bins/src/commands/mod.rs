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
pub mod resume;
pub mod start;
pub mod status;
pub mod stop;
pub mod throttle;
pub mod update_gecos;
