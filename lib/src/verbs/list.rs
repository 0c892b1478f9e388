//! `list`: every VM of the database in insertion order, with its live status
//! from one backend listing.

use super::{Session, VerbError};
use super::status::{DESTROYED, UNKNOWN};
use crate::provider::ProviderError;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub status: String,
    pub ip: String,
    /// `created_at` cut to `YYYY-MM-DD`.
    pub created: String,
}

impl Row {
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "status": self.status, "ip": self.ip, "created": self.created})
    }
}

/// The rows, and why the statuses of live records are `unknown` when the
/// backend could not list its VMs.
#[derive(Debug)]
pub struct Listing {
    pub rows: Vec<Row>,
    pub unknown_because: Option<ProviderError>,
}

pub fn run(session: &Session) -> Result<Listing, VerbError> {
    let doc = session.db.read()?;
    let (live, unknown_because): (Option<HashMap<String, &'static str>>, _) = match session.backend.list() {
        Ok(vms) => (Some(vms.into_iter().map(|vm| (vm.name, vm.state.status_word())).collect()), None),
        Err(e) => (None, Some(e)),
    };
    let rows = doc
        .vms()
        .map(|record| {
            let status = if record.status() == DESTROYED {
                DESTROYED
            } else {
                match &live {
                    Some(live) => live.get(record.name).copied().unwrap_or(DESTROYED),
                    None => UNKNOWN,
                }
            };
            Row {
                name: record.name.to_string(),
                status: status.to_string(),
                ip: record.ip().to_string(),
                created: record.created_at().chars().take(10).collect(),
            }
        })
        .collect();
    Ok(Listing { rows, unknown_because })
}
