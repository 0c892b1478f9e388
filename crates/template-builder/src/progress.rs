//! Progress lines of a build: numbered steps (`[n/N] …`) and a throttle for the
//! chatty output of long-running tools.

use std::time::{Duration, Instant};

/// Numbers the steps of a build of `total` steps.
pub struct Steps<'p> {
    done: usize,
    total: usize,
    progress: &'p mut dyn FnMut(&str),
}

impl<'p> Steps<'p> {
    pub fn new(total: usize, progress: &'p mut dyn FnMut(&str)) -> Self {
        Self { done: 0, total, progress }
    }

    /// Announces the next step.
    pub fn next(&mut self, what: &str) {
        self.done += 1;
        (self.progress)(&format!("[{}/{}] {what}", self.done, self.total));
    }

    /// A detail line inside the current step.
    pub fn detail(&mut self, line: &str) {
        (self.progress)(line);
    }

    pub fn sink(&mut self) -> &mut dyn FnMut(&str) {
        &mut *self.progress
    }
}

/// Lets one event through per interval; the first one at once.
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Self { every, last: None }
    }

    pub fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < self.every) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_steps() {
        let mut lines = Vec::new();
        let mut sink = |l: &str| lines.push(l.to_string());
        let mut steps = Steps::new(2, &mut sink);
        steps.next("one");
        steps.detail("  detail");
        steps.next("two");
        assert_eq!(lines, ["[1/2] one", "  detail", "[2/2] two"]);
    }

    #[test]
    fn throttles() {
        let mut throttle = Throttle::new(Duration::from_secs(3600));
        assert!(throttle.ready());
        assert!(!throttle.ready());
        let mut open = Throttle::new(Duration::ZERO);
        assert!(open.ready() && open.ready());
    }
}
