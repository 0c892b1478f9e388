//! `detect`: whether the active backend's platform is usable on this host, and why not.

use super::{Session, VerbError};

pub fn run(session: &Session) -> Result<(), VerbError> {
    Ok(session.backend.detect()?)
}
