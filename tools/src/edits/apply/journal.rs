//! The journal of one apply: which staged file goes to which path, and (for `--commit`) which index
//! file and which branch update go with them. It is written and made durable only once every new
//! content is on disk under the staging folder (`.git/hone/apply/`); from that moment the apply is
//! rolled *forward* by whoever finds the journal — the process itself, or the next hone command after
//! a crash (`recover`). Without a journal nothing in the tree was touched yet and the staging folder
//! is simply discarded. Every step of the roll-forward looks at the file system to see whether it is
//! already done, so running it twice (a crash during recovery) is harmless.
//! This module does not decide what to write; `write` stages the contents and calls `roll_forward`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The journal's file name inside the staging folder.
pub(super) const JOURNAL: &str = "journal";
/// Staged new contents (`new/<n>`) and the originals moved out of the way (`old/<n>`).
pub(super) const NEW: &str = "new";
pub(super) const OLD: &str = "old";
/// The staged index file (for `--commit`).
pub(super) const INDEX: &str = "index";

/// One path of the tree and what happens to it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct JournalEntry {
    /// Path relative to the root.
    pub target: String,
    /// `new/<n>` holds its new content; false: the path is deleted.
    pub has_new: bool,
}

/// A branch (or detached HEAD) moved from `old` to `new` together with the files.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct HeadUpdate {
    /// `HEAD` (detached) or the branch HEAD points at, e.g. `refs/heads/main`.
    pub reference: String,
    /// `None`: the branch had no commit yet.
    pub old: Option<String>,
    pub new: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Journal {
    pub version: u32,
    /// The working tree the targets are relative to (absolute).
    pub root: PathBuf,
    pub entries: Vec<JournalEntry>,
    /// Where `index` goes (the repository's index file), when the index is updated too.
    pub index_target: Option<PathBuf>,
    pub head: Option<HeadUpdate>,
}

/// What `recover` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// An apply had committed its journal: it was completed (this many paths).
    RolledForward { files: usize, root: PathBuf },
    /// An apply was interrupted before touching the tree: its staged files were discarded.
    Discarded,
}

impl Journal {
    pub(super) fn read(staging: &Path) -> Result<Option<Self>> {
        let path = staging.join(JOURNAL);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(Error::io(&path, error)),
        };
        serde_json::from_str(&text).map(Some).map_err(|error| {
            Error::Invalid(format!(
                "{} is damaged ({error}): inspect it, then remove {} to continue",
                path.display(),
                staging.display()
            ))
        })
    }

    /// Write the journal durably: a temporary file, one `syncfs` for it and every staged content,
    /// then the rename that makes the apply happen, and an fsync of the staging folder.
    /// `durable: false` (a throwaway sandbox) skips the syncs: only a crash of the machine, not of
    /// the process, needs them, and flushing costs time.
    pub(super) fn commit(&self, staging: &Path, durable: bool) -> Result<()> {
        let temporary = staging.join("journal.tmp");
        let text = serde_json::to_string(self)
            .map_err(|error| Error::Invalid(format!("writing the apply journal: {error}")))?;
        std::fs::write(&temporary, text).map_err(|error| Error::io(&temporary, error))?;
        if durable {
            if self.entries.len() <= FSYNC_EACH_UP_TO {
                let mut files = vec![temporary.clone()];
                files
                    .extend((0..self.entries.len()).map(|n| staging.join(NEW).join(n.to_string())));
                files.push(staging.join(INDEX));
                for file in files.iter().filter(|file| file.exists()) {
                    sync_file(file)?;
                }
            } else {
                sync_file_system(staging)?;
            }
        }
        let path = staging.join(JOURNAL);
        std::fs::rename(&temporary, &path).map_err(|error| Error::io(&path, error))?;
        if durable {
            sync_directory(staging)?;
        }
        Ok(())
    }

    /// Complete the apply: put every staged content in place, the index, the branch; then forget
    /// the journal and the staging folder. Each step is skipped when already done.
    pub(super) fn roll_forward(&self, staging: &Path, durable: bool) -> Result<()> {
        for (n, entry) in self.entries.iter().enumerate() {
            let target = self.root.join(&entry.target);
            let new = staging.join(NEW).join(n.to_string());
            let old = staging.join(OLD).join(n.to_string());
            let placed = if entry.has_new {
                !new.exists()
            } else {
                old.exists() || target.symlink_metadata().is_err()
            };
            if placed {
                continue;
            }
            if target.symlink_metadata().is_ok() && !old.exists() {
                std::fs::rename(&target, &old).map_err(|error| Error::io(&target, error))?;
            }
            if entry.has_new {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|error| Error::io(parent, error))?;
                }
                std::fs::rename(&new, &target).map_err(|error| Error::io(&target, error))?;
            }
        }
        if let Some(index_target) = &self.index_target {
            let staged = staging.join(INDEX);
            if staged.exists() {
                std::fs::rename(&staged, index_target)
                    .map_err(|error| Error::io(index_target, error))?;
            }
        }
        if let Some(head) = &self.head {
            move_head(&self.root, head)?;
        }
        if durable {
            if self.entries.len() <= FSYNC_EACH_UP_TO {
                let mut folders: Vec<PathBuf> = self
                    .entries
                    .iter()
                    .filter_map(|entry| {
                        self.root
                            .join(&entry.target)
                            .parent()
                            .map(Path::to_path_buf)
                    })
                    .collect();
                folders.sort();
                folders.dedup();
                for folder in folders.iter().filter(|folder| folder.exists()) {
                    sync_file(folder)?;
                }
            } else {
                sync_file_system(staging)?;
            }
        }
        let journal = staging.join(JOURNAL);
        std::fs::remove_file(&journal).map_err(|error| Error::io(&journal, error))?;
        remove_staging(staging);
        Ok(())
    }

    /// Undo the renames done so far (an I/O failure midway, in the applying process itself), so the
    /// tree holds exactly its old content again; then forget the journal.
    pub(super) fn roll_back(&self, staging: &Path) -> Result<()> {
        for (n, entry) in self.entries.iter().enumerate().rev() {
            let target = self.root.join(&entry.target);
            let new = staging.join(NEW).join(n.to_string());
            let old = staging.join(OLD).join(n.to_string());
            if entry.has_new && !new.exists() {
                std::fs::rename(&target, &new).map_err(|error| Error::io(&target, error))?;
            }
            if old.exists() {
                std::fs::rename(&old, &target).map_err(|error| Error::io(&target, error))?;
            }
        }
        let journal = staging.join(JOURNAL);
        std::fs::remove_file(&journal).map_err(|error| Error::io(&journal, error))?;
        Ok(())
    }
}

