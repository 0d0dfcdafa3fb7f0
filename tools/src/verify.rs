//! Apply + verify, the logic of `hone apply` shared by `hone batch` patch tasks, hooks and the
//! agent: apply a patch in a sandbox built from a repository state, run the tests there, report;
//! then, separately, apply a verified patch to the user's working tree or commit it.

use std::time::Duration;

use crate::edits::{ApplyOptions, ApplyReport, Patch};
use crate::error::{Error, Result};
use crate::repo::{Repository, TreeSource};
use crate::runner::TestReport;
use crate::sandbox::SandboxOptions;

/// Which test command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestChoice {
    /// Detect it from the project files (error `NoTestCommand` if none).
    Detect,
    /// Run this shell command.
    Command(String),
    /// Apply only; run nothing.
    Skip,
}

/// Options of `verify_patch`.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The state the patch applies to (default: HEAD + working-tree changes).
    pub source: TreeSource,
    pub test: TestChoice,
    pub timeout: Duration,
    pub output_cap: usize,
    pub sandbox: SandboxOptions,
    pub apply: ApplyOptions,
}

impl VerifyOptions {
    /// Defaults for `repo`: working-tree source, detected test command, shared cargo cache.
    pub fn new(repo: &Repository) -> Self {
        Self {
            source: TreeSource::WorkTree,
            test: TestChoice::Detect,
            timeout: crate::runner::DEFAULT_TIMEOUT,
            output_cap: crate::runner::DEFAULT_OUTPUT_CAP,
            sandbox: SandboxOptions::for_repository(repo),
            apply: ApplyOptions::default(),
        }
    }
}

/// The verdict of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Applied and the tests passed (or tests were skipped).
    Verified,
    /// Some block did not apply (nothing ran).
    EditFailed,
    /// Applied, but the tests failed or timed out.
    TestsFailed,
}

/// Result of `verify_patch`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verification {
    pub verdict: Verdict,
    pub apply: ApplyReport,
    /// The test run (None when the edit failed or tests were skipped).
    pub test: Option<TestReport>,
    /// Unified diff of the patch's effect on the source state.
    pub diff: String,
    #[serde(skip)]
    pub sandbox_time: Duration,
}

/// Apply `patch` in a sandbox of `options.source`, run the tests there, and report.
/// The user's tree and index are never touched.
pub fn verify_patch(repo: &Repository, patch: &Patch, options: &VerifyOptions) -> Result<Verification> {
    let _ = (repo, patch, options);
    Err(Error::Invalid("verify_patch: not implemented yet".into()))
}

/// Apply `patch` to the working tree (atomically; nothing written unless every block applies).
pub fn apply_to_worktree(repo: &Repository, patch: &Patch, options: &ApplyOptions) -> Result<ApplyReport> {
    crate::edits::apply_patch(repo.root(), patch, options)
}

/// Apply `patch` to the working tree and commit exactly its changes on top of HEAD (other staged
/// changes stay staged, not committed). The touched paths must be clean. Returns the commit id.
pub fn commit_patch(repo: &Repository, patch: &Patch, message: &str, options: &ApplyOptions) -> Result<(ApplyReport, Option<git2::Oid>)> {
    let _ = (repo, patch, message, options);
    Err(Error::Invalid("commit_patch: not implemented yet".into()))
}
