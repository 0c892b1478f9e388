//! `blockhost-vm-gc --reconcile`: every VM brought in line with the VM database
//! after a host restart (run at boot by blockhost-reconcile.service).

use crate::entry::{open_session, Outcome};
use provisioner::verbs::exit_code::{FAILURE, SUCCESS};
use provisioner::verbs::reconcile::{self, Bounds, Power, VmOutcome, VmResult};

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

/// One line per VM and a summary; exit 1 when a VM failed (its line says why).
pub fn run(bounds: Bounds, mock: bool) -> Outcome {
    let outcomes = reconcile::run(&open_session(mock, false)?, bounds)?;
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
