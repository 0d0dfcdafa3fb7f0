//! Delivering a verified change: write it into the working tree (checking first that every file is
//! still as the run saw it, so user work is never overwritten), commit it (through the `git` command,
//! so the user's hooks run), commit it on a new branch without touching HEAD, the index or the tree,
//! or write it as a patch file.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::changes::ChangeSet;
use crate::{Error, Result};

/// Write `changes` into the tree at `root`. Refuses, changing nothing, when a file no longer has the
/// content the change was made from. The write goes through hone-tools' journal (contents staged
/// and synced under `.git/hone/`, then renamed), so even a killed hone leaves every file old or
/// every file new, and the next hone command finishes an interrupted delivery.
pub fn apply_to_tree(root: &Path, changes: &ChangeSet) -> Result<()> {
    for file in &changes.files {
        let current = read_optional(&root.join(&file.path))?;
        if current != file.before {
            return Err(Error::Setup(format!(
                "{} changed while hone was running: nothing was applied; run again on the new state",
                file.path
            )));
        }
    }
    hone_tools::edits::write_file_changes(root, &changes.to_tools())?;
    Ok(())
}

/// Apply to the tree, then `git add` and `git commit` only these paths (the user's hooks run).
pub fn commit(root: &Path, changes: &ChangeSet, message: &str) -> Result<String> {
    apply_to_tree(root, changes)?;
    let paths = changes.paths();
    let mut add = vec!["add", "--all", "--"];
    add.extend(paths.iter().map(String::as_str));
    git(root, &add, None)?;
    let mut commit = vec!["commit", "--quiet", "-m", message, "--"];
    commit.extend(paths.iter().map(String::as_str));
    git(root, &commit, None)?;
    git(root, &["rev-parse", "HEAD"], None).map(|id| id.trim().to_owned())
}

/// Commit `changes` on top of HEAD as a new branch `name`, without moving HEAD or touching the index
/// or the working tree (a private index file is used). Refuses an existing branch.
pub fn commit_on_branch(
    root: &Path,
    changes: &ChangeSet,
    name: &str,
    message: &str,
) -> Result<String> {
    git(root, &["check-ref-format", "--branch", name], None)
        .map_err(|_| Error::Setup(format!("`{name}` is not a valid branch name")))?;
    let reference = format!("refs/heads/{name}");
    if git(
        root,
        &["rev-parse", "--verify", "--quiet", &reference],
        None,
    )
    .is_ok()
    {
        return Err(Error::Setup(format!(
            "branch `{name}` already exists: choose another name"
        )));
    }
    let head = git(root, &["rev-parse", "--verify", "HEAD"], None)
        .map_err(|_| Error::NoCommitToBranchFrom)?;
    let head = head.trim();
    let index = tempfile::NamedTempFile::new()
        .map_err(|source| Error::io("creating a temporary index", source))?;
    let index_path = index.path().to_string_lossy().into_owned();
    let with_index = |args: &[&str], input: Option<&str>| {
        git_env(root, args, input, &[("GIT_INDEX_FILE", &index_path)])
    };
    with_index(&["read-tree", head], None)?;
    for file in &changes.files {
        match &file.after {
            Some(content) => {
                let blob = git(root, &["hash-object", "-w", "--stdin"], Some(content))?;
                let mode = git(root, &["ls-tree", head, "--", &file.path], None)
                    .ok()
                    .and_then(|line| line.split_whitespace().next().map(str::to_owned))
                    .filter(|mode| mode.starts_with("100"))
                    .unwrap_or_else(|| {
                        if file.executable { "100755" } else { "100644" }.to_owned()
                    });
                let info = format!("{mode},{},{}", blob.trim(), file.path);
                with_index(&["update-index", "--add", "--cacheinfo", &info], None)?;
            }
            None => {
                with_index(&["update-index", "--force-remove", "--", &file.path], None)?;
            }
        }
    }
    let tree = with_index(&["write-tree"], None)?;
    let commit = git(
        root,
        &["commit-tree", tree.trim(), "-p", head, "-F", "-"],
        Some(message),
    )?;
    let commit = commit.trim().to_owned();
    git(root, &["update-ref", &reference, &commit, ""], None)?;
    Ok(commit)
}

/// Write the diff to `path` (`git apply` / `hone apply` can use it).
pub fn write_patch(path: &Path, changes: &ChangeSet) -> Result<()> {
    std::fs::write(path, changes.unified_diff())
        .map_err(|source| Error::io(format!("writing the patch to {}", path.display()), source))
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::io(format!("reading {}", path.display()), source)),
    }
}

fn git(root: &Path, args: &[&str], input: Option<&str>) -> Result<String> {
    git_env(root, args, input, &[])
}

fn git_env(
    root: &Path,
    args: &[&str],
    input: Option<&str>,
    env: &[(&str, &str)],
) -> Result<String> {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(root)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .spawn()
        .map_err(|source| Error::io("running git (is it installed and on PATH?)", source))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input.as_bytes())
            .map_err(|source| Error::io("writing to git", source))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|source| Error::io("running git", source))?;
    if !output.status.success() {
        return Err(Error::Setup(format!(
            "git {} failed: {}",
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_branch_needs_a_commit_to_start_from() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let error =
            commit_on_branch(dir.path(), &ChangeSet::default(), "hone/fix", "fix").unwrap_err();
        assert!(matches!(error, Error::NoCommitToBranchFrom), "{error}");
    }
}
