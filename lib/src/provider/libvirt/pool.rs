//! A few threads that run one task per item under a hard deadline for the
//! whole call: a task that stalls holds its own thread, never the caller,
//! who takes what has come back when the deadline passes.

use std::collections::VecDeque;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

/// Runs `task(item, deadline)` for every item on at most `workers` threads,
/// in order. An item's result is `None` when its task had not returned by
/// `deadline` (it is left to end on its own) or could not start before it.
pub fn run<T, R, F>(items: Vec<T>, workers: usize, deadline: Instant, task: F) -> Vec<Option<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T, Instant) -> R + Send + Sync + 'static,
{
    let count = items.len();
    let queue = Arc::new(Mutex::new(items.into_iter().enumerate().collect::<VecDeque<_>>()));
    let task = Arc::new(task);
    let (sender, receiver) = mpsc::channel();
    for _ in 0..workers.min(count) {
        let (queue, task, sender) = (Arc::clone(&queue), Arc::clone(&task), sender.clone());
        // A thread that cannot be made leaves its share to the others (or to `None`).
        let _ = std::thread::Builder::new().spawn(move || loop {
            let next = queue.lock().ok().and_then(|mut queue| queue.pop_front());
            let Some((index, item)) = next.filter(|_| Instant::now() < deadline) else { return };
            if sender.send((index, task(item, deadline))).is_err() {
                return;
            }
        });
    }
    drop(sender);
    let mut results: Vec<Option<R>> = std::iter::repeat_with(|| None).take(count).collect();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match receiver.recv_timeout(left) {
            Ok((index, result)) => results[index] = Some(result),
            // The deadline, or every worker done.
            Err(_) => break,
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn task(item: u32, _deadline: Instant) -> u32 {
        if item >= 100 {
            std::thread::sleep(Duration::from_secs(5));
        }
        item * 2
    }

    #[test]
    fn stalled_tasks_cost_the_deadline_and_delay_no_other() {
        let started = Instant::now();
        let results = run(vec![100, 1, 101, 2, 3, 4, 5, 6], 3, started + Duration::from_millis(400), task);
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(2), "{elapsed:?}");
        assert_eq!(results, [None, Some(2), None, Some(4), Some(6), Some(8), Some(10), Some(12)]);
    }

    #[test]
    fn all_quick_tasks_return_before_the_deadline() {
        let started = Instant::now();
        assert_eq!(run(vec![1, 2, 3], 8, started + Duration::from_secs(10), task), [Some(2), Some(4), Some(6)]);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(run(Vec::<u32>::new(), 8, started + Duration::from_secs(10), task), []);
    }

    #[test]
    fn more_stalled_tasks_than_workers_still_end_at_the_deadline() {
        let started = Instant::now();
        let results = run(vec![100, 101, 1], 2, started + Duration::from_millis(300), task);
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(results, [None, None, None], "the quick one never got a thread before the deadline");
    }
}
