//! Writing a set of file changes so that a crash (even `kill -9` or a power cut) leaves the tree
//! either fully old or fully new. Every new content is first written under a staging folder on the
//! same file system — `.git/hone/apply/` in a repository, a hidden folder beside the root otherwise
//! (sandboxes) — after checking each target still holds what the plan read; one `syncfs` makes them
//! durable; then a small journal is committed (`journal`), and only then are the targets renamed
//! into place. A crash before the journal leaves the tree untouched (the staging folder is discarded
//! later); a crash after it is rolled forward by the next hone command in that repository
//! (`recover_interrupted_apply`, also `hone apply --recover`). Nothing is ever written into the
//! tree except the final renames, so no stray files are left there.

use std::path::{Path, PathBuf};

use super::journal::{self, HeadUpdate, Journal, JournalEntry, Recovery};
use super::FileChange;
use crate::error::{Error, Result};

/// The staging folder of an apply in progress, with its journal-to-be.
pub(crate) struct Transaction {
    /// Held for the whole apply (repositories only): one apply or recovery at a time.
    _lock: Option<nix::fcntl::Flock<std::fs::File>>,
    root: PathBuf,
    staging: PathBuf,
    /// The staging folder lives in `.git/hone/`: recoverable by a later command, and synced to
    /// disk (a sandbox's is neither).
    durable: bool,
    index_target: Option<PathBuf>,
    head: Option<HeadUpdate>,
    done: bool,
}

/// Where the staging folder of applies under `root` lives, and whether it is in a git directory.
fn staging_folder(root: &Path) -> Result<(PathBuf, bool)> {
    if let Some(git_dir) = git_dir_of(root) {
        return Ok((git_dir.join("hone").join("apply"), true));
    }
    // A sandbox or a plain folder: a hidden sibling keeps the renames on one file system.
    let name = root
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = root.parent().unwrap_or(root);
    Ok((
        parent.join(format!(".{name}.hone-apply-{}", std::process::id())),
        false,
    ))
}

/// The git directory of the working tree at `root`: `.git` itself, or where a `.git` file points
/// (linked worktrees, submodules).
fn git_dir_of(root: &Path) -> Option<PathBuf> {
    let dot_git = root.join(".git");
    let meta = std::fs::symlink_metadata(&dot_git).ok()?;
    if meta.is_dir() {
        return Some(dot_git);
    }
    let text = std::fs::read_to_string(&dot_git).ok()?;
    let target = text.strip_prefix("gitdir:")?.trim();
    let path = Path::new(target);
    Some(if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    })
}

/// Finish (or discard) an apply that was interrupted in the working tree at `root`. Returns what
/// was done, `None` when there was nothing to recover.
pub fn recover_interrupted_apply(root: &Path) -> Result<Option<Recovery>> {
    let Some(git_dir) = git_dir_of(root) else {
        return Ok(None);
    };
    let staging = git_dir.join("hone").join("apply");
    if !staging.exists() {
        return Ok(None);
    }
    // Another hone process applying right now owns its staging folder: leave it alone.
    match lock(&staging, false)? {
        Some(_lock) => journal::recover(&staging),
        None => Ok(None),
    }
}

/// Lock `apply.lock` beside the staging folder; `None` when `wait` is false and it is taken.
fn lock(staging: &Path, wait: bool) -> Result<Option<nix::fcntl::Flock<std::fs::File>>> {
    use nix::fcntl::{Flock, FlockArg};
    let folder = staging.parent().unwrap_or(staging);
    std::fs::create_dir_all(folder).map_err(|error| Error::io(folder, error))?;
    let path = folder.join("apply.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| Error::io(&path, error))?;
    let mode = if wait {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockExclusiveNonblock
    };
    match Flock::lock(file, mode) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) if !wait => Ok(None),
        Err((_, errno)) => Err(Error::io(
            &path,
            std::io::Error::from_raw_os_error(errno as i32),
        )),
    }
}

impl Transaction {
    /// Start an apply under `root`: finish any interrupted one first, then create the staging folder.
    pub(crate) fn begin(root: &Path) -> Result<Self> {
        let (staging, in_git) = staging_folder(root)?;
        let lock = if in_git {
            let lock = lock(&staging, true)?;
            journal::recover(&staging)?;
            lock
        } else {
            None
        };
        for folder in [journal::NEW, journal::OLD] {
            let path = staging.join(folder);
            std::fs::create_dir_all(&path).map_err(|error| Error::io(&path, error))?;
        }
        Ok(Self {
            _lock: lock,
            root: root.to_path_buf(),
            staging,
            durable: in_git,
            index_target: None,
            head: None,
            done: false,
        })
    }

