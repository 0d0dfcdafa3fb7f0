//! Running `hone batch` tasks that have no patch through the agent loop: one model shared by all
//! workers (opened only when some task needs it), one sandboxed agent run per task, and its diff
//! (verified, or the best attempt when none passed) as the result. The repository is never
//! written to.

use std::time::{Duration, Instant};

use hone_agent::run::{run_task_blocking, RunRequest};
use hone_agent::{NoEvents, RunStatus};

use super::model::ModelArgs;
use super::results::{Status, TaskResult};
use super::tasks::{error_result, BatchTask};
use crate::backends::Backend;
use crate::config::Config;

/// What agent tasks share.
#[derive(Debug)]
pub struct AgentRunner {
    backend: Option<Backend>,
    config: Config,
}

impl AgentRunner {
    /// Set up for `tasks`: the model is opened only when one of them has no patch.
    pub fn for_tasks(
        tasks: &[BatchTask],
        args: &ModelArgs,
        config: Config,
    ) -> anyhow::Result<Self> {
        let backend = if tasks.iter().any(|task| task.patch.is_none()) {
            Some(super::model::open(args, &config)?)
        } else {
            None
        };
        Ok(Self { backend, config })
    }

    /// For the scripted backend: fail when calls it expected were not made.
    pub fn finish(&self) -> anyhow::Result<()> {
        self.backend.as_ref().map_or(Ok(()), Backend::finish)
    }

    /// Run one task; the test timeout is `timeout`, the whole run's budget twice that.
    pub fn run(&self, task: &BatchTask, timeout: Duration) -> TaskResult {
        let started = Instant::now();
        let Some(backend) = &self.backend else {
            return error_result(
                &task.id,
                0.0,
                &anyhow::anyhow!("no model was opened for agent tasks"),
            );
        };
        let mut request = RunRequest::new(task.repo.clone(), task.task.clone());
        crate::commands::sandbox::configure_request(&mut request, &task.repo);
        request.files = task.files.clone();
        request.test_command = task.test.clone().or_else(|| self.config.test.clone());
        request.test_timeout = timeout;
        request.candidates = self.config.candidates;
        request.max_iterations = self.config.max_iterations.unwrap_or(4).max(1);
        request.budget = Some(self.config.budget.unwrap_or(timeout * 2));
        // The run only reads the repository: its dirty state is part of the task's sandbox.
        request.allow_dirty = true;
        // Batch workers already run tasks side by side.
        request.jobs = 1;
        match run_task_blocking(&request, backend.model.as_ref(), &NoEvents) {
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
            Err(error) => error_result(&task.id, started.elapsed().as_secs_f64(), &error.into()),
        }
    }
}
