//! The repository as hone sees it, read through git2: discovery from any subfolder (linked worktrees
//! and repositories without commits included), the list of files hone may look at (tracked plus
//! untracked-but-not-ignored, honouring .gitignore, .git/info/exclude and the global excludes file),
//! reading a file from HEAD, the index or the working tree, per-file dirty state, content
//! classification (binary, huge, non-UTF-8, symlink), and exporting the HEAD, index or any commit's
//! tree to a folder. Submodules are listed as such and never entered.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

mod export;
mod files;
mod untracked;

pub use files::{classify, ChangeKind, FileContent, FileKind, FileStatus, RepoFile, TreeSource};

/// Default cap on the size of a file hone reads as text (1 MiB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 20;

/// A git repository with a working tree.
pub struct Repository {
    git: git2::Repository,
    root: PathBuf,
    index_file: Option<PathBuf>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("root", &self.root)
            .finish()
    }
}

impl Repository {
    /// Find the repository containing `path` (any subfolder works; linked worktrees too).
    /// `GIT_INDEX_FILE` is honoured for index reads, because git sets it for hooks (e.g. a temporary
    /// index during `git commit -a` or `git commit <paths>`).
    pub fn discover(path: &Path) -> Result<Self> {
        let git = git2::Repository::discover(path).map_err(|error| match error.code() {
            git2::ErrorCode::NotFound => Error::NotARepository {
                path: path.to_path_buf(),
            },
            _ => Error::Git(error),
        })?;
        let index_file = std::env::var_os("GIT_INDEX_FILE")
            .map(PathBuf::from)
            .map(|file| {
                if file.is_absolute() {
                    file
                } else {
                    std::env::current_dir()
                        .map(|dir| dir.join(&file))
                        .unwrap_or(file)
                }
            });
        Self::from_git(git, index_file)
    }

    /// Open exactly the repository at `path` (no discovery upwards, `GIT_INDEX_FILE` ignored).
    pub fn open(path: &Path) -> Result<Self> {
        let git = git2::Repository::open(path).map_err(|error| match error.code() {
            git2::ErrorCode::NotFound => Error::NotARepository {
                path: path.to_path_buf(),
            },
            _ => Error::Git(error),
        })?;
        Self::from_git(git, None)
    }

    fn from_git(git: git2::Repository, index_file: Option<PathBuf>) -> Result<Self> {
        let workdir = git.workdir().ok_or_else(|| Error::BareRepository {
            path: git.path().to_path_buf(),
        })?;
        let root = workdir
            .canonicalize()
            .map_err(|error| Error::io(workdir, error))?;
        Ok(Self {
            git,
            root,
            index_file,
        })
    }

    /// The root of the working tree (canonical, absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.git` directory of this working tree (for a linked worktree: its private git dir).
    pub fn git_dir(&self) -> &Path {
        self.git.path()
    }

    /// The underlying git2 handle, for callers that need more than this type offers.
    pub fn git(&self) -> &git2::Repository {
        &self.git
    }

