//! Running the check/test command on a tree that is not the working tree: the staged content
//! (pre-commit) or a commit (pre-push), materialised in a hone-tools sandbox and tested there by
//! hone-tools' runner, so what is verified is exactly what will be committed or pushed. The
//! command is confined as `[sandbox]` says (strict by default), like every test hone runs.

use std::path::Path;
use std::time::Duration;

use hone_tools::{
    detect_test_command, Repository, Sandbox, SandboxOptions, TestReport, TreeSource,
};

/// What checking a tree gave.
#[derive(Debug)]
pub enum Check {
    /// No command configured and none detected: nothing was run.
    NoCommand,
    Ran(TestReport),
}

/// Export `source` of the repository at `top` and run `command` (or the detected test command) in
/// it, killing it after `timeout`.
pub fn check_tree(
    top: &Path,
    source: &TreeSource,
    command: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Check> {
    let repo = Repository::discover(top)?;
    let config = crate::config::load(Some(repo.root()))?;
    let mut options = SandboxOptions::for_repository(&repo);
    options.confinement = crate::confinement::policy_for_tests(&config, None);
    options
        .link_ignored
        .extend(config.sandbox.include.iter().cloned());
    let sandbox = Sandbox::create(&repo, source, &options)?;
    let command = match command {
        Some(command) => command.to_owned(),
        None => match detect_test_command(sandbox.root()) {
            Some(detected) => detected.command,
            None => return Ok(Check::NoCommand),
        },
    };
    let mut options = sandbox.run_options();
    options.timeout = timeout;
    let report = sandbox.run(&command, &options)?;
    tracing::debug!(
        files = sandbox.file_count(),
        sandbox_ms = sandbox.creation_time().as_millis(),
        test_ms = report.duration.as_millis(),
        "checked {source:?}"
    );
    Ok(Check::Ran(report))
}
