//! Evaluating candidates: each gets its own sandbox (the run's base state plus the changes carried
//! from earlier iterations), its edits are applied there atomically, changes identical to an earlier
//! failure are skipped, and the rest are tested concurrently, at most `jobs` at a time, each test on
//! a blocking thread. Once one candidate passes, candidates not yet started are skipped. A
//! candidate that passes by running fewer tests than the baseline, by editing tests or by adding
//! skip markers (`hone_tools::runner::integrity`) does not count as passing unless test edits are
//! allowed; the reason goes into its report.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use hone_tools::{
    ApplyOptions, ApplyReport, Patch, Repository, Sandbox, SandboxOptions, TestReport, TreeSource,
};

use crate::changes::{ChangeSet, FileChange};
use crate::{Error, Result};

/// A candidate whose edits applied in its sandbox.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub index: usize,
    pub sandbox: Sandbox,
    /// Base state → this candidate (carried changes included).
    pub total: ChangeSet,
}

/// Why a candidate was not tested.
#[derive(Debug)]
pub(crate) enum NotTested {
    Apply(ApplyReport),
    /// Same change as an earlier failed candidate (its hash).
    Duplicate,
}

/// Fingerprint of a whole change, to recognise a candidate that was already tested.
pub(crate) fn fingerprint(changes: &ChangeSet) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    changes.hash(&mut hasher);
    hasher.finish()
}

/// Convert the tools' per-file changes (moves included) to a change set.
pub(crate) fn change_set(changes: &[hone_tools::FileChange]) -> ChangeSet {
    let mut files = Vec::new();
    for change in changes {
        if let Some(from) = &change.moved_from {
            files.push(FileChange {
                path: from.clone(),
                before: change.before.clone(),
                after: None,
                executable: false,
            });
            // The new path keeps the mode of the file it was moved from.
            files.push(FileChange {
                path: change.path.clone(),
                before: None,
                after: change.after.clone(),
                executable: change.executable,
            });
        } else {
            files.push(FileChange {
                path: change.path.clone(),
                before: change.before.clone(),
                after: change.after.clone(),
                executable: change.executable,
            });
        }
    }
    ChangeSet::new(files)
}

/// Write the carried changes into a fresh sandbox.
fn write_carried(sandbox: &Sandbox, carried: &ChangeSet) -> Result<()> {
    for file in &carried.files {
        let path = sandbox.root().join(&file.path);
        let result = match &file.after {
            Some(content) => path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, content))
                .and_then(|()| keep_executable(&path, file.executable)),
            None => std::fs::remove_file(&path).or_else(|error| {
                if error.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(error)
                }
            }),
        };
        result
            .map_err(|source| Error::io(format!("preparing sandbox file {}", file.path), source))?;
    }
    Ok(())
}

/// Give a carried file that is executable its exec bits (a moved script must still run).
#[cfg(unix)]
fn keep_executable(path: &std::path::Path, executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !executable {
        return Ok(());
    }
    let mode = std::fs::metadata(path)?.permissions().mode();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o111))
}

#[cfg(not(unix))]
fn keep_executable(_path: &std::path::Path, _executable: bool) -> std::io::Result<()> {
    Ok(())
}

/// Build the sandbox for one candidate and apply its edits there.
pub(crate) fn prepare(
    repo: &Repository,
    source: &TreeSource,
    options: &SandboxOptions,
    carried: &ChangeSet,
    index: usize,
    patch: &Patch,
    failed: &HashSet<u64>,
) -> Result<std::result::Result<Prepared, NotTested>> {
    let sandbox = Sandbox::create(repo, source, options)?;
    write_carried(&sandbox, carried)?;
    let report = sandbox.apply(patch, &ApplyOptions::default())?;
    if !report.is_success() {
        return Ok(Err(NotTested::Apply(report)));
    }
    let total = carried.then(&change_set(&report.changes));
    if failed.contains(&fingerprint(&total)) {
        return Ok(Err(NotTested::Duplicate));
    }
    Ok(Ok(Prepared {
        index,
        sandbox,
        total,
    }))
}

/// How to run the tests.
#[derive(Debug, Clone)]
pub(crate) struct TestSettings {
    pub command: String,
    pub timeout: Duration,
    pub jobs: usize,
    /// Shared cargo target folder of the repository; each concurrent slot gets its own subfolder so
    /// parallel builds do not wait on cargo's lock.
    pub cargo_target_dir: Option<PathBuf>,
    /// Tests the baseline run counted (see [`removed_tests`]).
    pub baseline_tests: Option<usize>,
    /// Candidates may edit tests (see [`tampered_tests`]).
    pub allow_test_edits: bool,
}