    /// The commit HEAD points at, or `None` in a repository with no commits yet.
    pub fn head_commit(&self) -> Result<Option<git2::Oid>> {
        match self.git.head() {
            Ok(head) => Ok(head.target()),
            Err(error)
                if matches!(
                    error.code(),
                    git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The index in use (the one named by `GIT_INDEX_FILE` when set at discovery).
    pub fn index(&self) -> Result<git2::Index> {
        match &self.index_file {
            Some(path) => Ok(git2::Index::open(path)?),
            None => Ok(self.git.index()?),
        }
    }

    /// Tracked files (from the index) plus untracked files that are not ignored, sorted by path.
    /// Submodules appear once, as `FileKind::Submodule`; their contents are not listed.
    pub fn list_files(&self) -> Result<Vec<RepoFile>> {
        let index = self.index()?;
        let mut files: Vec<RepoFile> = Vec::with_capacity(index.len());
        let mut last: Option<Vec<u8>> = None;
        for entry in index.iter() {
            // Conflicted paths appear once per stage; list them once.
            if last.as_deref() == Some(entry.path.as_slice()) {
                continue;
            }
            let Ok(path) = String::from_utf8(entry.path.clone()) else {
                continue;
            };
            last = Some(entry.path);
            files.push(RepoFile {
                path,
                kind: kind_from_mode(entry.mode),
                tracked: true,
            });
        }
        let tracked: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        let untracked = untracked::untracked_files(&self.git, &self.root, &tracked)?;
        files.extend(untracked);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|a, b| a.path == b.path);
        Ok(files)
    }

    /// Submodule paths (listed, never entered).
    pub fn submodules(&self) -> Result<Vec<String>> {
        Ok(self
            .git
            .submodules()?
            .iter()
            .filter_map(|module| module.path().to_str().map(|path| path.replace('\\', "/")))
            .collect())
    }

    /// Dirty state of one path.
    pub fn file_status(&self, path: &str) -> Result<FileStatus> {
        match self.git.status_file(Path::new(path)) {
            Ok(status) => Ok(file_status_from(status)),
            Err(error) if error.code() == git2::ErrorCode::NotFound => Ok(FileStatus::default()),
            Err(error) => Err(error.into()),
        }
    }

    /// Every path that is not clean (staged, unstaged, untracked-not-ignored or conflicted).
    pub fn dirty_files(&self) -> Result<Vec<(String, FileStatus)>> {
        let mut options = git2::StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = self.git.statuses(Some(&mut options))?;
        let mut dirty = Vec::new();
        for status in statuses.iter() {
            let state = file_status_from(status.status());
            if state.is_clean() {
                continue;
            }
            if let Some(path) = status.path() {
                dirty.push((path.to_string(), state));
            }
        }
        Ok(dirty)
    }

    /// True when any tracked file has staged or unstaged changes (untracked files do not count).
    pub fn has_tracked_changes(&self) -> Result<bool> {
        Ok(self
            .dirty_files()?
            .iter()
            .any(|(_, status)| !status.untracked || status.conflicted))
    }

    /// Raw bytes of `path` (relative, `/`-separated) in `source`; `None` when absent there.
    /// A symlink in the working tree yields its target path as bytes (not followed).
    pub fn read_bytes(&self, path: &str, source: &TreeSource) -> Result<Option<Vec<u8>>> {
        check_relative(path)?;
        match source {
            TreeSource::WorkTree => {
                let full = self.root.join(path);
                match std::fs::symlink_metadata(&full) {
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(error) => Err(Error::io(full, error)),
                    Ok(meta) if meta.file_type().is_symlink() => {
                        let target =
                            std::fs::read_link(&full).map_err(|error| Error::io(&full, error))?;
                        Ok(Some(target.to_string_lossy().into_owned().into_bytes()))
                    }
                    Ok(meta) if meta.is_dir() => Ok(None),
                    Ok(_) => std::fs::read(&full)
                        .map(Some)
                        .map_err(|error| Error::io(full, error)),
                }
            }
            TreeSource::Index => {
                let index = self.index()?;
                let Some(entry) = index.get_path(Path::new(path), 0) else {
                    return Ok(None);
                };
                if kind_from_mode(entry.mode) == FileKind::Submodule {
                    return Ok(None);
                }
                Ok(Some(self.git.find_blob(entry.id)?.content().to_vec()))
            }
            TreeSource::Head | TreeSource::Revision(_) => {
                let Some(tree) = self.tree_of(source)? else {
                    return Ok(None);
                };
                let entry = match tree.get_path(Path::new(path)) {
                    Ok(entry) => entry,
                    Err(error) if error.code() == git2::ErrorCode::NotFound => return Ok(None),
                    Err(error) => return Err(error.into()),
                };
                if entry.kind() != Some(git2::ObjectType::Blob) {
                    return Ok(None);
                }
                Ok(Some(self.git.find_blob(entry.id())?.content().to_vec()))
            }
        }
    }

    /// `path` in `source`, classified; files over `max_bytes` are reported as `TooLarge`
    /// without being read (working tree) and symlinks as `Symlink`.
    pub fn read_file(
        &self,
        path: &str,
        source: &TreeSource,
        max_bytes: u64,
    ) -> Result<FileContent> {
        if *source == TreeSource::WorkTree {
            check_relative(path)?;
            let full = self.root.join(path);
            match std::fs::symlink_metadata(&full) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(FileContent::Missing)
                }
                Err(error) => return Err(Error::io(full, error)),
                Ok(meta) if meta.file_type().is_symlink() => {
                    let target =
                        std::fs::read_link(&full).map_err(|error| Error::io(&full, error))?;
                    return Ok(FileContent::Symlink {
                        target: target.to_string_lossy().into_owned(),
                    });
                }
                Ok(meta) if meta.is_dir() => return Ok(FileContent::Missing),
                Ok(meta) if meta.len() > max_bytes => {
                    return Ok(FileContent::TooLarge { size: meta.len() })
                }
                Ok(_) => {}
            }
        }
        match self.read_bytes(path, source)? {
            None => Ok(FileContent::Missing),
            Some(bytes) if bytes.len() as u64 > max_bytes => Ok(FileContent::TooLarge {
                size: bytes.len() as u64,
            }),
            Some(bytes) => Ok(classify(bytes)),
        }
    }

