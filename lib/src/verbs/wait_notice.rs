//! A long wait told while it lasts: a line at least every `Session::notice_every`
//! (10 s by default) with the time waited and the bound, so an operator
//! watching a create or a gc knows it is not hung.

use super::Progress;
use std::time::{Duration, Instant};

/// How often a wait is told by default.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(10);

pub struct WaitNotice {
    what: String,
    limit: Duration,
    every: Duration,
    started: Instant,
    told: u32,
}

impl WaitNotice {
    /// A wait for `what` (`the guest agent of vm1`) bounded by `limit`, started now.
    pub fn new(what: String, limit: Duration, every: Duration) -> Self {
        Self { what, limit, every, started: Instant::now(), told: 0 }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Tells the wait when another interval has passed since the last line.
    pub fn tick(&mut self, progress: Progress) {
        let elapsed = self.started.elapsed();
        let due = self.every.saturating_mul(self.told + 1);
        if elapsed >= due {
            self.told = u32::try_from(elapsed.as_nanos() / self.every.as_nanos().max(1)).unwrap_or(u32::MAX);
            progress(&format!("Still waiting for {}: {:.1} s of {} s", self.what, elapsed.as_secs_f64(), self.limit.as_secs()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_passed_with_the_time_waited_and_the_bound() {
        let mut lines = Vec::new();
        let every = Duration::from_millis(300);
        let mut notice = WaitNotice::new("the guest agent of vm1".into(), Duration::from_secs(180), every);
        notice.tick(&mut |l| lines.push(l.to_string()));
        assert!(lines.is_empty(), "nothing before the first interval");
        std::thread::sleep(every);
        notice.tick(&mut |l| lines.push(l.to_string()));
        notice.tick(&mut |l| lines.push(l.to_string()));
        assert_eq!(lines.len(), 1, "once per interval: {lines:?}");
        assert!(lines[0].starts_with("Still waiting for the guest agent of vm1: "), "{lines:?}");
        assert!(lines[0].ends_with(" s of 180 s"), "{lines:?}");
        std::thread::sleep(every * 2);
        notice.tick(&mut |l| lines.push(l.to_string()));
        assert_eq!(lines.len(), 2, "intervals that passed untold are not told twice: {lines:?}");
    }
}
