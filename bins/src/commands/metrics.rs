//! blockhost-vm-metrics

use crate::entry::{open_session, Executable, Outcome};
use crate::manual::{Manual, STANDARD_EXIT};
use clap::Parser;
use provisioner::host::pyjson;
use provisioner::verbs::exit_code::SUCCESS;
use provisioner::verbs::metrics;
use serde_json::{Map, Value};

pub const PROG: &str = "blockhost-vm-metrics";

/// Print a VM's resource usage as one JSON object (or all VMs' keyed by name with --all).
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Every VM in one call: one JSON object keyed by VM name
    #[arg(long)]
    pub all: bool,
}

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: STANDARD_EXIT,
        examples: &[("blockhost-vm-metrics --all", "the usage object of every VM, for the watchdog")],
    };

    fn run(self) -> Outcome {
        let session = open_session(false, false)?;
        let json = match self.name {
            Some(name) => {
                let measured = metrics::one(&session, &name)?;
                if measured.shareable && metrics::shared_refresh_due(&session.paths) {
                    crate::metrics_front::spawn_refresh();
                }
                measured.metrics.to_json()
            }
            None => Value::Object(metrics::all(&session)?.into_iter().map(|(n, m)| (n, m.to_json())).collect::<Map<_, _>>()),
        };
        crate::out!("{}", pyjson::dumps(&json));
        Ok(SUCCESS)
    }
}
