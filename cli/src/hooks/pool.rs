//! Running work items N at a time on worker threads and handing each result to the caller the
//! moment it is ready (in finishing order), for `hone batch` and `hone refactor`. Items are started
//! in input order; if the caller's handler fails (say the results disk is full), no new item starts
//! and the error comes back once the running ones have ended.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

/// Run `work` over `items` with at most `jobs` at once; `done` sees each result as it finishes, on
/// the calling thread (so it may write files without locking). Setting `cancel` (e.g. on Ctrl-C)
/// starts no new item; the running ones finish and are handed over.
pub fn run_parallel<T, R, W, D>(
    items: Vec<T>,
    jobs: usize,
    cancel: &AtomicBool,
    work: W,
    mut done: D,
) -> anyhow::Result<()>
where
    T: Send,
    R: Send,
    W: Fn(T) -> R + Sync,
    D: FnMut(R) -> anyhow::Result<()>,
{
    let workers = jobs.max(1).min(items.len().max(1));
    let queue = Mutex::new(items.into_iter());
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<R>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let (queue, stop, work) = (&queue, &stop, &work);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) || cancel.load(Ordering::SeqCst) {
                    break;
                }
                // A poisoned queue means another worker panicked: stop taking work.
                let Some(item) = queue.lock().ok().and_then(|mut items| items.next()) else {
                    break;
                };
                if sender.send(work(item)).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        for result in receiver {
            if let Err(error) = done(result) {
                stop.store(true, Ordering::SeqCst);
                return Err(error);
            }
        }
        Ok(())
    })
}

/// A flag set by the first Ctrl-C (SIGINT), so long runs stop starting work and keep what
/// finished; a second Ctrl-C exits at once (status 130).
pub fn interrupt_flag(on_first: &'static str) -> &'static AtomicBool {
    static FLAG: AtomicBool = AtomicBool::new(false);
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            FLAG.store(true, Ordering::SeqCst);
            super::pre_commit::say(on_first);
            if tokio::signal::ctrl_c().await.is_ok() {
                hone_tools::runner::interrupt::stop_all();
                std::process::exit(130);
            }
        });
    });
    &FLAG
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
        run_parallel(
            (0..6).collect(),
            2,
            &AtomicBool::new(false),
            |item: u32| {
                std::thread::sleep(Duration::from_millis(50));
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
        let ran = std::sync::atomic::AtomicUsize::new(0);
        let result = run_parallel(
            (0..50).collect(),
            1,
            &AtomicBool::new(false),
            |item: u32| {
                ran.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                item
            },
            |_| anyhow::bail!("disk full"),
        );
        assert!(result.is_err());
        assert!(ran.load(Ordering::SeqCst) < 50);
    }

    #[test]
    fn cancelling_starts_nothing_new() {
        let mut seen = 0;
        run_parallel(
            (0..10).collect(),
            2,
            &AtomicBool::new(true),
            |item: u32| item,
            |_| {
                seen += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, 0);
    }
}
