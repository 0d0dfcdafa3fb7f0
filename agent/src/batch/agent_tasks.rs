//! Running `hone batch` tasks that have no patch through the agent loop: one model shared by all
//! tasks (opened by the caller only when some task needs it), one sandboxed agent run per task, and
//! its diff (verified, or the best attempt when none passed) as the result. The repository is never
//! written to.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::results::{Status, TaskResult};
use super::tasks::{error_result, BatchTask};
use super::SandboxFor;
use crate::events::{NoEvents, RunStatus};
use crate::model::Model;
use crate::run::{run_task, RunDefaults, RunRequest};

/// What agent tasks share: the model and the configured run defaults.
#[derive(Clone)]
pub struct AgentTasks {
    model: Option<Arc<dyn Model>>,
    defaults: RunDefaults,
    sandbox_for: SandboxFor,
}

impl std::fmt::Debug for AgentTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentTasks")
            .field("model", &self.model.as_ref().map(|model| model.describe()))
            .field("defaults", &self.defaults)
            .finish()
    }
}

impl AgentTasks {
    /// `model` is `None` when every task has a patch (no model was opened); `sandbox_for` confines
    /// each task's tests as its repository's configuration says.
    pub fn new(
        model: Option<Arc<dyn Model>>,
        defaults: RunDefaults,
        sandbox_for: SandboxFor,
    ) -> Self {
        Self {
            model,
            defaults,
            sandbox_for,
        }
    }

    /// Run one task; the test timeout is `timeout`, the whole run's budget (unless configured)
    /// twice that.
    pub async fn run(&self, task: &BatchTask, timeout: Duration) -> TaskResult {
        let started = Instant::now();
        let Some(model) = &self.model else {
            return error_result(&task.id, 0.0, &"no model was opened for agent tasks");
        };
        let mut request = RunRequest::new(task.repo.clone(), task.task.clone());
        let sandbox = (self.sandbox_for)(&task.repo);
        request.confinement = sandbox.confinement;
        request.include = sandbox.include;
        request.files = task.files.clone();
        request.test_command = task.test.clone();
        request.test_timeout = timeout;
        self.defaults.apply(&mut request);
        request.budget = Some(request.budget.unwrap_or(timeout * 2));
        // The run only reads the repository: its dirty state is part of the task's sandbox.
        request.allow_dirty = true;
        // Batch workers already run tasks side by side.
        request.jobs = 1;
        match run_task(&request, model.as_ref(), &NoEvents).await {
            Ok(outcome) => {
                let summary = &outcome.summary;
                let passed = summary.status == RunStatus::Passed;
                TaskResult {
                    id: task.id.clone(),
                    status: if passed {
                        Status::Verified
                    } else {
                        Status::Failed
                    },
                    diff: summary.diff.clone(),
                    iterations: u32::try_from(summary.iterations).unwrap_or(u32::MAX),
                    seconds: started.elapsed().as_secs_f64(),
                    tokens: summary.prompt_tokens + summary.completion_tokens,
                    error: (!passed).then(|| summary.reason.clone()),
                }
            }
            Err(error) => error_result(&task.id, started.elapsed().as_secs_f64(), &error),
        }
    }
}
