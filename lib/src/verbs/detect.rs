//! `detect`: whether the active backend's platform is usable on this host.

use super::Session;

pub fn run(session: &Session) -> bool {
    session.backend.detect()
}