/// One candidate after testing.
#[derive(Debug)]
pub(crate) struct Tested {
    pub candidate: Prepared,
    /// `None` when skipped because another candidate passed first.
    pub report: Option<Result<TestReport>>,
    /// It passed only by running fewer tests than the baseline or by editing tests.
    pub removed_tests: bool,
}

/// Tests a run counted, when its framework's output was recognised.
pub(crate) fn test_count(report: &TestReport) -> Option<usize> {
    match (report.tests_passed, report.tests_failed) {
        (None, None) => None,
        (passed, failed) => Some(passed.unwrap_or(0) + failed.unwrap_or(0)),
    }
}

/// A run that "passes" with fewer tests than the baseline removed or disabled tests: that is not a
/// fix. Marks the report failed (with the reason in its output) and returns true.
pub(crate) fn removed_tests(report: &mut TestReport, baseline: Option<usize>) -> bool {
    let (true, Some(before), Some(now)) = (report.passed, baseline, test_count(report)) else {
        return false;
    };
    if now >= before {
        return false;
    }
    report.passed = false;
    report.output.push_str(&format!(
        "\n[hone] the tests passed, but only {now} ran where {before} ran before the change: do not delete, rename or disable tests\n"
    ));
    report
        .failed_tests
        .push(format!("{} test(s) no longer run", before - now));
    true
}

/// A run that "passes" with a change that edits tests or adds skip markers did not fix the code:
/// marks the report failed (the reasons in its output and failing tests) and returns true.
pub(crate) fn tampered_tests(report: &mut TestReport, changes: &ChangeSet) -> bool {
    if !report.passed {
        return false;
    }
    let files: Vec<hone_tools::runner::integrity::ChangedFile<'_>> = changes
        .files
        .iter()
        .map(|file| hone_tools::runner::integrity::ChangedFile {
            path: &file.path,
            before: file.before.as_deref(),
            after: file.after.as_deref(),
        })
        .collect();
    let reasons = hone_tools::runner::integrity::tampering(&files);
    if reasons.is_empty() {
        return false;
    }
    report.passed = false;
    report.output.push_str(&format!(
        "\n[hone] the tests passed, but the change {}: fix the code, not the tests\n",
        reasons.join("; ")
    ));
    report.failed_tests.extend(reasons);
    true
}

/// Test the candidates concurrently; `on_start` / `on_finish` report progress.
pub(crate) async fn test_all(
    prepared: Vec<Prepared>,
    settings: &TestSettings,
    on_start: &(dyn Fn(usize) + Send + Sync),
    on_finish: &(dyn Fn(usize, &Result<TestReport>) + Send + Sync),
) -> Vec<Tested> {
    let jobs = settings.jobs.max(1);
    let passed = Arc::new(AtomicBool::new(false));
    let slots = Arc::new(Mutex::new((0..jobs).rev().collect::<Vec<usize>>()));
    let futures = prepared.into_iter().map(|candidate| {
        let passed = passed.clone();
        let slots = slots.clone();
        async move {
            let index = candidate.index;
            if passed.load(Ordering::SeqCst) {
                return Tested {
                    candidate,
                    report: None,
                    removed_tests: false,
                };
            }
            on_start(index);
            let slot = slots
                .lock()
                .ok()
                .and_then(|mut free| free.pop())
                .unwrap_or(0);
            let mut options = candidate.sandbox.run_options();
            options.timeout = settings.timeout;
            if let (Some(dir), true) = (&settings.cargo_target_dir, jobs > 1) {
                let dir = dir.join(format!("slot-{slot}"));
                options
                    .extra_env
                    .retain(|(name, _)| name != "CARGO_TARGET_DIR");
                options.extra_env.push((
                    "CARGO_TARGET_DIR".to_owned(),
                    dir.to_string_lossy().into_owned(),
                ));
            }
            let command = settings.command.clone();
            let sandbox_root = candidate.sandbox.root().to_path_buf();
            let report = tokio::task::spawn_blocking(move || {
                options.cwd = sandbox_root;
                let prefix = format!("{}/", options.cwd.display());
                hone_tools::run_command(&command, &options)
                    .map(|report| relative_paths(report, &prefix))
                    .map_err(Error::from)
            })
            .await
            .unwrap_or_else(|error| Err(Error::Backend(format!("test thread failed: {error}"))));
            if let Ok(mut free) = slots.lock() {
                free.push(slot);
            }
            let mut report = report;
            let removed = report.as_mut().is_ok_and(|report| {
                !settings.allow_test_edits
                    && (removed_tests(report, settings.baseline_tests)
                        || tampered_tests(report, &candidate.total))
            });
            if report.as_ref().is_ok_and(|report| report.passed) {
                passed.store(true, Ordering::SeqCst);
            }
            on_finish(index, &report);
            Tested {
                candidate,
                report: Some(report),
                removed_tests: removed,
            }
        }
    });
    let mut results: Vec<Tested> = futures::stream::iter(futures)
        .buffer_unordered(jobs)
        .collect()
        .await;
    results.sort_by_key(|tested| tested.candidate.index);
    results
}

