//! The events a run reports as it goes: the CLI turns them into a progress display or JSON Lines
//! (`--json`), transcripts record them, hooks and batch consume them. Names are stable (`run.started`,
//! `context.selected`, `plan`, `candidate.generated`, `candidate.applied`, `candidate.failed`,
//! `test.started`, `test.finished`, `iteration.finished`, `run.finished`, plus `phase` for progress).

use serde::Serialize;

use crate::model::Usage;

/// One event; serialised with its name in the `event` field.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event")]
pub enum Event {
    #[serde(rename = "run.started")]
    RunStarted {
        id: String,
        task: String,
        backend: String,
        model: String,
        mode: String,
        candidates: usize,
        max_iterations: usize,
        test_command: String,
        transcript: Option<String>,
    },
    /// A phase began (for progress displays).
    #[serde(rename = "phase")]
    Phase { iteration: usize, phase: Phase },
    #[serde(rename = "context.selected")]
    ContextSelected {
        files: Vec<SelectedFile>,
        omitted: Vec<String>,
        prompt_tokens: usize,
    },
    #[serde(rename = "plan")]
    Plan {
        items: Vec<PlannedRegion>,
        source: PlanSource,
    },
    #[serde(rename = "candidate.generated")]
    CandidateGenerated {
        iteration: usize,
        candidate: usize,
        characters: usize,
    },
    #[serde(rename = "candidate.applied")]
    CandidateApplied {
        iteration: usize,
        candidate: usize,
        files: Vec<String>,
        diff_lines: usize,
    },
    #[serde(rename = "candidate.failed")]
    CandidateFailed {
        iteration: usize,
        candidate: usize,
        stage: FailStage,
        reason: String,
    },
    #[serde(rename = "test.started")]
    TestStarted { iteration: usize, candidate: usize },
    #[serde(rename = "test.finished")]
    TestFinished {
        iteration: usize,
        candidate: usize,
        passed: bool,
        timed_out: bool,
        failing_tests: Vec<String>,
        seconds: f64,
    },
    #[serde(rename = "iteration.finished")]
    IterationFinished {
        iteration: usize,
        passed: bool,
        best_candidate: Option<usize>,
        seconds: f64,
    },
    #[serde(rename = "run.finished")]
    RunFinished(RunSummary),
}

/// Phases of an iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Context,
    Plan,
    Generate,
    Apply,
    Test,
}

/// Where a candidate stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailStage {
    /// No edit could be read from the answer.
    Parse,
    /// The edits did not apply.
    Apply,
    /// Same change as a candidate that already failed: not tested again.
    Duplicate,
    /// The change applied and the tests failed (reported with `test.finished` too).
    Test,
}

/// Where the plan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanSource {
    Model,
    /// The model's plan was unusable (or planning is off): context ranking and failing-test lines.
    Fallback,
}

/// A file chosen as context.
#[derive(Debug, Clone, Serialize)]
pub struct SelectedFile {
    pub path: String,
    pub start_line: usize,
    pub end_line: usize,
    pub reason: String,
}

/// A planned region.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRegion {
    pub path: String,
    pub start_line: usize,
    pub end_line: usize,
    pub why: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// A candidate passed the tests.
    Passed,
    /// Iterations used up without a passing candidate.
    Failed,
    /// The wall-clock budget ran out first.
    Budget,
}

/// The final event, also part of the outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub status: RunStatus,
    /// Why it did not pass (empty when it did).
    pub reason: String,
    /// The verified patch, or the best attempt when none passed.
    pub diff: String,
    pub files: Vec<String>,
    pub iterations: usize,
    pub candidates_generated: usize,
    pub candidates_tested: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub nfe: u64,
    pub model_seconds: f64,
    pub test_seconds: f64,
    pub seconds: f64,
    pub transcript: Option<String>,
}

impl RunSummary {
    pub(crate) fn add_usage(&mut self, usage: &Usage) {
        self.prompt_tokens += usage.prompt_tokens;
        self.completion_tokens += usage.completion_tokens;
        self.nfe += usage.nfe;
        self.model_seconds += usage.model_time.as_secs_f64();
    }
}

/// Receives events; must be cheap and must not block for long (called from the run's task).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> EventSink for F {
    fn emit(&self, event: &Event) {
        self(event)
    }
}

/// A sink that drops everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: &Event) {}
}
