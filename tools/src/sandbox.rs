//! Sandboxes: a temporary copy of the repository state (HEAD + the working tree's changes, the
//! index only, HEAD, or any revision) in which a patch is applied and tests run without touching the
//! user's tree. Working-tree files are copied (`std::fs::copy`, which uses `copy_file_range` and
//! thus shares extents on filesystems that support it); hardlinks are not used because a test or
//! formatter writing a file in place would then modify the user's file. Git sources are written
//! from the object database. Large ignored dependency folders (`node_modules`, `.venv`) are
//! symlinked so that tests find them. The folder is deleted when the `Sandbox` is dropped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::repo::FileKind;

use crate::edits::{ApplyOptions, ApplyReport, Patch};
use crate::error::{Error, Result};
use crate::repo::{Repository, TreeSource};
use crate::runner::{RunOptions, TestReport};

/// How to build a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Top-level ignored folders to symlink into the sandbox when present (read-mostly dependency
    /// folders tests need). Default: `node_modules`, `.venv`, `venv`.
    pub link_ignored: Vec<String>,
    /// A cargo target folder shared by all sandboxes of this repository (set as `CARGO_TARGET_DIR`
    /// for commands run in the sandbox), so dependencies compile once. Never the user's own
    /// `target/`: sandbox builds would overwrite its binaries. `None`: no sharing.
    pub cargo_target_dir: Option<PathBuf>,
    /// Where to create the temporary folder (default: the system temp dir).
    pub parent_dir: Option<PathBuf>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            link_ignored: vec!["node_modules".into(), ".venv".into(), "venv".into()],
            cargo_target_dir: None,
            parent_dir: None,
        }
    }
}

impl SandboxOptions {
    /// Defaults plus a shared cargo target folder in `.git/hone/cargo-target` when the repository
    /// has a Cargo.toml at its root.
    pub fn for_repository(repo: &Repository) -> Self {
        let mut options = Self::default();
        if repo.root().join("Cargo.toml").is_file() {
            options.cargo_target_dir =
                Some(repo.git().commondir().join("hone").join("cargo-target"));
        }
        options
    }
}

/// A temporary copy of a repository state.
#[derive(Debug)]
pub struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    files: usize,
    creation_time: Duration,
    env: Vec<(String, String)>,
}

impl Sandbox {
    /// Materialise `source` of `repo` in a new temporary folder. `TreeSource::WorkTree` means HEAD
    /// plus the working tree's changes: every tracked file as it is on disk (deleted ones left out)
    /// plus untracked files that are not ignored.
    pub fn create(
        repo: &Repository,
        source: &TreeSource,
        options: &SandboxOptions,
    ) -> Result<Self> {
        let start = Instant::now();
        let mut builder = tempfile::Builder::new();
        builder.prefix("hone-sandbox-");
        let dir = match &options.parent_dir {
            Some(parent) => builder
                .tempdir_in(parent)
                .map_err(|error| Error::io(parent, error))?,
            None => builder
                .tempdir()
                .map_err(|error| Error::io(std::env::temp_dir(), error))?,
        };
        // Keep the repository's folder name: some projects (Python packages, Go modules) care.
        let name = repo
            .root()
            .file_name()
            .map_or_else(|| "repo".into(), |name| name.to_os_string());
        let root = dir.path().join(name);
        std::fs::create_dir(&root).map_err(|error| Error::io(&root, error))?;
        let files = match source {
            TreeSource::WorkTree => copy_worktree(repo, &root)?,
            other => repo.export_tree(other, &root)?,
        };
        for name in &options.link_ignored {
            let original = repo.root().join(name);
            let link = root.join(name);
            if original.is_dir() && link.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(&original, &link)
                    .map_err(|error| Error::io(&link, error))?;
            }
        }
        let mut env = Vec::new();
        if let Some(target) = &options.cargo_target_dir {
            std::fs::create_dir_all(target).map_err(|error| Error::io(target, error))?;
            env.push((
                "CARGO_TARGET_DIR".to_string(),
                target.to_string_lossy().into_owned(),
            ));
        }
        tracing::debug!(files, elapsed = ?start.elapsed(), root = %root.display(), "sandbox created");
        Ok(Self {
            _dir: dir,
            root,
            files,
            creation_time: start.elapsed(),
            env,
        })
    }

    /// The sandbox's repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Number of entries materialised.
    pub fn file_count(&self) -> usize {
        self.files
    }

    /// How long materialising took.
    pub fn creation_time(&self) -> Duration {
        self.creation_time
    }

    /// Apply a patch inside the sandbox (atomic, as `edits::apply_patch`).
    pub fn apply(&self, patch: &Patch, options: &ApplyOptions) -> Result<ApplyReport> {
        crate::edits::apply_patch(&self.root, patch, options)
    }

    /// Run options for this sandbox: cwd set to its root, shared cache variables added.
    pub fn run_options(&self) -> RunOptions {
        let mut options = RunOptions::new(&self.root);
        options.extra_env.extend(self.env.iter().cloned());
        options
    }

    /// Run `command` in the sandbox (`options.cwd` is replaced by the sandbox root).
    pub fn run(&self, command: &str, options: &RunOptions) -> Result<TestReport> {
        let mut options = options.clone();
        options.cwd = self.root.clone();
        for (name, value) in &self.env {
            if !options
                .extra_env
                .iter()
                .any(|(existing, _)| existing == name)
            {
                options.extra_env.push((name.clone(), value.clone()));
            }
        }
        crate::runner::run_command(command, &options)
    }
}

