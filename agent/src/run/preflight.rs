//! The checks a run makes before anything expensive: the repository is found, no merge is in
//! progress, the tree is clean (or dirt is allowed) and there is a test command. Callers that load
//! a model (gigabytes, minutes) run [`preflight`] first, so a run that cannot start fails in
//! milliseconds; [`super::run_task`] runs the same checks again, so no caller can skip them.

use std::path::PathBuf;

use hone_tools::{Repository, TreeSource};

use super::RunRequest;
use crate::{Error, Result};

/// What the checks found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    /// The repository's work tree.
    pub root: PathBuf,
    /// The test command: the request's, or the one detected from the project.
    pub test_command: String,
}

/// Check that `request` can start, without touching any model.
pub fn preflight(request: &RunRequest) -> Result<Preflight> {
    let repo = Repository::discover(&request.repo)?;
    check_tree(request, &repo)?;
    let root = repo.root().to_path_buf();
    let test_command = match &request.test_command {
        Some(command) => command.clone(),
        None => hone_tools::detect_test_command(&root)
            .map(|detected| detected.command)
            .ok_or_else(|| hone_tools::Error::NoTestCommand { root: root.clone() })?,
    };
    Ok(Preflight { root, test_command })
}

/// A run from the working tree needs no merge in progress and, unless allowed, no uncommitted
/// changes to tracked files.
fn check_tree(request: &RunRequest, repo: &Repository) -> Result<()> {
    if request.source != TreeSource::WorkTree {
        return Ok(());
    }
    if repo.git_dir().join("MERGE_HEAD").exists() {
        return Err(Error::MergeInProgress);
    }
    if !request.allow_dirty && repo.has_tracked_changes()? {
        return Err(Error::DirtyTree);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn repository(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            std::fs::write(dir.path().join(path), content).unwrap();
        }
        let git = git2::Repository::init(dir.path()).unwrap();
        let mut index = git.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::now("Test", "test@example.com").unwrap();
        git.commit(Some("HEAD"), &signature, &signature, "initial", &tree, &[])
            .unwrap();
        dir
    }

    #[test]
    fn no_test_command_is_found_before_any_model_is_needed() {
        let dir = repository(&[("notes.txt", "nothing to test\n")]);
        let request = RunRequest::new(dir.path(), "fix it");
        let error = preflight(&request).unwrap_err();
        assert!(
            matches!(error, Error::Tools(hone_tools::Error::NoTestCommand { .. })),
            "{error}"
        );
    }

    #[test]
    fn a_given_or_detected_test_command_passes() {
        let dir = repository(&[("Cargo.toml", "[package]\nname = \"x\"\n")]);
        let mut request = RunRequest::new(dir.path(), "fix it");
        let found = preflight(&request).unwrap();
        assert!(found.test_command.contains("cargo test"), "{found:?}");
        request.test_command = Some("make check".into());
        assert_eq!(preflight(&request).unwrap().test_command, "make check");
    }

    #[test]
    fn a_merge_in_progress_and_a_dirty_tree_are_refused() {
        let dir = repository(&[("notes.txt", "one\n")]);
        let mut request = RunRequest::new(dir.path(), "fix it");
        request.test_command = Some("true".into());
        std::fs::write(dir.path().join("notes.txt"), "two\n").unwrap();
        let error = preflight(&request).unwrap_err();
        assert!(matches!(error, Error::DirtyTree), "{error}");
        request.allow_dirty = true;
        preflight(&request).unwrap();
        std::fs::write(dir.path().join(".git/MERGE_HEAD"), "0000\n").unwrap();
        let error = preflight(&request).unwrap_err();
        assert!(matches!(error, Error::MergeInProgress), "{error}");
    }
}
