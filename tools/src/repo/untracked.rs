//! Untracked-but-not-ignored files, found without a status scan: libgit2's status compares every
//! tracked file's stat data with the index (a `stat` per file, most of the cost of listing a
//! 10,000-file tree), where listing needs only the names the index lacks. This walk reads the
//! directories (their entries' types come with the names), skips what the index has, asks the
//! ignore rules (`.gitignore`, `.git/info/exclude`, the global excludes file) only about the rest,
//! and enters an untracked directory only when it is not ignored, as git does.

use std::collections::HashSet;
use std::path::Path;

use super::{is_executable, FileKind, RepoFile};
use crate::error::{Error, Result};

/// The untracked files of the work tree at `root` that are not ignored, given the index's paths.
/// A directory holding its own repository is listed as `dir/`, as `git status` shows it.
pub(super) fn untracked_files(
    git: &git2::Repository,
    root: &Path,
    tracked: &[&str],
) -> Result<Vec<RepoFile>> {
    let tracked_paths: HashSet<&str> = tracked.iter().copied().collect();
    let mut tracked_directories: HashSet<&str> = HashSet::new();
    for path in tracked {
        let mut end = path.len();
        while let Some(slash) = path[..end].rfind('/') {
            if !tracked_directories.insert(&path[..slash]) {
                break;
            }
            end = slash;
        }
    }
    let mut found = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(directory) = pending.pop() {
        let full = root.join(&directory);
        let entries = std::fs::read_dir(&full).map_err(|error| Error::io(&full, error))?;
        for entry in entries {
            let entry = entry.map_err(|error| Error::io(&full, error))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name == ".git" {
                continue;
            }
            let path = if directory.is_empty() {
                name.to_string()
            } else {
                format!("{directory}/{name}")
            };
            if tracked_paths.contains(path.as_str()) {
                continue;
            }
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                if tracked_directories.contains(path.as_str()) {
                    pending.push(path);
                } else if !git.is_path_ignored(&path)? {
                    if entry.path().join(".git").exists() {
                        // The kind as the status scan gave it (a directory's mode has `x` bits).
                        let kind = if entry.metadata().is_ok_and(|meta| is_executable(&meta)) {
                            FileKind::Executable
                        } else {
                            FileKind::Regular
                        };
                        found.push(RepoFile {
                            path: format!("{path}/"),
                            kind,
                            tracked: false,
                        });
                    } else {
                        pending.push(path);
                    }
                }
                continue;
            }
            if git.is_path_ignored(&path)? {
                continue;
            }
            let kind = if file_type.is_symlink() {
                FileKind::Symlink
            } else if entry.metadata().is_ok_and(|meta| is_executable(&meta)) {
                FileKind::Executable
            } else {
                FileKind::Regular
            };
            found.push(RepoFile {
                path,
                kind,
                tracked: false,
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::path::Path;

    use crate::repo::{FileKind, Repository};

    /// What `git status` calls untracked (libgit2's status scan, as `list_files` read it before),
    /// with the kinds `list_files` gives.
    fn untracked_by_status(git: &git2::Repository, root: &Path) -> Vec<(String, FileKind)> {
        let mut options = git2::StatusOptions::new();
        options
            .show(git2::StatusShow::Workdir)
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .exclude_submodules(true)
            .no_refresh(true);
        let mut found: Vec<(String, FileKind)> = git
            .statuses(Some(&mut options))
            .unwrap()
            .iter()
            .filter(|status| status.status().contains(git2::Status::WT_NEW))
            .map(|status| {
                let path = status.path().unwrap().to_string();
                let kind = match std::fs::symlink_metadata(root.join(&path)) {
                    Ok(meta) if meta.file_type().is_symlink() => FileKind::Symlink,
                    Ok(meta) if super::is_executable(&meta) => FileKind::Executable,
                    _ => FileKind::Regular,
                };
                (path, kind)
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    #[test]
    fn the_walk_finds_what_git_status_calls_untracked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let git = git2::Repository::init(root).unwrap();
        let write = |path: &str, text: &str| {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        };
        write(
            ".gitignore",
            "target/\n*.log\nbuild/\nout/*\n!out/keep.txt\n",
        );
        write("src/a.rs", "a\n");
        write("docs/guide/x.md", "x\n");
        write("build/kept.txt", "tracked in an ignored directory\n");
        let mut index = git.index().unwrap();
        for path in [
            ".gitignore",
            "src/a.rs",
            "docs/guide/x.md",
            "build/kept.txt",
        ] {
            index.add_path(Path::new(path)).unwrap();
        }
        index.write().unwrap();
        for path in [
            "new.rs",
            "src/new.py",
            "src/deep/deeper/z.rs",
            "docs/guide/y.md",
            "target/out",
            "debug.log",
            "src/trace.log",
            "build/new.txt",
            "out/keep.txt",
            "out/drop.txt",
            "excluded.tmp",
            "tool.sh",
            "nested/.git/HEAD",
            "nested/inner.rs",
            "vendor/lib/.git/HEAD",
            "vendor/lib/l.rs",
            "vendor/v.rs",
        ] {
            write(path, "u\n");
        }
        write(".git/info/exclude", "*.tmp\n");
        std::fs::create_dir_all(root.join("empty/inner")).unwrap();
        std::os::unix::fs::symlink("src/a.rs", root.join("link.rs")).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            let mut permissions = std::fs::metadata(root.join("tool.sh"))
                .unwrap()
                .permissions();
            permissions.set_mode(0o755);
            std::fs::set_permissions(root.join("tool.sh"), permissions).unwrap();
        }
        let repo = Repository::discover(root).unwrap();
        let mut walked: Vec<(String, FileKind)> = repo
            .list_files()
            .unwrap()
            .into_iter()
            .filter(|file| !file.tracked)
            .map(|file| (file.path, file.kind))
            .collect();
        walked.sort_by(|a, b| a.0.cmp(&b.0));
        let expected = untracked_by_status(&git, root);
        assert_eq!(walked, expected);
        // The cases the fixture is for are there.
        let paths: Vec<&str> = walked.iter().map(|(path, _)| path.as_str()).collect();
        for path in ["out/keep.txt", "src/deep/deeper/z.rs", "tool.sh", "link.rs"] {
            assert!(paths.contains(&path), "{paths:?}");
        }
        for path in [
            "out/drop.txt",
            "build/new.txt",
            "src/trace.log",
            "excluded.tmp",
        ] {
            assert!(!paths.contains(&path), "{paths:?}");
        }
    }
}
