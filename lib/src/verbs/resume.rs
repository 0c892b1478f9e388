//! `resume`: starts a suspended VM and marks it active. The expiry never moves
//! backwards: without `--extend-days` a future expiry is kept (the engine
//! extends first, then resumes); a past one becomes now + `default_expiry_days`.
//! With `--extend-days N` it becomes max(expiry, now) + N.
//!
//! A record that is `active` while its domain is off (stopped with `stop` or
//! `kill`, crashed, or not autostarted after a reboot) is started the same way:
//! the database and the power state agree again.

use super::{power, Session, VerbError};
use crate::host::names;
use crate::host::timestamp::Timestamp;
use chrono::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub old_expiry: Option<Timestamp>,
    pub new_expiry: Timestamp,
    /// The record is already `active`; its domain is off and is started.
    pub active_but_off: bool,
}

pub fn plan(session: &Session, name: &str, extend_days: Option<u32>, now: Timestamp) -> Result<Plan, VerbError> {
    names::vm_name(name)?;
    if extend_days == Some(0) {
        return Err(VerbError::Usage("--extend-days must be at least 1".into()));
    }
    let doc = session.db.read()?;
    let record = doc.vm(name).ok_or_else(|| VerbError::NotFound(name.to_string()))?;
    let active_but_off = record.status() == "active" && session.backend.get(name)?.is_some_and(|vm| vm.state.is_off());
    if record.status() != "suspended" && !active_but_off {
        return Err(VerbError::Failed(format!("VM {name} is not suspended (status: {})", record.status())));
    }
    let old_expiry = record.time("expires_at");
    let new_expiry = match (extend_days, old_expiry) {
        (Some(days), old) => old.map_or(now, |o| o.max(now)) + Duration::days(i64::from(days)),
        (None, Some(old)) if old > now => old,
        (None, _) => now + Duration::days(i64::from(session.config.default_expiry_days)),
    };
    Ok(Plan { name: name.to_string(), old_expiry, new_expiry, active_but_off })
}

pub fn run(session: &Session, plan: &Plan) -> Result<(), VerbError> {
    if session.backend.get(&plan.name)?.is_none() {
        return Err(VerbError::Failed(format!("VM {} no longer exists in the backend", plan.name)));
    }
    power::start(session, &plan.name)?;
    let keep = plan.old_expiry == Some(plan.new_expiry);
    session.db.update(|doc| doc.mark_active(&plan.name, (!keep).then_some(plan.new_expiry)))?;
    Ok(())
}