/// Move `head.reference` from `head.old` to `head.new`, unless it already points at `new`.
fn move_head(root: &Path, head: &HeadUpdate) -> Result<()> {
    let git = git2::Repository::open(root)?;
    let new = git2::Oid::from_str(&head.new)?;
    let current = git
        .find_reference(&head.reference)
        .ok()
        .and_then(|reference| reference.target());
    if current == Some(new) {
        return Ok(());
    }
    let message = "hone apply --commit";
    match (&head.old, current) {
        (Some(old), Some(current)) if git2::Oid::from_str(old)? == current => {
            git.reference_matching(&head.reference, new, true, current, message)?;
        }
        (None, None) => {
            git.reference(&head.reference, new, false, message)?;
        }
        _ => {
            return Err(Error::Invalid(format!(
                "{} moved while hone was committing: the files are applied, the commit {} was not recorded",
                head.reference, head.new
            )))
        }
    }
    Ok(())
}

/// Finish or discard an interrupted apply whose staging folder is `staging`.
pub(super) fn recover(staging: &Path) -> Result<Option<Recovery>> {
    if !staging.exists() {
        return Ok(None);
    }
    match Journal::read(staging)? {
        Some(journal) => {
            journal.roll_forward(staging, true)?;
            Ok(Some(Recovery::RolledForward {
                files: journal.entries.len(),
                root: journal.root,
            }))
        }
        None => {
            remove_staging(staging);
            Ok(Some(Recovery::Discarded))
        }
    }
}

pub(super) fn remove_staging(staging: &Path) {
    let _ = std::fs::remove_dir_all(staging);
}

/// Up to this many files, each staged file is fsynced on its own (a few ms each, and independent
/// of what else is dirty on the file system); above it, one `syncfs` flushes them all at once.
const FSYNC_EACH_UP_TO: usize = 32;

/// One `syncfs` flushes every staged file at once: an fsync per file costs ~8 ms each on ext4,
/// 25 s for 3,000 files, where one `syncfs` takes ~0.5 s.
fn sync_file_system(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let folder = std::fs::File::open(path).map_err(|error| Error::io(path, error))?;
    nix::unistd::syncfs(folder.as_raw_fd())
        .map_err(|errno| Error::io(path, std::io::Error::from_raw_os_error(errno as i32)))
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|error| Error::io(path, error))
}

fn sync_directory(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|folder| folder.sync_all())
        .map_err(|error| Error::io(path, error))
}
