//! The tasks of `hone batch`: parsing the JSON Lines file (`{"id", "task", "repo"?, "test"?,
//! "files"?, "patch"?}`, extra fields ignored so datasets can be used as they are) with errors
//! that name the line, and running one task. A `patch` task needs no model: its patch is applied and
//! verified in a sandbox by hone-tools exactly as `hone apply --check` would. Other tasks go to the
//! agent. No task ever writes to its repository: results are diffs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::results::{Status, TaskResult};
use super::SandboxFor;
use crate::{Error, Result};

/// One line of the tasks file, as written.
#[derive(Debug, Deserialize)]
struct TaskLine {
    id: serde_json::Value,
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    repo: Option<PathBuf>,
    #[serde(default)]
    test: Option<String>,
    #[serde(default)]
    files: Vec<String>,
    #[serde(default)]
    patch: Option<String>,
}

/// One task, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTask {
    pub id: String,
    /// What to do (may be empty for a patch task).
    pub task: String,
    /// The repository (absolute, or as given when it could not be made absolute).
    pub repo: PathBuf,
    pub test: Option<String>,
    pub files: Vec<String>,
    pub patch: Option<String>,
}

/// Parse a tasks file. Relative `repo` paths are resolved against `base` (the tasks file's folder);
/// a missing `repo` means `default_repo`. Blank lines are skipped. Any bad line, a duplicate id or a
/// missing repository folder is an error naming the line: nothing runs on bad input.
pub fn parse_tasks(text: &str, base: &Path, default_repo: &Path) -> Result<Vec<BatchTask>> {
    let mut tasks = Vec::new();
    let mut ids = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| Error::TaskLine {
            line: number,
            reason,
        };
        let parsed: TaskLine =
            serde_json::from_str(line).map_err(|error| bad(format!("not a task: {error}")))?;
        let id = match parsed.id {
            serde_json::Value::String(id) if !id.is_empty() => id,
            serde_json::Value::Number(number) => number.to_string(),
            other => {
                return Err(bad(format!(
                    "`id` must be a non-empty string or a number, not {other}"
                )))
            }
        };
        if !ids.insert(id.clone()) {
            return Err(bad(format!("id `{id}` appears twice; ids must be unique")));
        }
        let task = parsed.task.unwrap_or_default();
        if task.trim().is_empty() && parsed.patch.is_none() {
            return Err(bad(format!("task `{id}` has neither `task` nor `patch`")));
        }
        let repo = parsed
            .repo
            .map_or_else(|| default_repo.to_owned(), |repo| base.join(repo));
        if !repo.is_dir() {
            return Err(bad(format!(
                "repository {} of task `{id}` is not a folder",
                repo.display()
            )));
        }
        tasks.push(BatchTask {
            id,
            task,
            repo,
            test: parsed.test,
            files: parsed.files,
            patch: parsed.patch,
        });
    }
    Ok(tasks)
}

/// Verify a patch task in a sandbox of its repository (HEAD plus working-tree changes), confined
/// as `sandbox_for` says for that repository.
pub fn run_patch_task(
    task: &BatchTask,
    patch_text: &str,
    timeout: Duration,
    sandbox_for: &SandboxFor,
) -> TaskResult {
    let started = Instant::now();
    let outcome = verify(task, patch_text, timeout, sandbox_for);
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok((status, diff, error)) => TaskResult {
            id: task.id.clone(),
            status,
            diff,
            iterations: 0,
            seconds,
            tokens: 0,
            error,
        },
        Err(error) => error_result(&task.id, seconds, &error),
    }
}

/// A result for a task that could not run.
pub fn error_result(id: &str, seconds: f64, error: &dyn std::fmt::Display) -> TaskResult {
    TaskResult {
        id: id.to_owned(),
        status: Status::Error,
        diff: String::new(),
        iterations: 0,
        seconds,
        tokens: 0,
        error: Some(format!("{error:#}")),
    }
}

fn verify(
    task: &BatchTask,
    patch_text: &str,
    timeout: Duration,
    sandbox_for: &SandboxFor,
) -> hone_tools::Result<(Status, String, Option<String>)> {
    use hone_tools::{TestChoice, Verdict};

    let repo = hone_tools::Repository::discover(&task.repo)?;
    let patch = hone_tools::parse_patch(patch_text)?;
    let mut options = hone_tools::VerifyOptions::new(&repo);
    let sandbox = sandbox_for(repo.root());
    options.sandbox.confinement = sandbox.confinement;
    options.sandbox.link_ignored.extend(sandbox.include);
    options.timeout = timeout;
    if let Some(test) = &task.test {
        options.test = TestChoice::Command(test.clone());
    }
    let verification = match hone_tools::verify_patch(&repo, &patch, &options) {
        // No test command anywhere: the patch can still be checked to apply (status `applied`).
        Err(hone_tools::Error::NoTestCommand { .. }) => {
            options.test = TestChoice::Skip;
            hone_tools::verify_patch(&repo, &patch, &options)?
        }
        other => other?,
    };
    Ok(match verification.verdict {
        Verdict::Verified if verification.test.is_some() => {
            (Status::Verified, verification.diff, None)
        }
        Verdict::Verified => (Status::Applied, verification.diff, None),
        Verdict::EditFailed => (
            Status::Failed,
            String::new(),
            Some(hone_tools::render_for_people(&verification.apply)),
        ),
        Verdict::TestsFailed => {
            let why = verification.test.as_ref().map_or_else(
                || "the tests failed".to_owned(),
                hone_tools::describe_failure,
            );
            (Status::Failed, verification.diff, Some(why))
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn lines_are_validated_with_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("r")).unwrap();
        let text = "{\"id\": 1, \"task\": \"fix\", \"repo\": \"r\", \"extra\": true}\n\n{\"id\": \"b\", \"patch\": \"x\"}\n";
        let tasks = parse_tasks(text, dir.path(), Path::new("/")).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].id, "1");
        assert_eq!(tasks[0].repo, dir.path().join("r"));
        assert_eq!(tasks[1].repo, Path::new("/"));

        let duplicate = "{\"id\": \"a\", \"task\": \"x\"}\n{\"id\": \"a\", \"task\": \"y\"}\n";
        let error = parse_tasks(duplicate, dir.path(), dir.path()).unwrap_err();
        assert!(format!("{error:#}").contains("line 2"), "{error:#}");
        let empty = "{\"id\": \"a\"}\n";
        assert!(parse_tasks(empty, dir.path(), dir.path()).is_err());
        let missing = "{\"id\": \"a\", \"task\": \"x\", \"repo\": \"nope\"}\n";
        assert!(parse_tasks(missing, dir.path(), dir.path()).is_err());
    }
}
