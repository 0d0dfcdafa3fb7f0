//! Running a test (or any check) command: in its own process group with a timeout that kills the
//! whole group, output captured into one interleaved stream capped to head + tail, environment
//! scrubbed of secrets, confined by `crate::confine` when the options carry a `Confinement`
//! (`process`); stopping every running command on an interrupt (`interrupt`); parsing the results of common test frameworks into counts and
//! failing test names (`parsers`); detecting the test command of a project (`detect`); and telling
//! test code and test tampering apart from ordinary changes (`integrity`).
//!
//! A failing or timed-out command is data (`TestReport`), not an error; `Err` means the command
//! could not be started.

pub mod detect;
pub mod integrity;
pub mod interrupt;
pub mod parsers;
pub mod process;
pub mod summary;

use std::path::PathBuf;
use std::time::Duration;

pub use detect::{detect_test_command, DetectedCommand};
pub use parsers::{parse_test_output, Framework, ParsedTests};
pub use process::{run_command, scrub_environment};
pub use summary::describe_failure;

/// Default timeout of a test command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Default bytes of output kept at the head and at the tail (each).
pub const DEFAULT_OUTPUT_CAP: usize = 16 * 1024;

/// How to run a command.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Kill the process group after this long.
    pub timeout: Duration,
    /// Bytes kept from the start and from the end of the output (each).
    pub output_cap: usize,
    /// Drop secrets and git hook variables from the environment (default true).
    pub scrub_env: bool,
    /// Variables set on top (after scrubbing), e.g. a shared `CARGO_TARGET_DIR`.
    pub extra_env: Vec<(String, String)>,
    /// Working directory (the sandbox); relative commands resolve here.
    pub cwd: PathBuf,
    /// Confine the command (bubblewrap, or the fallback); `None`: run it as is.
    pub confinement: Option<crate::confine::Confinement>,
}

impl RunOptions {
    /// Defaults for running in `cwd`.
    pub fn new(cwd: impl Into<PathBuf>) -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            output_cap: DEFAULT_OUTPUT_CAP,
            scrub_env: true,
            extra_env: Vec::new(),
            cwd: cwd.into(),
            confinement: None,
        }
    }
}

/// The outcome of running a test command. `passed` is true only when it exited 0 in time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestReport {
    /// The command line as given (run with `sh -c`).
    pub command: String,
    pub passed: bool,
    /// Exit code; `None` when killed by a signal or by the timeout.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    #[serde(with = "duration_seconds")]
    pub duration: Duration,
    /// stdout and stderr interleaved; when over twice `output_cap`, the middle is replaced by a
    /// `[... N bytes omitted ...]` line.
    pub output: String,
    pub output_truncated: bool,
    /// The framework whose output was recognised, if any.
    pub framework: Option<Framework>,
    /// Counts parsed from the output (when recognised).
    pub tests_passed: Option<usize>,
    pub tests_failed: Option<usize>,
    /// Names of failing tests, as the framework prints them.
    pub failed_tests: Vec<String>,
    /// How the command was confined.
    pub confinement: crate::confine::Mechanism,
}

mod duration_seconds {
    pub fn serialize<S: serde::Serializer>(
        duration: &std::time::Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64())
    }
}
