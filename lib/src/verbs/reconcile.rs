//! `reconcile`: after a host restart, makes the backend match the VM database.
//! For every VM the database says is active: the VM runs (started if it is
//! not) and what a restart loses is re-applied (`Backend::restore_host_state`:
//! the IPv6 host route); for every VM it says is suspended or destroyed: the
//! VM is not running (suspended: a graceful stop, forced off when the guest
//! does not stop in time; destroyed: forced off). The database is only read.
//!
//! Idempotent: a second run finds nothing to do and says so. Bounded: each VM
//! gets `per_vm` (a graceful stop waits at most what is left of it); once
//! `overall` has passed, the VMs not yet reached are reported as failed, not
//! touched. One VM failing never stops the others.

use super::{power, Session, VerbError};
use crate::host::names;
use crate::provider::PowerState;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub per_vm: Duration,
    pub overall: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Self { per_vm: Duration::from_secs(60), overall: Duration::from_secs(300) }
    }
}

/// What reconciling one VM did to its power state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// Wanted running and running.
    WasRunning,
    Started,
    /// Wanted off and off.
    WasOff,
    /// Wanted off, and the backend has no such VM.
    Absent,
    Stopped,
    /// The guest did not stop within the bound.
    ForcedOff,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmResult {
    /// The VM is as the database says; `restored` lists the host state re-applied.
    Reconciled { power: Power, restored: Vec<String> },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmOutcome {
    pub name: String,
    /// The database's status: `active`, `suspended` or `destroyed`.
    pub status: String,
    pub result: VmResult,
}

impl VmOutcome {
    /// Whether this run changed anything of the VM.
    pub fn changed(&self) -> bool {
        match &self.result {
            VmResult::Reconciled { power, restored } => {
                !restored.is_empty() || matches!(power, Power::Started | Power::Stopped | Power::ForcedOff)
            }
            VmResult::Failed(_) => false,
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self.result, VmResult::Failed(_))
    }
}

/// Reconciles every VM of the database, in its order.
pub fn run(session: &Session, bounds: Bounds) -> Result<Vec<VmOutcome>, VerbError> {
    let doc = session.db.read()?;
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for record in doc.vms().filter(|r| names::vm_name(r.name).is_ok()) {
        let (name, status) = (record.name.to_string(), record.status().to_string());
        session.interrupt.check()?;
        let result = if started.elapsed() >= bounds.overall {
            VmResult::Failed(format!("not reached: the overall bound of {} s had passed", bounds.overall.as_secs()))
        } else {
            let deadline = Instant::now() + bounds.per_vm.min(bounds.overall.saturating_sub(started.elapsed()));
            reconcile_one(session, &name, &status, deadline).unwrap_or_else(|e| VmResult::Failed(e.to_string()))
        };
        outcomes.push(VmOutcome { name, status, result });
    }
    Ok(outcomes)
}

fn reconcile_one(session: &Session, name: &str, status: &str, deadline: Instant) -> Result<VmResult, VerbError> {
    let vm = session.backend.get(name)?;
    let power = match (status, vm.map(|v| v.state)) {
        ("active", None) => {
            return Ok(VmResult::Failed(
                "not present in the backend (blockhost-vm-gc --execute destroys its record)".to_string(),
            ))
        }
        ("active", Some(PowerState::Running)) => Power::WasRunning,
        ("active", Some(state)) if state.is_off() => {
            session.backend.start(name)?;
            Power::Started
        }
        ("active", Some(state)) => {
            return Ok(VmResult::Failed(format!("is {}, neither running nor off; left as it is", state.metrics_word())))
        }
        ("suspended" | "destroyed", None) => Power::Absent,
        ("suspended" | "destroyed", Some(state)) if state.is_off() => Power::WasOff,
        ("suspended", Some(_)) => stop_within(session, name, deadline)?,
        ("destroyed", Some(_)) => {
            session.backend.power_off(name)?;
            Power::ForcedOff
        }
        (other, _) => return Ok(VmResult::Failed(format!("unknown database status {other:?}; left as it is"))),
    };
    let restored = if status == "active" { session.backend.restore_host_state(name)? } else { Vec::new() };
    Ok(VmResult::Reconciled { power, restored })
}

/// A graceful stop within what is left of the VM's bound (a second is kept
/// for forcing it off), then forced off.
fn stop_within(session: &Session, name: &str, deadline: Instant) -> Result<Power, VerbError> {
    let wait = deadline.saturating_duration_since(Instant::now()).saturating_sub(Duration::from_secs(1));
    match power::stop(session, name, wait) {
        Ok(_) => Ok(Power::Stopped),
        Err(VerbError::Failed(_)) => {
            session.backend.power_off(name)?;
            Ok(Power::ForcedOff)
        }
        Err(e) => Err(e),
    }
}
