//! The counters of every VM from one bulk call, shared by the single-VM
//! metrics calls of one watchdog cycle: `<dir>/cycle.json`, taken by the first
//! call and reused by the others for [`FRESH_FOR`].
//!
//! Read and written only under the lock of [`Samples`](super::metrics_cache::Samples),
//! so the calls of a cycle wait for the one sample being taken rather than
//! each taking its own. Like the rest of the metrics cache, it is replaced
//! atomically and not synced; a missing, corrupt or too old file is taken anew.

use crate::host::atomic::write_atomic_unsynced;
use crate::model::RawStats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// How long a sample serves the calls that come after it: a cycle of the
/// watchdog (every 2 s, one call per VM, within its 500 ms budget) fits in it,
/// and the next cycle takes a new one.
pub const FRESH_FOR_SECS: f64 = 1.0;
const FILE_NAME: &str = "cycle.json";

#[derive(Serialize, Deserialize)]
struct Cycle {
    /// Seconds since the epoch when the bulk call was made.
    taken_at: f64,
    vms: BTreeMap<String, RawStats>,
}

/// The counters of `vm` and when they were taken: from the shared sample when
/// it is at most [`FRESH_FOR_SECS`] old at `now` and is not the one `vm`'s
/// previous call used (taken at `last_used`: the same counters again would
/// give no rates), else from a new one that `take` makes (and that is kept for
/// the next calls). `None` when the sample has no such VM. The caller holds
/// the metrics cache's lock.
pub fn counters_of<E>(
    dir: &Path,
    vm: &str,
    now: f64,
    last_used: Option<f64>,
    take: impl FnOnce() -> Result<Vec<RawStats>, E>,
) -> Result<Option<(f64, RawStats)>, E> {
    let usable = |c: &Cycle| (0.0..=FRESH_FOR_SECS).contains(&(now - c.taken_at)) && last_used != Some(c.taken_at);
    let mut cycle = match read(dir).filter(usable) {
        Some(cycle) => cycle,
        None => {
            let cycle = Cycle { taken_at: now, vms: take()?.into_iter().map(|s| (s.name.clone(), s)).collect() };
            // Unsaved, it only costs the next call a bulk call of its own.
            if let Ok(text) = serde_json::to_string(&cycle) {
                let _ = write_atomic_unsynced(&dir.join(FILE_NAME), text.as_bytes(), 0o640);
            }
            cycle
        }
    };
    Ok(cycle.vms.remove(vm).map(|stats| (cycle.taken_at, stats)))
}

fn read(dir: &Path) -> Option<Cycle> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(FILE_NAME)).ok()?).ok()
}

/// Forgets the shared sample, so that no call serves figures taken before a
/// change of the VMs this provisioner made itself (a destroy).
pub fn forget(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(FILE_NAME));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PowerState;
    use std::cell::Cell;

    fn vm(name: &str, cpu_time_ns: u64) -> RawStats {
        RawStats { name: name.into(), state: Some(PowerState::Running), cpu_time_ns, ..RawStats::default() }
    }

    #[test]
    fn one_bulk_call_serves_every_vm_within_the_window_and_no_longer() {
        let dir = tempfile::tempdir().unwrap();
        let calls = Cell::new(0);
        let take = || -> Result<_, ()> {
            calls.set(calls.get() + 1);
            Ok(vec![vm("a", 1), vm("b", 2)])
        };
        assert_eq!(counters_of(dir.path(), "a", 100.0, None, take), Ok(Some((100.0, vm("a", 1)))));
        assert_eq!(counters_of(dir.path(), "b", 100.0 + FRESH_FOR_SECS, Some(98.0), take), Ok(Some((100.0, vm("b", 2)))));
        assert_eq!(counters_of(dir.path(), "c", 100.5, None, take), Ok(None), "a VM the sample has not: not another's figures");
        assert_eq!(calls.get(), 1);
        assert_eq!(counters_of(dir.path(), "a", 100.01 + FRESH_FOR_SECS, None, take), Ok(Some((100.01 + FRESH_FOR_SECS, vm("a", 1)))));
        assert_eq!(counters_of(dir.path(), "a", 99.0, None, take).map(|r| r.map(|(t, _)| t)), Ok(Some(99.0)), "a clock set back");
        assert_eq!(calls.get(), 3);
        assert_eq!(counters_of(dir.path(), "a", 99.5, Some(99.0), take).map(|r| r.map(|(t, _)| t)), Ok(Some(99.5)), "a's second call in the window");
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn a_failed_bulk_call_is_the_callers_error_and_a_forgotten_sample_is_taken_anew() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(counters_of(dir.path(), "a", 1.0, None, || Err("down")), Err("down"));
        counters_of(dir.path(), "a", 1.0, None, || Ok::<_, ()>(vec![vm("a", 1)])).unwrap();
        forget(dir.path());
        assert_eq!(counters_of(dir.path(), "a", 1.1, None, || Ok::<_, ()>(vec![])), Ok(None));
    }
}
