//! blockhost-vm-reconcile

use crate::entry::{open_session, Executable, Outcome};
use crate::manual::Manual;
use clap::Parser;
use provisioner::verbs::exit_code::{FAILURE, SUCCESS};
use provisioner::verbs::reconcile::{self, Bounds, Power, VmOutcome, VmResult};
use std::time::Duration;

pub const PROG: &str = "blockhost-vm-reconcile";

/// Make every VM match the VM database after a host restart: active VMs running with their host
/// route, suspended and destroyed VMs not running. One line per VM; exit 1 if any VM failed.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// Seconds each VM may take (a graceful stop is forced off when it is up)
    #[arg(long, default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub vm_timeout: u64,
    /// Seconds the whole run may take; VMs not reached by then are reported as failed
    #[arg(long, default_value_t = 300, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Use the mock backend and its own database
    #[arg(long)]
    pub mock: bool,
}

/// `<name>: <database status>, <what was found or done>`.
pub fn line(outcome: &VmOutcome) -> String {
    let what = match &outcome.result {
        VmResult::Failed(error) => format!("FAILED: {error}"),
        VmResult::Reconciled { power, restored } => {
            let power = match power {
                Power::WasRunning => "running",
                Power::Started => "started",
                Power::WasOff => "off",
                Power::Absent => "not present",
                Power::Stopped => "stopped",
                Power::ForcedOff => "forced off",
            };
            if !restored.is_empty() {
                format!("{power}, restored {}", restored.join(", "))
            } else if outcome.changed() {
                power.to_string()
            } else {
                format!("{power}, nothing to do")
            }
        }
    };
    format!("{}: {}, {what}", outcome.name, outcome.status)
}

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: &[
            ("0", "every VM is in the state its record says"),
            ("1", "a VM could not be brought there (its line says why)"),
            ("2", "the command line could not be parsed"),
        ],
        examples: &[("blockhost-vm-reconcile --vm-timeout 30", "at boot: active VMs running with their routes, the others off")],
    };

    /// Exit 1 when a VM failed; its line says why.
    fn run(self) -> Outcome {
        let bounds = Bounds { per_vm: Duration::from_secs(self.vm_timeout), overall: Duration::from_secs(self.timeout) };
        let outcomes = reconcile::run(&open_session(self.mock, false)?, bounds)?;
        for outcome in &outcomes {
            crate::out!("{}", line(outcome));
        }
        let failed = outcomes.iter().filter(|o| o.failed()).count();
        let changed = outcomes.iter().filter(|o| o.changed()).count();
        crate::out!(
            "Reconciled {} VM(s): {changed} changed, {} unchanged, {failed} failed",
            outcomes.len(),
            outcomes.len() - changed - failed
        );
        Ok(if failed == 0 { SUCCESS } else { FAILURE })
    }
}
