//! The `.git` of a sandbox: enough of a repository for test suites that call git (`git status`,
//! `git log`, `git diff`, `git rev-parse HEAD`), made without copying objects. It holds HEAD (the
//! same branch name and commit, or the revision's commit, detached), an index (the user's index for
//! working-tree and index sandboxes, the revision's tree otherwise), a minimal config, and
//! `objects/info/alternates` naming the user's object store, which git then reads but never writes
//! (new objects land in the sandbox's own `objects/`; under confinement the user's store is on a
//! read-only mount anyway). The user's own `.git` is never linked or made writable.

use std::path::Path;

use crate::error::{Error, Result};
use crate::repo::{Repository, TreeSource};

/// Write `<root>/.git` for a sandbox of `source`.
pub(crate) fn write_git_dir(repo: &Repository, source: &TreeSource, root: &Path) -> Result<()> {
    let git = repo.git();
    let dot_git = root.join(".git");
    let objects = dot_git.join("objects");
    for dir in [
        objects.join("info"),
        objects.join("pack"),
        dot_git.join("refs").join("heads"),
        dot_git.join("refs").join("tags"),
    ] {
        std::fs::create_dir_all(&dir).map_err(|error| Error::io(&dir, error))?;
    }
    let write = |path: &Path, text: &str| -> Result<()> {
        std::fs::write(path, text).map_err(|error| Error::io(path, error))
    };
    let store = git.commondir().join("objects");
    write(
        &objects.join("info").join("alternates"),
        &format!("{}\n", store.display()),
    )?;
    let sha256 = git
        .config()
        .and_then(|config| config.get_string("extensions.objectformat"))
        .is_ok_and(|format| format == "sha256");
    let mut config =
        String::from("[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n");
    if sha256 {
        config = config.replace("= 0", "= 1") + "[extensions]\n\tobjectformat = sha256\n";
    }
    write(&dot_git.join("config"), &config)?;
    write(&dot_git.join("description"), "hone sandbox\n")?;

    let head_commit = match source {
        TreeSource::Revision(spec) => git
            .revparse_single(spec)
            .ok()
            .and_then(|object| object.peel_to_commit().ok())
            .map(|commit| commit.id()),
        _ => repo.head_commit()?,
    };
    let branch = match source {
        TreeSource::Revision(_) => None,
        _ => git
            .find_reference("HEAD")
            .ok()
            .and_then(|head| head.symbolic_target().map(str::to_owned))
            .filter(|name| name.starts_with("refs/heads/")),
    };
    match (&branch, head_commit) {
        (Some(name), commit) => {
            write(&dot_git.join("HEAD"), &format!("ref: {name}\n"))?;
            if let Some(commit) = commit {
                let path = dot_git.join(name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|error| Error::io(parent, error))?;
                }
                write(&path, &format!("{commit}\n"))?;
            }
        }
        (None, Some(commit)) => write(&dot_git.join("HEAD"), &format!("{commit}\n"))?,
        (None, None) => write(&dot_git.join("HEAD"), "ref: refs/heads/main\n")?,
    }

    let index_path = dot_git.join("index");
    match source {
        TreeSource::WorkTree | TreeSource::Index => {
            // The user's index as it is: staged state and all (stat data will not match, so git
            // re-reads the files once, as after a fresh clone).
            let index = repo.index()?;
            if let Some(path) = index.path().filter(|path| path.is_file()) {
                std::fs::copy(path, &index_path).map_err(|error| Error::io(path, error))?;
            }
        }
        TreeSource::Head | TreeSource::Revision(_) => {
            if let Some(tree) = repo.tree_of(source)? {
                let mut index = git2::Index::open(&index_path)?;
                index.read_tree(&tree)?;
                index.write()?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    #[test]
    fn sandbox_git_sees_the_same_commit_and_a_clean_status() {
        let dir = tempfile::tempdir().unwrap();
        let origin = dir.path().join("origin");
        std::fs::create_dir(&origin).unwrap();
        git(&origin, &["init", "-q", "-b", "trunk"]);
        std::fs::write(origin.join("a.txt"), "one\n").unwrap();
        git(&origin, &["add", "a.txt"]);
        git(
            &origin,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@x",
                "commit",
                "-qm",
                "first",
            ],
        );
        let repo = Repository::discover(&origin).unwrap();
        let sandbox = dir.path().join("sandbox");
        std::fs::create_dir(&sandbox).unwrap();
        std::fs::write(sandbox.join("a.txt"), "one\n").unwrap();
        write_git_dir(&repo, &TreeSource::WorkTree, &sandbox).unwrap();
        let head = git(&origin, &["rev-parse", "HEAD"]);
        assert_eq!(git(&sandbox, &["rev-parse", "HEAD"]), head);
        assert_eq!(
            git(&sandbox, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
            "trunk"
        );
        assert_eq!(git(&sandbox, &["status", "--porcelain"]), "");
        assert!(git(&sandbox, &["log", "--oneline"]).contains("first"));
        // A commit in the sandbox stays in the sandbox.
        std::fs::write(sandbox.join("a.txt"), "two\n").unwrap();
        git(
            &sandbox,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@x",
                "commit",
                "-qam",
                "second",
            ],
        );
        assert_eq!(git(&origin, &["rev-parse", "HEAD"]), head);
        assert_eq!(git(&origin, &["status", "--porcelain"]), "");

        let old = dir.path().join("old");
        std::fs::create_dir(&old).unwrap();
        write_git_dir(&repo, &TreeSource::Head, &old).unwrap();
        assert_eq!(git(&old, &["rev-parse", "HEAD"]), head);
        assert!(git(&old, &["ls-files"]).contains("a.txt"));
    }
}
