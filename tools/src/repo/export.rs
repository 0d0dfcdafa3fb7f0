//! Exporting the HEAD, index or any revision's tree to a folder (what index and revision sandboxes
//! are made of): folders created once, files written from the object database in two threads.

use std::path::Path;

use super::{check_relative, kind_from_mode, set_executable, FileKind, Repository, TreeSource};
use crate::error::{Error, Result};

impl Repository {
    /// Write every file of `source` (HEAD, the index or a revision) into `dest`, which must exist.
    /// Symlinks are recreated as links, executable bits kept, submodules created as empty folders.
    /// Returns the number of entries written.
    pub fn export_tree(&self, source: &TreeSource, dest: &Path) -> Result<usize> {
        let mut entries: Vec<(String, git2::Oid, u32)> = Vec::new();
        match source {
            TreeSource::WorkTree => return Err(Error::Invalid(
                "export_tree takes HEAD, the index or a revision; use Sandbox for the working tree"
                    .to_string(),
            )),
            TreeSource::Index => {
                let index = self.index()?;
                if index.has_conflicts() {
                    return Err(Error::Invalid(
                        "the index has unresolved conflicts: resolve them before exporting it"
                            .to_string(),
                    ));
                }
                for entry in index.iter() {
                    if let Ok(path) = String::from_utf8(entry.path) {
                        entries.push((path, entry.id, entry.mode));
                    }
                }
            }
            TreeSource::Head | TreeSource::Revision(_) => {
                let Some(tree) = self.tree_of(source)? else {
                    return Ok(0);
                };
                tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
                    if entry.kind() == Some(git2::ObjectType::Tree) {
                        return git2::TreeWalkResult::Ok;
                    }
                    if let Some(name) = entry.name() {
                        entries.push((format!("{dir}{name}"), entry.id(), entry.filemode() as u32));
                    }
                    git2::TreeWalkResult::Ok
                })?;
            }
        }
        // Folders first, once each; then the files in two threads, each with its own git2 handle
        // (a handle is not shareable between threads).
        let mut dirs = std::collections::BTreeSet::new();
        for (path, _, mode) in &entries {
            check_relative(path)?;
            if kind_from_mode(*mode) == FileKind::Submodule {
                dirs.insert(dest.join(path));
            } else if let Some(parent) = Path::new(path).parent() {
                dirs.insert(dest.join(parent));
            }
        }
        for dir in &dirs {
            std::fs::create_dir_all(dir).map_err(|error| Error::io(dir, error))?;
        }
        let git_dir = self.git.path().to_path_buf();
        crate::parallel::in_two_halves(&entries, "export", |chunk| {
            let git = git2::Repository::open(&git_dir)?;
            for (path, id, mode) in chunk {
                write_entry(&git, dest, path, *id, *mode)?;
            }
            Ok(())
        })?;
        Ok(entries.len())
    }
}

fn write_entry(
    git: &git2::Repository,
    dest: &Path,
    path: &str,
    id: git2::Oid,
    mode: u32,
) -> Result<()> {
    let target = dest.join(path);
    match kind_from_mode(mode) {
        FileKind::Submodule => {}
        FileKind::Symlink => {
            let blob = git.find_blob(id)?;
            let link = String::from_utf8_lossy(blob.content()).into_owned();
            std::os::unix::fs::symlink(link, &target).map_err(|error| Error::io(&target, error))?;
        }
        kind => {
            let blob = git.find_blob(id)?;
            std::fs::write(&target, blob.content()).map_err(|error| Error::io(&target, error))?;
            if kind == FileKind::Executable {
                set_executable(&target)?;
            }
        }
    }
    Ok(())
}