    /// Where to write the new index file; `commit` puts it at `target` with the files.
    pub(crate) fn stage_index(&mut self, target: &Path) -> PathBuf {
        self.index_target = Some(target.to_path_buf());
        self.staging.join(journal::INDEX)
    }

    /// Move `reference` from `old` to `new` together with the files.
    pub(crate) fn move_head(&mut self, reference: &str, old: Option<git2::Oid>, new: git2::Oid) {
        self.head = Some(HeadUpdate {
            reference: reference.to_string(),
            old: old.map(|oid| oid.to_string()),
            new: new.to_string(),
        });
    }

    /// Stage every change, commit the journal, then put everything in place.
    pub(crate) fn commit(mut self, changes: &[FileChange]) -> Result<()> {
        let entries = self.stage(changes)?;
        let journal = Journal {
            version: 1,
            root: self.root.clone(),
            entries,
            index_target: self.index_target.clone(),
            head: self.head.clone(),
        };
        journal.commit(&self.staging, self.durable)?;
        if let Err(error) = journal.roll_forward(&self.staging, self.durable) {
            // An I/O failure (not a crash): put the old files back rather than leave half.
            journal.roll_back(&self.staging)?;
            return Err(error);
        }
        self.done = true;
        Ok(())
    }

    fn stage(&self, changes: &[FileChange]) -> Result<Vec<JournalEntry>> {
        let mut entries = Vec::new();
        for change in changes {
            let target = self.root.join(&change.path);
            if let Some(from) = &change.moved_from {
                verify_unchanged(&self.root.join(from), change.before.as_deref())?;
                verify_unchanged(&target, None)?;
                entries.push(JournalEntry {
                    target: from.clone(),
                    has_new: false,
                });
            } else {
                verify_unchanged(&target, change.before.as_deref())?;
            }
            let Some(after) = &change.after else {
                entries.push(JournalEntry {
                    target: change.path.clone(),
                    has_new: false,
                });
                continue;
            };
            let staged = self
                .staging
                .join(journal::NEW)
                .join(entries.len().to_string());
            std::fs::write(&staged, after.as_bytes()).map_err(|error| Error::io(&staged, error))?;
            let source = change
                .moved_from
                .as_ref()
                .map_or(target.clone(), |from| self.root.join(from));
            set_mode(&staged, std::fs::metadata(source).ok(), change.executable)?;
            entries.push(JournalEntry {
                target: change.path.clone(),
                has_new: true,
            });
        }
        Ok(entries)
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // Not committed (a refusal or an error before the journal): nothing in the tree changed.
        if !self.done && !self.staging.join(journal::JOURNAL).exists() {
            journal::remove_staging(&self.staging);
        }
    }
}

pub(super) fn write_changes(root: &Path, changes: &[FileChange]) -> Result<()> {
    Transaction::begin(root)?.commit(changes)
}

/// Refuse to overwrite a file that changed on disk since the plan read it.
fn verify_unchanged(path: &Path, expected: Option<&str>) -> Result<()> {
    let actual = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(Error::io(path, error)),
    };
    if actual.as_deref() != expected.map(str::as_bytes) {
        return Err(Error::Invalid(format!(
            "{} changed on disk while the patch was being applied: nothing was written, try again",
            path.display()
        )));
    }
    Ok(())
}

