//! Small wrappers around the `git` command line for the hook and batch commands: where the hooks
//! live, the hook environment (`GIT_INDEX_FILE`), staging a fix. The git CLI is the reference here
//! because it is what runs the hooks: it resolves `core.hooksPath`, linked worktrees and the
//! temporary index of `git commit -a` / `git commit PATH` exactly as the hooks will see them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// Run `git ARGS` in `dir` and return its stdout (trailing newline removed); a non-zero exit is an
/// error that carries git's stderr.
pub fn git<I, S>(dir: &Path, args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<S> = args.into_iter().collect();
    let output = Command::new("git")
        .current_dir(dir)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .context("could not run `git`: is git installed and on PATH?")?;
    if !output.status.success() {
        let shown: Vec<String> = args
            .iter()
            .map(|arg| arg.as_ref().to_string_lossy().into_owned())
            .collect();
        bail!(
            "`git {}` failed: {}",
            shown.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    while text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    Ok(text)
}

/// The top folder of the working tree that contains `dir`.
pub fn toplevel(dir: &Path) -> anyhow::Result<PathBuf> {
    let top = git(dir, ["rev-parse", "--show-toplevel"]).map_err(|error| {
        crate::exit::Hinted::new(
            error.context(format!(
                "{} is not inside a git working tree",
                dir.display()
            )),
            ["run this inside a git repository (or `git init` one first)"],
        )
    })?;
    Ok(PathBuf::from(top))
}

/// The folder git runs hooks from: `core.hooksPath` when set (relative to the top of the working
/// tree, `~` expanded), otherwise the common `.git/hooks` (shared by linked worktrees).
pub fn hooks_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    toplevel(dir)?;
    let path = git(
        dir,
        ["rev-parse", "--path-format=absolute", "--git-path", "hooks"],
    )?;
    Ok(PathBuf::from(path))
}

/// The repository's private folder for hone's files (`.git/hone`, per worktree), created on demand.
pub fn hone_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(git(
        dir,
        ["rev-parse", "--path-format=absolute", "--git-path", "hone"],
    )?);
    std::fs::create_dir_all(&path)
        .with_context(|| format!("could not create {}", path.display()))?;
    Ok(path)
}