/// Copy tracked files as they are on disk (deleted ones skipped) plus untracked, not ignored files.
/// Two threads: the copy is bound by system calls, and this machine class has two cores.
fn copy_worktree(repo: &Repository, dest: &Path) -> Result<usize> {
    let files = repo.list_files()?;
    let source = repo.root();
    let mut dirs: std::collections::BTreeSet<PathBuf> = std::collections::BTreeSet::new();
    for file in &files {
        let relative = Path::new(&file.path);
        if file.kind == FileKind::Submodule {
            dirs.insert(dest.join(relative));
        } else if let Some(parent) = relative.parent() {
            dirs.insert(dest.join(parent));
        }
    }
    for dir in &dirs {
        std::fs::create_dir_all(dir).map_err(|error| Error::io(dir, error))?;
    }
    let counts = crate::parallel::in_two_halves(&files, "sandbox copy", |chunk| {
        copy_files(chunk, source, dest)
    })?;
    let count = counts.iter().sum();
    Ok(count)
}

fn copy_files(files: &[crate::repo::RepoFile], source: &Path, dest: &Path) -> Result<usize> {
    let mut count = 0;
    for file in files {
        let from = source.join(&file.path);
        let to = dest.join(&file.path);
        match file.kind {
            FileKind::Submodule => {}
            FileKind::Symlink => match std::fs::read_link(&from) {
                Ok(target) => std::os::unix::fs::symlink(target, &to)
                    .map_err(|error| Error::io(&to, error))?,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                // A tracked symlink replaced by a regular file in the working tree.
                Err(_) => {
                    copy_one(&from, &to)?;
                }
            },
            FileKind::Regular | FileKind::Executable => {
                if !copy_one(&from, &to)? {
                    continue;
                }
            }
        }
        count += 1;
    }
    Ok(count)
}

/// Copy one file; false when it no longer exists (deleted in the working tree).
fn copy_one(from: &Path, to: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(from) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(Error::io(from, error)),
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = std::fs::read_link(from).map_err(|error| Error::io(from, error))?;
            std::os::unix::fs::symlink(target, to).map_err(|error| Error::io(to, error))?;
            return Ok(true);
        }
        Ok(meta) if meta.is_dir() => return Ok(false),
        Ok(meta) => {
            // read + write with the mode set at creation: measured ~3x cheaper here than
            // `std::fs::copy` (which adds fstat/fchmod and copy_file_range probing per file).
            use std::io::Write;
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let bytes = std::fs::read(from).map_err(|error| Error::io(from, error))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(meta.permissions().mode() & 0o777)
                .open(to)
                .map_err(|error| Error::io(to, error))?;
            file.write_all(&bytes)
                .map_err(|error| Error::io(to, error))?;
        }
    }
    Ok(true)
}
