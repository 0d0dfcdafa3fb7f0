//! Asking the agent for a fix of staged content that fails its check (`hook.fix`): the agent runs
//! on a sandbox of the index (never the working tree), starting from the failure the hook saw, and
//! hands back a verified diff against the staged content.

use std::path::Path;
use std::time::{Duration, Instant};

use hone_agent::run::{run_task_blocking, RunRequest};
use hone_agent::NoEvents;
use hone_tools::{TestReport, TreeSource};

use super::pre_commit::say;
use super::settings::HookSettings;

/// A verified fix of the staged content as a unified diff; `None` when no model is configured or
/// no candidate passed within `budget` (the reason is printed).
pub fn propose_fix(
    top: &Path,
    settings: &HookSettings,
    report: &TestReport,
    budget: Duration,
) -> anyhow::Result<Option<String>> {
    let started = Instant::now();
    let Some(backend) = super::model::for_hooks(&settings.config, budget) else {
        say("hook.fix: no model configured or reachable (set `backend` and `model` in .hone.toml)");
        return Ok(None);
    };
    let remaining = budget.saturating_sub(started.elapsed());
    say(&format!(
        "looking for a fix (up to {:.0} s)...",
        remaining.as_secs_f64()
    ));
    let mut request = RunRequest::new(
        top,
        format!(
            "The staged changes fail the check `{}`. Fix the code so that the check passes; do not \
             weaken, skip or delete tests.",
            report.command
        ),
    );
    request.source = TreeSource::Index;
    crate::confinement::configure_request(&mut request, top);
    request.allow_dirty = true;
    request.test_command = Some(report.command.clone());
    request.test_timeout = remaining;
    request.failure_output = Some(report.output.clone());
    request.baseline = false;
    // The failure output already points at the lines; a plan call would only spend the budget.
    request.plan = false;
    request.budget = Some(remaining);
    settings.config.run_defaults().apply(&mut request);
    let outcome = match run_task_blocking(&request, backend.model.as_ref(), &NoEvents) {
        Ok(outcome) => outcome,
        Err(error) => {
            say(&format!("hook.fix: the agent could not run: {error}"));
            return Ok(None);
        }
    };
    if !outcome.passed() || outcome.changes.is_empty() {
        say(&format!(
            "hook.fix: no verified fix ({})",
            outcome.summary.reason
        ));
        return Ok(None);
    }
    Ok(Some(outcome.changes.unified_diff()))
}
