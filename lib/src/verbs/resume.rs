//! `resume`: starts a suspended VM and marks it active. The expiry never moves
//! backwards: without `--extend-days` a future expiry is kept (the engine
//! extends first, then resumes); a past one becomes now + `default_expiry_days`.
//! With `--extend-days N` it becomes max(expiry, now) + N.

use super::{power, Session, VerbError};
use crate::host::names;
use crate::host::timestamp::Timestamp;
use chrono::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub old_expiry: Option<Timestamp>,
    pub new_expiry: Timestamp,
}

pub fn plan(session: &Session, name: &str, extend_days: Option<u32>, now: Timestamp) -> Result<Plan, VerbError> {
    names::vm_name(name)?;
    if extend_days == Some(0) {
        return Err(VerbError::Usage("--extend-days must be at least 1".into()));
    }
    let doc = session.db.read()?;
    let record = doc.vm(name).ok_or_else(|| VerbError::NotFound(name.to_string()))?;
    if record.status() != "suspended" {
        return Err(VerbError::Failed(format!("VM {name} is not suspended (status: {})", record.status())));
    }
    let old_expiry = record.time("expires_at");
    let new_expiry = match (extend_days, old_expiry) {
        (Some(days), old) => old.map_or(now, |o| o.max(now)) + Duration::days(i64::from(days)),
        (None, Some(old)) if old > now => old,
        (None, _) => now + Duration::days(i64::from(session.config.default_expiry_days)),
    };
    Ok(Plan { name: name.to_string(), old_expiry, new_expiry })
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