fn set_mode(staged: &Path, original: Option<std::fs::Metadata>, executable: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match original {
        Some(meta) => meta.permissions().mode() & 0o7777,
        None if executable => 0o755,
        None => 0o644,
    };
    std::fs::set_permissions(staged, std::fs::Permissions::from_mode(mode))
        .map_err(|error| Error::io(staged, error))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn change(path: &str, before: Option<&str>, after: Option<&str>) -> FileChange {
        FileChange {
            path: path.into(),
            moved_from: None,
            before: before.map(Into::into),
            after: after.map(Into::into),
            executable: false,
        }
    }

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join("a.txt"), "old a\n").unwrap();
        std::fs::write(dir.path().join("gone.txt"), "bye\n").unwrap();
        dir
    }

    fn changes() -> Vec<FileChange> {
        vec![
            change("a.txt", Some("old a\n"), Some("new a\n")),
            change("gone.txt", Some("bye\n"), None),
            change("sub/dir/b.txt", None, Some("new b\n")),
        ]
    }

    fn assert_new(root: &Path) {
        assert_eq!(
            std::fs::read_to_string(root.join("a.txt")).unwrap(),
            "new a\n"
        );
        assert!(!root.join("gone.txt").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("sub/dir/b.txt")).unwrap(),
            "new b\n"
        );
        assert!(!root.join(".git/hone/apply").exists());
    }

    #[test]
    fn writes_everything_and_leaves_no_staging() {
        let dir = repo();
        write_changes(dir.path(), &changes()).unwrap();
        assert_new(dir.path());
        assert!(!dir.path().join(".git/hone/apply").exists());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, [".git", "a.txt", "sub"]);
    }

    #[test]
    fn a_committed_journal_is_rolled_forward_from_any_point() {
        // Simulate a crash after k renames for every k: recovery always completes the apply.
        for crash_after in 0..=3 {
            let dir = repo();
            let mut transaction = Transaction::begin(dir.path()).unwrap();
            transaction.done = true; // keep the staging folder, as a killed process would
            let entries = transaction.stage(&changes()).unwrap();
            let journal = Journal {
                version: 1,
                root: dir.path().to_path_buf(),
                entries: entries.clone(),
                index_target: None,
                head: None,
            };
            journal.commit(&transaction.staging, true).unwrap();
            let partial = Journal {
                entries: entries[..crash_after].to_vec(),
                ..journal.clone()
            };
            // Do the first renames by hand, without removing the journal.
            for (n, entry) in partial.entries.iter().enumerate() {
                let target = dir.path().join(&entry.target);
                let old = transaction.staging.join("old").join(n.to_string());
                if target.exists() {
                    std::fs::rename(&target, &old).unwrap();
                }
                if entry.has_new {
                    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                    let new = transaction.staging.join("new").join(n.to_string());
                    std::fs::rename(new, &target).unwrap();
                }
            }
            drop(transaction);
            let recovery = recover_interrupted_apply(dir.path()).unwrap();
            assert!(matches!(
                recovery,
                Some(Recovery::RolledForward { files: 3, .. })
            ));
            assert_new(dir.path());
            assert_eq!(recover_interrupted_apply(dir.path()).unwrap(), None);
        }
    }

    #[test]
    fn staging_without_a_journal_is_discarded_and_the_tree_untouched() {
        let dir = repo();
        let mut transaction = Transaction::begin(dir.path()).unwrap();
        transaction.done = true;
        transaction.stage(&changes()).unwrap();
        drop(transaction);
        assert_eq!(
            recover_interrupted_apply(dir.path()).unwrap(),
            Some(Recovery::Discarded)
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
            "old a\n"
        );
        assert!(dir.path().join("gone.txt").exists());
        assert!(!dir.path().join("sub").exists());
        assert!(!dir.path().join(".git/hone/apply").exists());
    }

    #[test]
    fn recovery_leaves_an_apply_in_progress_alone() {
        let dir = repo();
        let transaction = Transaction::begin(dir.path()).unwrap();
        transaction.stage(&changes()).unwrap();
        // Another process (here: the same one) holds the lock: nothing is discarded.
        assert_eq!(recover_interrupted_apply(dir.path()).unwrap(), None);
        assert!(transaction.staging.join("new/0").exists());
        transaction.commit(&changes()).unwrap();
        assert_new(dir.path());
    }

    #[test]
    fn a_changed_file_refuses_and_cleans_up() {
        let dir = repo();
        std::fs::write(dir.path().join("a.txt"), "edited by the user\n").unwrap();
        let error = write_changes(dir.path(), &changes()).unwrap_err();
        assert!(error.to_string().contains("changed on disk"), "{error}");
        assert!(!dir.path().join(".git/hone/apply").exists());
        assert!(dir.path().join("gone.txt").exists());
    }

    #[test]
    fn a_folder_without_git_stages_beside_it() {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("sandbox");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.txt"), "old a\n").unwrap();
        write_changes(&root, &[change("a.txt", Some("old a\n"), Some("new a\n"))]).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("a.txt")).unwrap(),
            "new a\n"
        );
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 1);
    }
}
