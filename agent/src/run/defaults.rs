//! The run settings that come from configuration rather than from a task: resolved once by the CLI
//! (config file, `HONE_*`, flags) and applied the same way by every caller of the agent (`hone run`'s
//! helpers, hook fixes, `hone batch` agent tasks, `hone refactor`), so none of them picks its own
//! fallback.

use std::time::Duration;

use super::RunRequest;

/// Configured defaults for agent runs; `None` keeps [`RunRequest::new`]'s default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunDefaults {
    /// The test command when a task names none.
    pub test_command: Option<String>,
    /// Candidates per iteration (`None`: the backend's choice).
    pub candidates: Option<usize>,
    /// Iterations of generate → test → feedback (at least 1).
    pub max_iterations: Option<usize>,
    /// Wall-clock budget of one run.
    pub budget: Option<Duration>,
}

impl RunDefaults {
    /// Fill `request` from these defaults: fields the caller already set (a task's own test
    /// command, a budget) are kept.
    pub fn apply(&self, request: &mut RunRequest) {
        if request.test_command.is_none() {
            request.test_command.clone_from(&self.test_command);
        }
        if self.candidates.is_some() {
            request.candidates = self.candidates;
        }
        if let Some(iterations) = self.max_iterations {
            request.max_iterations = iterations.max(1);
        }
        if request.budget.is_none() {
            request.budget = self.budget;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_values_fill_only_what_the_caller_left_open() {
        let defaults = RunDefaults {
            test_command: Some("make test".into()),
            candidates: Some(3),
            max_iterations: Some(0),
            budget: Some(Duration::from_secs(90)),
        };
        let mut request = RunRequest::new("/repo", "task");
        request.test_command = Some("pytest".into());
        defaults.apply(&mut request);
        assert_eq!(request.test_command.as_deref(), Some("pytest"));
        assert_eq!(request.candidates, Some(3));
        assert_eq!(
            request.max_iterations, 1,
            "zero iterations is clamped to one"
        );
        assert_eq!(request.budget, Some(Duration::from_secs(90)));

        let mut untouched = RunRequest::new("/repo", "task");
        RunDefaults::default().apply(&mut untouched);
        assert_eq!(untouched.max_iterations, 4);
        assert_eq!(untouched.candidates, None);
        assert_eq!(untouched.test_command, None);
    }
}
