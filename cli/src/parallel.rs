//! Independent pieces of work run a few at a time on scoped threads: the
//! components of an archive being validated, the buckets being listed or
//! restored.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Calls `work` on every item, at most `threads` at once (at least one),
/// and returns the results in the items' order. A thread takes the next
/// item as soon as it is done with one, so a long item does not hold the
/// others up.
pub fn map_in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let items: Vec<Mutex<Option<T>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { return };
                let item = item
                    .lock()
                    .expect("not poisoned")
                    .take()
                    .expect("each item is taken once");
                let result = work(item);
                *results[i].lock().expect("not poisoned") = Some(result);
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("not poisoned")
                .expect("every item was worked on")
        })
        .collect()
}

/// How many threads CPU-bound work should use: one per core.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn results_come_back_in_the_items_order() {
        let lengths = map_in_parallel(vec!["a", "bbb", "cc", ""], 3, |s| s.len());
        assert_eq!(lengths, vec![1, 3, 2, 0]);
        assert!(map_in_parallel(Vec::<u8>::new(), 4, |b| b).is_empty());
    }

    #[test]
    fn as_many_items_run_at_once_as_there_are_threads_and_no_more() {
        let in_flight = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        map_in_parallel(vec![(); 6], 3, |()| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            // Wait (a bounded while) for the other threads to be busy too.
            let deadline = Instant::now() + Duration::from_secs(5);
            while most.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
                std::thread::yield_now();
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
