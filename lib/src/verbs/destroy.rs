//! `destroy`: idempotent. Removes the VM and everything it had in the backend,
//! its host files, its addresses; the record stays, marked destroyed.

use super::{recover, Session, VerbError};
use crate::host::vmdb::DbError;
use crate::host::{metrics_cache, names, timestamp};

pub fn run(session: &Session, name: &str) -> Result<(), VerbError> {
    names::vm_name(name)?;
    if let Some(pending) = session.db.read()?.pending(name) {
        if pending.owner.is_alive() {
            return Err(DbError::CreateInProgress(name.to_string(), pending.owner.pid).into());
        }
        recover::undo(session, &pending)?;
    }
    session.backend.terminate(name)?;
    metrics_cache::remove(&session.metrics_dir(), name);
    session.db.update(|doc| doc.settle_destroyed(name, timestamp::now()))?;
    Ok(())
}