    /// The tree of `source` (`None` for HEAD in an empty repository). Not for `WorkTree`.
    pub fn tree_of(&self, source: &TreeSource) -> Result<Option<git2::Tree<'_>>> {
        match source {
            TreeSource::Head => match self.head_commit()? {
                Some(oid) => Ok(Some(self.git.find_commit(oid)?.tree()?)),
                None => Ok(None),
            },
            TreeSource::Revision(spec) => {
                let object = self
                    .git
                    .revparse_single(spec)
                    .map_err(|_| Error::UnknownRevision(spec.clone()))?;
                let tree = object
                    .peel_to_tree()
                    .map_err(|_| Error::UnknownRevision(spec.clone()))?;
                Ok(Some(tree))
            }
            TreeSource::Index => {
                let mut index = self.index()?;
                let oid = index.write_tree_to(&self.git)?;
                Ok(Some(self.git.find_tree(oid)?))
            }
            TreeSource::WorkTree => Err(Error::Invalid(
                "the working tree has no git tree: read its files instead".to_string(),
            )),
        }
    }
}

fn kind_from_mode(mode: u32) -> FileKind {
    match mode {
        0o160000 => FileKind::Submodule,
        0o120000 => FileKind::Symlink,
        0o100755 => FileKind::Executable,
        _ => FileKind::Regular,
    }
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

pub(crate) fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|error| Error::io(path, error))?;
    let mut permissions = meta.permissions();
    permissions.set_mode(permissions.mode() | 0o111);
    std::fs::set_permissions(path, permissions).map_err(|error| Error::io(path, error))
}

fn file_status_from(status: git2::Status) -> FileStatus {
    use git2::Status as S;
    let staged = if status.contains(S::INDEX_NEW) {
        Some(ChangeKind::Added)
    } else if status.contains(S::INDEX_MODIFIED) {
        Some(ChangeKind::Modified)
    } else if status.contains(S::INDEX_DELETED) {
        Some(ChangeKind::Deleted)
    } else if status.contains(S::INDEX_RENAMED) {
        Some(ChangeKind::Renamed)
    } else if status.contains(S::INDEX_TYPECHANGE) {
        Some(ChangeKind::TypeChange)
    } else {
        None
    };
    let unstaged = if status.contains(S::WT_MODIFIED) {
        Some(ChangeKind::Modified)
    } else if status.contains(S::WT_DELETED) {
        Some(ChangeKind::Deleted)
    } else if status.contains(S::WT_RENAMED) {
        Some(ChangeKind::Renamed)
    } else if status.contains(S::WT_TYPECHANGE) {
        Some(ChangeKind::TypeChange)
    } else {
        None
    };
    FileStatus {
        staged,
        unstaged,
        untracked: status.contains(S::WT_NEW),
        conflicted: status.contains(S::CONFLICTED),
    }
}

/// Check that `path` is a plain relative path inside the repository: not absolute, no `..`,
/// no `.git` component. Symlink escapes are checked where files are written (`edits::apply`).
pub fn check_relative(path: &str) -> Result<()> {
    let refuse = |reason: &str| {
        Err(Error::UnsafePath {
            path: path.to_string(),
            reason: reason.to_string(),
        })
    };
    if path.is_empty() {
        return refuse("empty path");
    }
    let as_path = Path::new(path);
    if as_path.is_absolute() || path.starts_with('\\') || path.get(1..2) == Some(":") {
        return refuse(
            "absolute paths are not allowed: use a path relative to the repository root",
        );
    }
    for component in as_path.components() {
        match component {
            Component::ParentDir => return refuse("`..` leaves the repository"),
            Component::Normal(name) if name.eq_ignore_ascii_case(".git") => {
                return refuse("hone never writes inside .git")
            }
            Component::Normal(_) | Component::CurDir => {}
            _ => return refuse("not a relative path"),
        }
    }
    Ok(())
}