/// Test output with the sandbox's temporary folder removed from paths, so the model (and the
/// failure locations) see repository-relative paths.
pub(crate) fn relative_paths(mut report: TestReport, prefix: &str) -> TestReport {
    report.output = report.output.replace(prefix, "");
    report
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn passing() -> TestReport {
        TestReport {
            command: "pytest".into(),
            passed: true,
            exit_code: Some(0),
            timed_out: false,
            duration: Duration::from_millis(5),
            output: String::new(),
            output_truncated: false,
            framework: None,
            tests_passed: Some(3),
            tests_failed: Some(0),
            failed_tests: Vec::new(),
            confinement: hone_tools::Mechanism::Bubblewrap,
        }
    }

    #[test]
    fn a_skip_marker_or_a_test_edit_is_not_a_pass() {
        let skip = ChangeSet::new(vec![FileChange {
            path: "calc.py".into(),
            before: Some("def add(a, b):\n    return a - b\n".into()),
            after: Some(
                "import unittest\n@unittest.skip('x')\ndef add(a, b):\n    return a - b\n".into(),
            ),
            executable: false,
        }]);
        let mut report = passing();
        assert!(tampered_tests(&mut report, &skip));
        assert!(!report.passed);
        assert!(
            report.output.contains("@unittest.skip"),
            "{}",
            report.output
        );

        let edit = ChangeSet::new(vec![FileChange {
            path: "tests/test_calc.py".into(),
            before: Some("assertEqual(add(2, 2), 4)\n".into()),
            after: Some("assertTrue(True)\n".into()),
            executable: false,
        }]);
        let mut report = passing();
        assert!(tampered_tests(&mut report, &edit));
        assert!(report
            .failed_tests
            .iter()
            .any(|reason| reason.contains("tests/test_calc.py")));

        let fix = ChangeSet::new(vec![FileChange {
            path: "calc.py".into(),
            before: Some("def add(a, b):\n    return a - b\n".into()),
            after: Some("def add(a, b):\n    return a + b\n".into()),
            executable: false,
        }]);
        let mut report = passing();
        assert!(!tampered_tests(&mut report, &fix));
        assert!(report.passed);
    }

    #[cfg(unix)]
    #[test]
    fn a_renamed_executable_stays_executable_after_apply() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let patch = hone_tools::parse_patch(
            "diff --git a/run.sh b/bin/run.sh\nsimilarity index 100%\nrename from run.sh\nrename to bin/run.sh\n",
        )
        .unwrap();
        let report = hone_tools::plan_patch(dir.path(), &patch, &ApplyOptions::default()).unwrap();
        assert!(report.is_success(), "{report:?}");
        let changes = change_set(&report.changes);
        assert!(
            changes.unified_diff().contains("new file mode 100755"),
            "{}",
            changes.unified_diff()
        );

        crate::delivery::apply_to_tree(dir.path(), &changes).unwrap();
        assert!(!script.exists());
        let moved = std::fs::metadata(dir.path().join("bin/run.sh")).unwrap();
        assert_ne!(moved.permissions().mode() & 0o111, 0, "still executable");

        // The same change carried into a fresh sandbox folder keeps the mode too.
        let carried = tempfile::tempdir().unwrap();
        for file in &changes.files {
            if let Some(content) = &file.after {
                let path = carried.path().join(&file.path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, content).unwrap();
                keep_executable(&path, file.executable).unwrap();
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_ne!(mode & 0o111, 0);
            }
        }
    }
}
