//! `start`, `stop` (graceful, bounded wait) and `kill` (immediate). Each is a
//! no-op success when the VM is already in the target state.

use super::wait_notice::WaitNotice;
use super::{Progress, Session, VerbError};
use crate::host::names;
use crate::provider::{PowerState, VmInfo};
use std::time::Duration;

pub const DEFAULT_STOP_TIMEOUT_SECS: u64 = 45;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    AlreadyThere,
}

fn existing(session: &Session, name: &str) -> Result<VmInfo, VerbError> {
    names::vm_name(name)?;
    session.backend.get(name)?.ok_or_else(|| VerbError::NotFound(name.to_string()))
}

pub fn start(session: &Session, name: &str) -> Result<Outcome, VerbError> {
    if existing(session, name)?.state == PowerState::Running {
        return Ok(Outcome::AlreadyThere);
    }
    session.backend.start(name)?;
    Ok(Outcome::Done)
}

pub fn kill(session: &Session, name: &str) -> Result<Outcome, VerbError> {
    if existing(session, name)?.state.is_off() {
        return Ok(Outcome::AlreadyThere);
    }
    session.backend.power_off(name)?;
    Ok(Outcome::Done)
}

/// ACPI shutdown, then waits until the VM is off. Never forces it off: when the
/// bound passes the VM is still running and that is reported.
pub fn stop(session: &Session, name: &str, timeout: Duration) -> Result<Outcome, VerbError> {
    stop_telling(session, name, timeout, &mut |_| {})
}

/// `stop`, its wait told on `progress` every `Session::notice_every`.
pub fn stop_telling(session: &Session, name: &str, timeout: Duration, progress: Progress) -> Result<Outcome, VerbError> {
    if existing(session, name)?.state.is_off() {
        return Ok(Outcome::AlreadyThere);
    }
    session.backend.shutdown(name)?;
    let mut notice = WaitNotice::new(format!("{name} to shut down"), timeout, session.notice_every);
    loop {
        match session.backend.get(name)? {
            None => return Ok(Outcome::Done),
            Some(vm) if vm.state.is_off() => return Ok(Outcome::Done),
            Some(_) if notice.elapsed() >= timeout => {
                return Err(VerbError::Failed(format!(
                    "VM {name} did not shut down within {} s and is still running (blockhost-vm-kill forces it off)",
                    timeout.as_secs()
                )))
            }
            Some(_) => {
                notice.tick(progress);
                std::thread::sleep(Duration::from_millis(100).min(timeout.saturating_sub(notice.elapsed())));
            }
        }
    }
}
