//! Terminal output that a closed pipe cannot crash. `hone … | head -1` closes hone's stdout (and
//! with `2>&1` its stderr) early; std's `println!`/`eprintln!` panic then ("failed printing to
//! stderr"), and a propagated `EPIPE` used to end as `error: Broken pipe`. Here messages on stderr
//! are best effort (`note!`), and an error caused by a closed pipe ends hone quietly with exit 0,
//! like ripgrep (`is_closed_pipe`, used by `exit::report`). Data on stdout is written with `?` by
//! each command so that a closed stdout stops the work.

use std::io::Write as _;

/// Write one line on stderr; a closed or full stderr is ignored (progress is not worth a crash).
pub fn stderr_line(args: std::fmt::Arguments<'_>) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_fmt(args)
        .and_then(|()| stderr.write_all(b"\n"));
}

/// Write on stderr without a newline, ignoring a closed stderr.
pub fn stderr_text(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// Whether `error` comes from writing to a pipe whose reader has gone.
pub fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_broken_pipe_is_recognised_through_context_and_serde() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let error = anyhow::Error::from(io).context("writing the report");
        assert!(is_closed_pipe(&error));
        let json = serde_json::Error::io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_closed_pipe(&anyhow::Error::from(json)));
        let other = anyhow::anyhow!("no such file");
        assert!(!is_closed_pipe(&other));
    }
}
