//! Fault knobs: what a real cluster does to a client on a bad day.

use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Default, Clone)]
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
    /// Aims `hang_after_acting`, `server_error` and `failing_tasks` at one
    /// step of a client's work: only requests whose API path contains this
    /// text (`/clone`, `/upload`, `/status/start`) meet them. `None`: every request.
    pub only_path: Option<String>,
}

impl Faults {
    pub(crate) fn aims_at(&self, path: &str) -> bool {
        self.only_path.as_deref().is_none_or(|aim| path.contains(aim))
    }

    /// The knobs a request for `path` meets: without the aimed ones when it is not their target.
    pub(crate) fn for_path(&self, path: &str) -> Faults {
        let mut view = self.clone();
        if !self.aims_at(path) {
            (view.hang_after_acting, view.server_error, view.failing_tasks) = (None, None, None);
        }
        view
    }
}
