//! Sandbox and test, the one implementation of it: [`test_tree`] tests a repository state as it is
//! (the hooks' check, the agent's baseline); [`verify_patch`] (`hone apply`, `hone batch` patch
//! tasks) applies a patch in between. Both find the command with [`test_command`] and run it with
//! [`run_tests`], which the agent also uses for its candidates' sandboxes. Apply + verify: apply a
//! patch in a sandbox built from a repository state, run the tests there, report;
//! then, separately, apply a verified patch to the user's working tree or commit it. A patch that
//! tampers with the tests (`runner::integrity`) is not verified unless the options allow test
//! edits: its test report is marked failed with the reasons.

use std::path::Path;
use std::time::Duration;

use crate::edits::{ApplyOptions, ApplyReport, Patch};
use crate::error::{Error, Result};
use crate::repo::{Repository, TreeSource};
use crate::runner::integrity::{tampering, ChangedFile};
use crate::runner::{detect_test_command, TestReport};
use crate::sandbox::{Sandbox, SandboxOptions};

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
    /// Let a patch edit tests or add skip markers and still count as verified.
    pub allow_test_edits: bool,
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
            allow_test_edits: false,
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
    /// Why the patch tampers with the tests (empty when it does not, or when allowed).
    pub test_integrity: Vec<String>,
    #[serde(skip)]
    pub sandbox_time: Duration,
}

/// The command `test` names for the tree in `sandbox`; `None` when tests are skipped or none was
/// detected.
pub fn test_command(sandbox: &Sandbox, test: &TestChoice) -> Option<String> {
    match test {
        TestChoice::Command(command) => Some(command.clone()),
        TestChoice::Skip => None,
        TestChoice::Detect => detect_test_command(sandbox.root()).map(|detected| detected.command),
    }
}

/// Run `command` in `sandbox`, killed after `timeout`, its output capped at `output_cap` bytes.
pub fn run_tests(
    sandbox: &Sandbox,
    command: &str,
    timeout: Duration,
    output_cap: usize,
) -> Result<TestReport> {
    let mut run = sandbox.run_options();
    run.timeout = timeout;
    run.output_cap = output_cap;
    sandbox.run(command, &run)
}

/// A repository state tested as it is, with no patch.
#[derive(Debug)]
pub struct TreeTest {
    pub report: TestReport,
    /// Where the sandbox was (gone now): paths under it in the output are the repository's.
    pub sandbox_root: std::path::PathBuf,
    pub files: usize,
    pub sandbox_time: Duration,
}

/// Export `source` into a sandbox and run its tests there; `Ok(None)` when `test` names no command
/// (skipped, or nothing detected). The pre-commit / pre-push check and the agent's baseline.
pub fn test_tree(
    repo: &Repository,
    source: &TreeSource,
    sandbox: &SandboxOptions,
    test: &TestChoice,
    timeout: Duration,
) -> Result<Option<TreeTest>> {
    let sandbox = Sandbox::create(repo, source, sandbox)?;
    let Some(command) = test_command(&sandbox, test) else {
        return Ok(None);
    };
    let report = run_tests(
        &sandbox,
        &command,
        timeout,
        crate::runner::DEFAULT_OUTPUT_CAP,
    )?;
    Ok(Some(TreeTest {
        report,
        sandbox_root: sandbox.root().to_path_buf(),
        files: sandbox.file_count(),
        sandbox_time: sandbox.creation_time(),
    }))
}

/// Apply `patch` in a sandbox of `options.source`, run the tests there, and report.
/// The user's tree and index are never touched.
pub fn verify_patch(
    repo: &Repository,
    patch: &Patch,
    options: &VerifyOptions,
) -> Result<Verification> {
    let sandbox = Sandbox::create(repo, &options.source, &options.sandbox)?;
    let command = test_command(&sandbox, &options.test);
    if command.is_none() && options.test == TestChoice::Detect {
        return Err(Error::NoTestCommand {
            root: repo.root().to_path_buf(),
        });
    }
    let apply = sandbox.apply(patch, &options.apply)?;
    let diff = apply.diff();
    let sandbox_time = sandbox.creation_time();
    if !apply.is_success() {
        return Ok(Verification {
            verdict: Verdict::EditFailed,
            apply,
            test: None,
            diff,
            test_integrity: Vec::new(),
            sandbox_time,
        });
    }
    let Some(command) = command else {
        return Ok(Verification {
            verdict: Verdict::Verified,
            apply,
            test: None,
            diff,
            test_integrity: Vec::new(),
            sandbox_time,
        });
    };
    let mut test = run_tests(&sandbox, &command, options.timeout, options.output_cap)?;
    let test_integrity = if options.allow_test_edits {
        Vec::new()
    } else {
        tampering_of(&apply)
    };
    if !test_integrity.is_empty() && test.passed {
        test.passed = false;
        test.output.push_str(&format!(
            "\n[hone] the tests passed, but the patch is not verified: it {} (this task may not change tests)\n",
            test_integrity.join("; ")
        ));
        test.failed_tests.extend(test_integrity.iter().cloned());
    }
    let verdict = if test.passed {
        Verdict::Verified
    } else {
        Verdict::TestsFailed
    };
    Ok(Verification {
        verdict,
        apply,
        test: Some(test),
        diff,
        test_integrity,
        sandbox_time,
    })
}

