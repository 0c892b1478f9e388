//! `status`: exactly one of `active`, `suspended`, `destroyed`, `unknown`.
//! `destroyed` only when it is known (a destroyed record, or the backend
//! answered that the VM does not exist); any doubt is `unknown`.

use super::Session;
use crate::host::names;

pub const ACTIVE: &str = "active";
pub const DESTROYED: &str = "destroyed";
pub const UNKNOWN: &str = "unknown";

pub fn run(session: &Session, name: &str) -> &'static str {
    if names::vm_name(name).is_err() {
        return UNKNOWN;
    }
    let recorded_destroyed = session.db.read().ok().and_then(|doc| doc.vm(name).map(|r| r.status() == DESTROYED));
    if recorded_destroyed == Some(true) {
        return DESTROYED;
    }
    match session.provider.get(name) {
        Ok(Some(vm)) => vm.state.status_word(),
        Ok(None) => DESTROYED,
        Err(_) => UNKNOWN,
    }
}
