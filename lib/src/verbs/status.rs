//! `status`: exactly one of `active`, `suspended`, `destroyed`, `unknown`.
//! `destroyed` only when it is known (a destroyed record, or the backend
//! answered that the VM does not exist); any doubt is `unknown`.

use super::Session;
use crate::host::names;

pub const ACTIVE: &str = "active";
pub const DESTROYED: &str = "destroyed";
pub const UNKNOWN: &str = "unknown";

/// The status word, and why it is `unknown` when something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub word: &'static str,
    pub reason: Option<String>,
}

impl Status {
    pub fn unknown(reason: impl Into<String>) -> Self {
        Self { word: UNKNOWN, reason: Some(reason.into()) }
    }

    fn known(word: &'static str) -> Self {
        Self { word, reason: None }
    }
}

pub fn run(session: &Session, name: &str) -> Status {
    if let Err(e) = names::vm_name(name) {
        return Status::unknown(e.to_string());
    }
    // A database that cannot be read does not hide what the backend knows.
    if let Ok(doc) = session.db.read() {
        if doc.vm(name).is_some_and(|r| r.status() == DESTROYED) {
            return Status::known(DESTROYED);
        }
    }
    match session.backend.get(name) {
        Ok(Some(vm)) if vm.state.status_word() == UNKNOWN => Status::unknown(format!("VM {name} is in state {:?}", vm.state)),
        Ok(Some(vm)) => Status::known(vm.state.status_word()),
        Ok(None) => Status::known(DESTROYED),
        Err(e) => Status::unknown(e.to_string()),
    }
}
