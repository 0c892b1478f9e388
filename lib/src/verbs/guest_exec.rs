//! `guest-exec`: runs one `/bin/sh -c` command in the guest through its agent.

use super::{Session, VerbError};
use crate::host::names;
use crate::provider::ExecOutput;
use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(session: &Session, name: &str, command: &str, timeout: Duration) -> Result<ExecOutput, VerbError> {
    names::vm_name(name)?;
    if command.trim().is_empty() {
        return Err(VerbError::Usage("no command given".into()));
    }
    if !session.backend.capabilities().guest_agent {
        return Err(VerbError::Failed(format!("the {} backend has no guest agent", session.backend.name())));
    }
    if session.backend.get(name)?.is_none() {
        return Err(VerbError::NotFound(name.to_string()));
    }
    Ok(session.backend.guest_exec(name, command, timeout)?)
}
