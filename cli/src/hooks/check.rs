//! Running the check/test command on a tree that is not the working tree: the staged content
//! (pre-commit) or a commit (pre-push), materialised in a hone-tools sandbox and tested there by
//! hone-tools' runner, so what is verified is exactly what will be committed or pushed. The
//! command is confined as `[sandbox]` says (strict by default), like every test hone runs.

use std::path::Path;
use std::time::Duration;

use hone_tools::verify::{test_tree, TestChoice};
use hone_tools::{Repository, SandboxOptions, TestReport, TreeSource};

/// What checking a tree gave.
#[derive(Debug)]
pub enum Check {
    /// No command configured and none detected: nothing was run.
    NoCommand,
    Ran(TestReport),
}

/// Export `source` of the repository at `top` and run `command` (or the detected test command) in
/// it, killing it after `timeout` (`hone_tools::verify::test_tree`, as the agent's baseline).
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
    let test = command.map_or(TestChoice::Detect, |command| {
        TestChoice::Command(command.to_owned())
    });
    let Some(tested) = test_tree(&repo, source, &options, &test, timeout)? else {
        return Ok(Check::NoCommand);
    };
    tracing::debug!(
        files = tested.files,
        sandbox_ms = tested.sandbox_time.as_millis(),
        test_ms = tested.report.duration.as_millis(),
        "checked {source:?}"
    );
    Ok(Check::Ran(tested.report))
}
