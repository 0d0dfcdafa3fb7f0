//! Exit codes and the rendering of errors for people: `error: ...` then `hint: ...` lines.
//!
//! 0: success; 1: the work ran but did not succeed (tests failed, an edit did not apply, a parity
//! mismatch); 2: bad input or a setup problem the user must fix (clap also exits 2 on bad flags).

use std::process::ExitCode;

/// The work ran and did not succeed (tests failed, edit failed, mismatch).
pub const FAILURE: u8 = 1;
/// Bad input or setup: the user must change something.
pub const BAD_INPUT: u8 = 2;

/// An error that carries hints for the user; attach with `anyhow::Error::context`-free wrapping:
/// `return Err(Hinted::new(err, ["pass a model directory or a hub id"]).into())`.
#[derive(Debug)]
pub struct Hinted {
    pub error: anyhow::Error,
    pub hints: Vec<String>,
    pub code: u8,
}

impl Hinted {
    pub fn new<I, S>(error: impl Into<anyhow::Error>, hints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            error: error.into(),
            hints: hints.into_iter().map(Into::into).collect(),
            code: BAD_INPUT,
        }
    }

    /// Use another exit code than 2.
    pub fn with_code(mut self, code: u8) -> Self {
        self.code = code;
        self
    }
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Hinted {}

/// Print `error: ...` and its hints on stderr (first those of the library error inside, from
/// `hints`, then the command's own) and return the exit code for it. An error caused by a closed
/// pipe (`hone … | head -1`) ends quietly with 0, as in ripgrep: the reader has all it wanted, and
/// there is nobody to tell.
pub fn report(error: &anyhow::Error) -> ExitCode {
    if crate::output::is_closed_pipe(error) {
        return ExitCode::SUCCESS;
    }
    let (inner, own, code) = match error.downcast_ref::<Hinted>() {
        Some(hinted) => (&hinted.error, hinted.hints.as_slice(), hinted.code),
        None => (error, &[][..], BAD_INPUT),
    };
    note!("error: {inner:#}");
    for hint in crate::hints::for_error(inner).iter().chain(own) {
        note!("hint: {hint}");
    }
    ExitCode::from(code)
}
