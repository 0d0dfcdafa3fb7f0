//! What a caller asks of a run ([`RunRequest`]) and what it gets back ([`RunOutcome`]).

use std::path::PathBuf;
use std::time::Duration;

use hone_tools::TreeSource;

use crate::changes::ChangeSet;
use crate::events::RunSummary;
use crate::model::Sampling;

/// How candidates are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GenerationMode {
    /// Infill when the backend supports it, edit blocks otherwise.
    #[default]
    Auto,
    /// SEARCH/REPLACE edit blocks in the answer text (any backend).
    EditBlocks,
    /// Block rewrite by masked infill of the planned region (local engine).
    Infill,
}

/// A task for the agent.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Any folder inside the repository.
    pub repo: PathBuf,
    pub task: String,
    /// Test command run with `sh -c` in the sandbox; detected from the project when `None`.
    pub test_command: Option<String>,
    /// Limit for one test run (the whole process group is killed after it).
    pub test_timeout: Duration,
    /// Candidates per iteration; `None`: the backend's default (4 local, 1 over HTTP).
    pub candidates: Option<usize>,
    pub max_iterations: usize,
    /// Wall-clock limit for the whole run.
    pub budget: Option<Duration>,
    /// Longest answer in tokens.
    pub max_tokens: usize,
    /// Tokens of code the first prompt may carry.
    pub context_tokens: usize,
    pub sampling: Sampling,
    pub mode: GenerationMode,
    /// Ask the model for a plan first (else the context ranking and failing-test lines are the plan).
    pub plan: bool,
    /// Files the user named.
    pub files: Vec<String>,
    /// Which state of the repository the run starts from: the working tree (default) or the index
    /// (hooks).
    pub source: TreeSource,
    /// Run even when tracked files have uncommitted changes (the sandbox then includes them).
    pub allow_dirty: bool,
    /// Failing test output the caller already has (skips the baseline test run).
    pub failure_output: Option<String>,
    /// Run the tests once before generating, to feed failures into context and plan.
    pub baseline: bool,
    /// Where transcripts go (`<git dir>/hone/runs` when `None`); `record == false` writes none.
    pub runs_dir: Option<PathBuf>,
    pub record: bool,
    /// Candidates tested at once (0: the number of cores).
    pub jobs: usize,
    /// Let candidates edit tests (test files, test modules, skip markers) and still pass; plans
    /// and infill may then target test code too.
    pub allow_test_edits: bool,
    /// How test commands are confined (default strict: bubblewrap, no network).
    pub confinement: hone_tools::ConfinePolicy,
    /// Ignored paths linked into every sandbox, on top of the defaults (`[sandbox] include`).
    pub include: Vec<String>,
}

impl RunRequest {
    /// Defaults: 4 iterations, backend's candidates, 10-minute test timeout, planning on.
    pub fn new(repo: impl Into<PathBuf>, task: impl Into<String>) -> Self {
        Self {
            repo: repo.into(),
            task: task.into(),
            test_command: None,
            test_timeout: Duration::from_secs(600),
            candidates: None,
            max_iterations: 4,
            budget: None,
            max_tokens: 2048,
            context_tokens: 6000,
            sampling: Sampling::default(),
            mode: GenerationMode::Auto,
            plan: true,
            files: Vec::new(),
            source: TreeSource::WorkTree,
            allow_dirty: false,
            failure_output: None,
            baseline: true,
            runs_dir: None,
            record: true,
            jobs: 0,
            allow_test_edits: false,
            confinement: hone_tools::ConfinePolicy::default(),
            include: Vec::new(),
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Status, diff, counts, timings (also sent as `run.finished`).
    pub summary: RunSummary,
    /// The verified change when the run passed, else the best attempt (possibly empty).
    pub changes: ChangeSet,
    /// The repository's root.
    pub root: PathBuf,
    /// Wall time of each phase, summed over iterations, in seconds.
    pub phase_seconds: Vec<(String, f64)>,
}

impl RunOutcome {
    pub fn passed(&self) -> bool {
        self.summary.status == crate::events::RunStatus::Passed
    }
}
