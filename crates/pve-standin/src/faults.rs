//! Fault knobs: what a real cluster does to a client on a bad day.

use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Faults {
    /// One shot: the next accepted mutation acts, then the connection stays
    /// silent for this long and is dropped without an answer.
    pub hang_after_acting: Option<Duration>,
    /// One shot: the next request with this method (`GET`, `POST`, ...) is
    /// answered with this 5xx status without acting.
    pub server_error: Option<(&'static str, u16)>,
    /// Every task started while set stops midway with this exit status (and
    /// what it did is undone, as PVE's own cleanup does).
    pub failing_tasks: Option<String>,
    /// Nodes that do not answer: requests for them get 595, listings show them offline.
    pub down_nodes: BTreeSet<String>,
    /// How long every task runs (and holds its VM's lock); zero finishes a
    /// task by the next request.
    pub task_duration: Duration,
}
