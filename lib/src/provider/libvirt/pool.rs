//! A few threads that run one task per item, each task under its own hard
//! budget from the moment it starts: a task that overruns it is given up (its
//! thread is left to end on its own) and a fresh thread takes its place, so a
//! stalled task costs its own item the budget and delays no other.

use std::collections::{HashMap, VecDeque};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

enum Event<R> {
    Started { index: usize, deadline: Instant },
    /// `late`: the task returned after its deadline; its thread has stopped.
    Finished { index: usize, result: R, late: bool },
}

/// Runs `task(item, deadline)` for every item, at most `workers` at a time
/// (not counting given-up ones), each with `deadline` = its start + `budget`.
/// An item's result is `None` when its task did not return by its deadline.
pub fn run<T, R, F>(items: Vec<T>, workers: usize, budget: Duration, task: F) -> Vec<Option<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T, Instant) -> R + Send + Sync + 'static,
{
    let count = items.len();
    let queue = Arc::new(Mutex::new(items.into_iter().enumerate().collect::<VecDeque<_>>()));
    let task = Arc::new(task);
    let (sender, receiver) = mpsc::channel();
    // Whether a thread could be made; one that cannot leaves its share to the others (or to `None`).
    let spawn_worker = || {
        let (queue, task, sender) = (Arc::clone(&queue), Arc::clone(&task), sender.clone());
        std::thread::Builder::new().spawn(move || loop {
            let Some((index, item)) = queue.lock().ok().and_then(|mut queue| queue.pop_front()) else { return };
            let deadline = Instant::now() + budget;
            if sender.send(Event::Started { index, deadline }).is_err() {
                return;
            }
            let result = task(item, deadline);
            let late = Instant::now() > deadline;
            if sender.send(Event::Finished { index, result, late }).is_err() || late {
                return;
            }
        })
        .is_ok()
    };
    // Threads that run or will take tasks (a given-up one no longer counts).
    let mut live = (0..workers.min(count)).filter(|_| spawn_worker()).count();
    let mut results: Vec<Option<R>> = std::iter::repeat_with(|| None).take(count).collect();
    let mut running: HashMap<usize, Instant> = HashMap::new();
    let mut outstanding = count;
    while outstanding > 0 && (live > 0 || !running.is_empty()) {
        let event = match running.values().min() {
            Some(&first) => receiver.recv_timeout(first.saturating_duration_since(Instant::now())),
            None => receiver.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match event {
            Ok(Event::Started { index, deadline }) => {
                running.insert(index, deadline);
            }
            Ok(Event::Finished { index, result, late }) => {
                if running.remove(&index).is_some() {
                    outstanding -= 1;
                    if late {
                        live = live - 1 + usize::from(spawn_worker());
                    } else {
                        results[index] = Some(result);
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                let overdue: Vec<usize> = running.iter().filter(|(_, &deadline)| deadline <= now).map(|(&i, _)| i).collect();
                for index in overdue {
                    running.remove(&index);
                    outstanding -= 1;
                    live = live - 1 + usize::from(spawn_worker());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items from 100 on stall for 5 s.
    fn task(item: u32, _deadline: Instant) -> u32 {
        if item >= 100 {
            std::thread::sleep(Duration::from_secs(5));
        }
        item * 2
    }

    #[test]
    fn a_stalled_task_costs_its_budget_and_delays_no_other() {
        let started = Instant::now();
        let results = run(vec![100, 1, 101, 2, 3, 4, 5, 6], 3, Duration::from_millis(400), task);
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(1), "{elapsed:?}");
        assert_eq!(results, [None, Some(2), None, Some(4), Some(6), Some(8), Some(10), Some(12)]);
    }

    #[test]
    fn all_quick_tasks_return_at_once() {
        let started = Instant::now();
        assert_eq!(run(vec![1, 2, 3], 8, Duration::from_secs(10), task), [Some(2), Some(4), Some(6)]);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(run(Vec::<u32>::new(), 8, Duration::from_secs(10), task), []);
    }

    #[test]
    fn more_stalled_tasks_than_workers_still_leave_the_others_their_own_budget() {
        let started = Instant::now();
        let results = run(vec![100, 101, 1, 102, 2], 2, Duration::from_millis(300), task);
        let elapsed = started.elapsed();
        assert_eq!(results, [None, None, Some(2), None, Some(4)]);
        assert!(elapsed >= Duration::from_millis(600) && elapsed < Duration::from_millis(1500), "{elapsed:?}");
    }

    #[test]
    fn each_task_is_timed_from_its_own_start() {
        let slow = |item: u32, deadline: Instant| {
            std::thread::sleep(Duration::from_millis(150));
            (item, deadline)
        };
        let started = Instant::now();
        let results = run(vec![1, 2, 3], 1, Duration::from_millis(250), slow);
        assert!(results.iter().all(Option::is_some), "one worker, three tasks of 150 ms, 250 ms each: all in time");
        assert!(started.elapsed() >= Duration::from_millis(450));
    }
}
