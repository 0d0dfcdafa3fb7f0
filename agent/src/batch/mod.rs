//! Batch work over the agent, for `hone batch` and `hone refactor`: many independent items run N at
//! a time on one tokio runtime (`pool`, a `JoinSet`), each in its own sandbox. `tasks` parses the
//! tasks file and verifies patch tasks with hone-tools; `agent_tasks` runs the others through
//! [`crate::run_task`]; `results` is the crash-safe results file (`--resume`); `merge` combines
//! `hone refactor`'s per-file diffs into one patch. Nothing here writes to a task's repository, and
//! nothing prints: the CLI owns progress and output.

pub mod agent_tasks;
pub mod merge;
pub mod pool;
pub mod results;
pub mod tasks;

use std::path::Path;
use std::sync::Arc;

pub use agent_tasks::AgentTasks;
pub use merge::{merge, Conflict, FileResult, Merged};
pub use pool::run_parallel;
pub use results::{ResultsFile, Resumed, Status, TaskResult};
pub use tasks::{error_result, parse_tasks, run_patch_task, BatchTask};

/// How a task's tests are confined and what is linked into its sandbox, decided by the caller for
/// each task's repository (the CLI reads that repository's `[sandbox]` configuration).
#[derive(Debug, Clone, Default)]
pub struct TaskSandbox {
    pub confinement: hone_tools::ConfinePolicy,
    /// Ignored paths linked into the sandbox (`[sandbox] include`).
    pub include: Vec<String>,
}

/// The caller's rule: the [`TaskSandbox`] for a repository root.
pub type SandboxFor = Arc<dyn Fn(&Path) -> TaskSandbox + Send + Sync>;
