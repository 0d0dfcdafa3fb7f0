//! Running work items N at a time on one tokio runtime (a `JoinSet`) and handing each result to the
//! caller the moment it is ready (in finishing order). Items are started in input order; if the
//! caller's handler fails (say the results disk is full), no new item starts and the error comes
//! back once the running ones have ended. Blocking work (a patch task's sandbox and tests) belongs
//! in `tokio::task::spawn_blocking` inside the item's future; agent runs are async already.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinSet;

use crate::Error;

/// Run `work` over `items` with at most `jobs` at once on one multi-threaded runtime; `done` sees
/// each result as it finishes, on the calling thread (so it may write files without locking).
/// Setting `cancel` (e.g. on Ctrl-C) starts no new item; the running ones finish and are handed
/// over.
pub fn run_parallel<T, R, W, F, D, E>(
    items: Vec<T>,
    jobs: usize,
    cancel: &AtomicBool,
    work: W,
    mut done: D,
) -> Result<(), E>
where
    W: Fn(T) -> F,
    F: Future<Output = R> + Send + 'static,
    R: Send + 'static,
    D: FnMut(R) -> Result<(), E>,
    E: From<Error>,
{
    let jobs = jobs.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(jobs.min(items.len().max(1)).min(16))
        .enable_all()
        .build()
        .map_err(|source| Error::io("starting the async runtime", source))?;
    runtime.block_on(async {
        let mut running = JoinSet::new();
        let mut queue = items.into_iter();
        let mut failure: Option<E> = None;
        loop {
            while running.len() < jobs && failure.is_none() && !cancel.load(Ordering::SeqCst) {
                let Some(item) = queue.next() else {
                    break;
                };
                running.spawn(work(item));
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let handled = match joined {
                Ok(result) if failure.is_none() => done(result),
                Ok(_) => Ok(()),
                Err(error) => Err(Error::TaskLost(error.to_string()).into()),
            };
            if let Err(error) = handled {
                failure.get_or_insert(error);
            }
        }
        failure.map_or(Ok(()), Err)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn every_item_runs_once_and_two_jobs_overlap() {
        let started = Instant::now();
        let mut seen = Vec::new();
        run_parallel::<_, _, _, _, _, Error>(
            (0..6).collect(),
            2,
            &AtomicBool::new(false),
            |item: u32| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                item
            },
            |item| {
                seen.push(item);
                Ok(())
            },
        )
        .unwrap();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
        // 6 × 50 ms serially; two workers need about half.
        assert!(
            started.elapsed() < Duration::from_millis(280),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_failing_handler_stops_new_work() {
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let result = run_parallel(
            (0..50).collect(),
            1,
            &AtomicBool::new(false),
            |item: u32| {
                let ran = std::sync::Arc::clone(&ran);
                async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    item
                }
            },
            |_| Err(Error::Setup("disk full".into())),
        );
        assert!(result.is_err());
        assert!(ran.load(Ordering::SeqCst) < 50);
    }

    #[test]
    fn cancelling_starts_nothing_new() {
        let mut seen = 0;
        run_parallel::<_, _, _, _, _, Error>(
            (0..10).collect(),
            2,
            &AtomicBool::new(true),
            |item: u32| async move { item },
            |_| {
                seen += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, 0);
    }

    #[test]
    fn a_panicking_item_is_an_error_not_a_crash() {
        let result = run_parallel::<_, (), _, _, _, Error>(
            vec![1_u32],
            1,
            &AtomicBool::new(false),
            |_| async move { panic!("boom") },
            |()| Ok(()),
        );
        assert!(matches!(result, Err(Error::TaskLost(_))), "{result:?}");
    }
}
