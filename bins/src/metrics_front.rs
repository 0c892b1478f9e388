//! `blockhost-vm-metrics`'s front: a `<vm>` the shared sample may answer for
//! is answered from it, with no library loaded, no connection and no
//! database; anything else runs through the library as every executable
//! does. It also starts the background refresh of a sample getting old, as
//! this same executable with [`REFRESH_ENV`] set.

use crate::commands::metrics::Args;
use crate::entry;
use crate::front;
use crate::library::{METRICS_REFRESH_SYMBOL, RUN_SYMBOL};
use provisioner::host::paths::HostPaths;
use provisioner::verbs::metrics;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

/// Set in the environment of the background process that retakes the sample.
const REFRESH_ENV: &str = "BLOCKHOST_METRICS_REFRESH";

pub fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    if std::env::var_os(REFRESH_ENV).is_some() {
        return match metrics::shared_refresh_lock(&HostPaths::from_env()) {
            Some(_lock) => ExitCode::from(front::call::<Args>(METRICS_REFRESH_SYMBOL, &argv)),
            None => ExitCode::SUCCESS,
        };
    }
    let args = match entry::parse::<Args>(argv.clone()) {
        Ok(args) => args,
        Err(code) => return ExitCode::from(code),
    };
    if let Some(name) = &args.name {
        if let Some(answer) = metrics::shared_answer(&HostPaths::from_env(), name) {
            crate::out!("{}", answer.line);
            if answer.refresh_due {
                spawn_refresh();
            }
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::from(front::call::<Args>(RUN_SYMBOL, &argv))
}

/// Starts this executable in the background to retake the shared sample:
/// detached from the caller's output (a caller that reads to the end must not
/// wait for it) and from its process group. Best effort.
pub fn spawn_refresh() {
    let Ok(exe) = std::env::current_exe() else { return };
    let _ = Command::new(exe)
        .env(REFRESH_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
}
