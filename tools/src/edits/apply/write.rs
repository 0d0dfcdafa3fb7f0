//! Writing a set of file changes atomically: every new content is first written to a temporary
//! file beside its target (after checking the target still holds what the plan read); then each
//! target is renamed to a backup and the new file renamed into place. If any step fails, every
//! target is restored from its backup, so the tree is never left half-patched.

use std::path::{Path, PathBuf};

use super::FileChange;
use crate::error::{Error, Result};

struct Staged {
    target: PathBuf,
    /// The new content, ready to be renamed over `target` (`None`: delete `target`).
    temp: Option<tempfile::TempPath>,
}

pub(super) fn write_changes(root: &Path, changes: &[FileChange]) -> Result<()> {
    let mut created_dirs: Vec<PathBuf> = Vec::new();
    let result = stage_all(root, changes, &mut created_dirs).and_then(commit);
    if result.is_err() {
        for dir in created_dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    result
}

fn stage_all(
    root: &Path,
    changes: &[FileChange],
    created_dirs: &mut Vec<PathBuf>,
) -> Result<Vec<Staged>> {
    let mut staged = Vec::new();
    for change in changes {
        let target = root.join(&change.path);
        if let Some(from) = &change.moved_from {
            verify_unchanged(&root.join(from), change.before.as_deref())?;
            verify_unchanged(&target, None)?;
            staged.push(Staged {
                target: root.join(from),
                temp: None,
            });
        } else {
            verify_unchanged(&target, change.before.as_deref())?;
        }
        let Some(after) = &change.after else {
            staged.push(Staged { target, temp: None });
            continue;
        };
        let parent = target.parent().unwrap_or(root).to_path_buf();
        create_dirs(&parent, created_dirs)?;
        let mut file = tempfile::Builder::new()
            .prefix(".hone-new-")
            .tempfile_in(&parent)
            .map_err(|error| Error::io(&parent, error))?;
        std::io::Write::write_all(&mut file, after.as_bytes())
            .map_err(|error| Error::io(file.path(), error))?;
        let temp = file.into_temp_path();
        let source_mode = std::fs::metadata(
            change
                .moved_from
                .as_ref()
                .map_or(target.clone(), |from| root.join(from)),
        );
        set_mode(&temp, source_mode.ok(), change.executable)?;
        staged.push(Staged {
            target,
            temp: Some(temp),
        });
    }
    Ok(staged)
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

fn create_dirs(dir: &Path, created: &mut Vec<PathBuf>) -> Result<()> {
    let mut missing = Vec::new();
    let mut current = dir.to_path_buf();
    while !current.exists() {
        missing.push(current.clone());
        if !current.pop() {
            break;
        }
    }
    for dir in missing.into_iter().rev() {
        std::fs::create_dir(&dir).map_err(|error| Error::io(&dir, error))?;
        created.push(dir);
    }
    Ok(())
}

fn set_mode(temp: &Path, original: Option<std::fs::Metadata>, executable: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match original {
        Some(meta) => meta.permissions().mode() & 0o7777,
        None if executable => 0o755,
        None => 0o644,
    };
    std::fs::set_permissions(temp, std::fs::Permissions::from_mode(mode))
        .map_err(|error| Error::io(temp, error))
}

/// Rename everything into place; on failure restore every backup.
fn commit(staged: Vec<Staged>) -> Result<()> {
    let mut backups: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut placed: Vec<PathBuf> = Vec::new();
    let mut failure = None;
    for (n, item) in staged.into_iter().enumerate() {
        if item.target.exists() || item.target.symlink_metadata().is_ok() {
            let backup = backup_name(&item.target, n);
            if let Err(error) = std::fs::rename(&item.target, &backup) {
                failure = Some(Error::io(&item.target, error));
                break;
            }
            backups.push((item.target.clone(), backup));
        }
        if let Some(temp) = item.temp {
            if let Err(error) = temp.persist(&item.target) {
                failure = Some(Error::io(&item.target, error.error));
                break;
            }
            placed.push(item.target);
        }
    }
    if let Some(error) = failure {
        for path in placed.iter().rev() {
            let _ = std::fs::remove_file(path);
        }
        for (target, backup) in backups.iter().rev() {
            let _ = std::fs::rename(backup, target);
        }
        return Err(error);
    }
    for (_, backup) in backups {
        let _ = std::fs::remove_file(backup);
    }
    Ok(())
}

fn backup_name(target: &Path, n: usize) -> PathBuf {
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.hone-backup-{}-{n}", std::process::id()))
}