/// The test-tampering reasons of an applied patch.
fn tampering_of(apply: &ApplyReport) -> Vec<String> {
    let mut changed = Vec::new();
    for change in &apply.changes {
        if let Some(from) = &change.moved_from {
            changed.push(ChangedFile {
                path: from,
                before: change.before.as_deref(),
                after: None,
            });
            changed.push(ChangedFile {
                path: &change.path,
                before: None,
                after: change.after.as_deref(),
            });
        } else {
            changed.push(ChangedFile {
                path: &change.path,
                before: change.before.as_deref(),
                after: change.after.as_deref(),
            });
        }
    }
    tampering(&changed)
}

/// Apply `patch` to the working tree (atomically; nothing written unless every block applies).
pub fn apply_to_worktree(
    repo: &Repository,
    patch: &Patch,
    options: &ApplyOptions,
) -> Result<ApplyReport> {
    crate::edits::apply_patch(repo.root(), patch, options)
}

/// Apply `patch` to the working tree and commit exactly its changes on top of HEAD (other staged
/// changes stay staged, not committed). The touched paths must be clean. Returns the commit id.
pub fn commit_patch(
    repo: &Repository,
    patch: &Patch,
    message: &str,
    options: &ApplyOptions,
) -> Result<(ApplyReport, Option<git2::Oid>)> {
    let git = repo.git();
    let signature = git.signature().map_err(|_| {
        Error::Invalid("git has no author identity: set it with `git config user.name` and `git config user.email`".into())
    })?;
    if git.state() != git2::RepositoryState::Clean {
        let (operation, abort) = match git.state() {
            git2::RepositoryState::Merge => ("a merge", "git merge --abort"),
            git2::RepositoryState::Rebase
            | git2::RepositoryState::RebaseInteractive
            | git2::RepositoryState::RebaseMerge => ("a rebase", "git rebase --abort"),
            git2::RepositoryState::CherryPick | git2::RepositoryState::CherryPickSequence => {
                ("a cherry-pick", "git cherry-pick --abort")
            }
            git2::RepositoryState::Revert | git2::RepositoryState::RevertSequence => {
                ("a revert", "git revert --abort")
            }
            git2::RepositoryState::Bisect => ("a bisect", "git bisect reset"),
            _ => ("a `git am`", "git am --abort"),
        };
        return Err(Error::OperationInProgress { operation, abort });
    }
    for path in patch.paths() {
        let status = repo.file_status(&path)?;
        if status.staged.is_some() || status.unstaged.is_some() || status.conflicted {
            return Err(Error::UncommittedChanges { path });
        }
    }
    let mut report = crate::edits::plan_patch(repo.root(), patch, options)?;
    if !report.is_success() {
        return Ok((report, None));
    }
    let head = repo
        .head_commit()?
        .map(|oid| git.find_commit(oid))
        .transpose()?;
    // The commit holds HEAD plus exactly this patch, whatever else is staged. Files, index and
    // branch move together through one journal (a crash leaves all three old or all three new).
    let mut transaction = crate::edits::apply::Transaction::begin(repo.root())?;
    let index_target = git.path().join("index");
    let staged_index = transaction.stage_index(&index_target);
    if index_target.exists() {
        std::fs::copy(&index_target, &staged_index)
            .map_err(|error| Error::io(&staged_index, error))?;
    }
    let mut tree_index = git2::Index::new()?;
    if let Some(head) = &head {
        tree_index.read_tree(&head.tree()?)?;
    }
    let mut user_index = git2::Index::open(&staged_index)?;
    for change in &report.changes {
        if let Some(from) = &change.moved_from {
            tree_index.remove_path(Path::new(from))?;
            user_index.remove_path(Path::new(from))?;
        }
        match &change.after {
            Some(content) => {
                let mode = if change.executable {
                    0o100755
                } else {
                    0o100644
                };
                let blob = git.blob(content.as_bytes())?;
                let entry = index_entry(&change.path, mode, blob, content.len());
                tree_index.add(&entry)?;
                // A zero stat makes git re-read the file once, which then matches the blob.
                user_index.add(&entry)?;
            }
            None => {
                tree_index.remove_path(Path::new(&change.path))?;
                user_index.remove_path(Path::new(&change.path))?;
            }
        }
    }
    user_index.write()?;
    let tree = git.find_tree(tree_index.write_tree_to(git)?)?;
    let parents: Vec<&git2::Commit<'_>> = head.iter().collect();
    // The commit object only; the branch moves with the files in the transaction.
    let oid = git.commit(None, &signature, &signature, message, &tree, &parents)?;
    let reference = match git.find_reference("HEAD")?.symbolic_target() {
        Some(branch) => branch.to_string(),
        None => "HEAD".to_string(),
    };
    transaction.move_head(&reference, head.as_ref().map(git2::Commit::id), oid);
    transaction.commit(&report.changes)?;
    report.written = true;
    Ok((report, Some(oid)))
}

fn index_entry(path: &str, mode: u32, id: git2::Oid, size: usize) -> git2::IndexEntry {
    let zero = git2::IndexTime::new(0, 0);
    git2::IndexEntry {
        ctime: zero,
        mtime: zero,
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: size as u32,
        id,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}
