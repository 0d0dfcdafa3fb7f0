//! The one way context ranking spreads work over the (two) cores it expects.

/// Maps `items` in order on two threads, each with its own `state` (a parser, a buffer). A panic
/// in a thread is raised again here rather than losing that thread's results.
pub(super) fn map_in_two_threads<T: Sync, S, R: Send>(
    items: &[T],
    state: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> R + Sync,
) -> Vec<R> {
    let half = items.len().div_ceil(2).max(1);
    let (state, f) = (&state, &f);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(half)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut own = state();
                    chunk
                        .iter()
                        .map(|item| f(&mut own, item))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
