//! Undoing creates whose process died: their journal entry in the database names
//! the VM and its reserved addresses; the VM (with its staged bootstrap) is
//! terminated and the entry dropped, releasing the addresses. A name that also
//! has a committed record belongs to that record: its VM and addresses are kept
//! and only the entry goes.

use super::{Progress, Session, VerbError};
use crate::host::vmdb::PendingCreate;

/// Undoes one create: terminate (unless a record owns the name), then drop the
/// journal entry if it is still the same one.
pub fn undo(session: &Session, entry: &PendingCreate) -> Result<(), VerbError> {
    if session.db.read()?.vm(&entry.name).is_none() {
        session.backend.terminate(&entry.name)?;
    }
    session.db.update(|doc| {
        if doc.pending(&entry.name).is_some_and(|p| p.owner == entry.owner) {
            doc.finish_pending(&entry.name, false);
        }
        Ok(())
    })?;
    Ok(())
}

/// Undoes every create whose owner is gone. Returns how many were undone;
/// failures are reported and left for the next run.
pub fn stale_creates(session: &Session, progress: Progress) -> Result<usize, VerbError> {
    let stale: Vec<PendingCreate> =
        session.db.read()?.pending_all().into_iter().filter(|p| !p.owner.is_alive()).collect();
    let mut undone = 0;
    for entry in stale {
        progress(&format!("Undoing the interrupted create of {} (PID {})", entry.name, entry.owner.pid));
        match undo(session, &entry) {
            Ok(()) => undone += 1,
            Err(e) => progress(&format!("warning: could not undo the create of {}: {e}", entry.name)),
        }
    }
    Ok(undone)
}
