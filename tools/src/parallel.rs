//! Splitting file-copying work over two scoped threads: tree export and sandbox copies are bound by
//! many small reads and writes, and two threads keep both cores of a small machine busy.

use crate::error::{Error, Result};

/// Runs `work` on each half of `items` on its own scoped thread and returns the halves' results in
/// order; the first error (or a panicked thread, reported as `what` panicked) wins.
pub(crate) fn in_two_halves<T, R, F>(items: &[T], what: &str, work: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&[T]) -> Result<R> + Sync,
{
    let half = items.len().div_ceil(2).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(half)
            .map(|chunk| scope.spawn(move || work(chunk)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::Invalid(format!("{what} thread panicked"))))
            })
            .collect()
    })
}
