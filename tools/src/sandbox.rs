//! Sandboxes: a temporary copy of the repository state (HEAD + the working tree's changes, the
//! index only, HEAD, or any revision) in which a patch is applied and tests run without touching the
//! user's tree. Working-tree files are copied (`std::fs::copy`, which uses `copy_file_range` and
//! thus shares extents on filesystems that support it); hardlinks are not used because a test or
//! formatter writing a file in place would then modify the user's file. Git sources are written
//! from the object database. Ignored folders that tests need (`node_modules`, `.venv`, `vendor`,
//! or what `[sandbox] include` names) are symlinked so that tests find them; under confinement
//! they stay read-only. A `.git` that tests can read is written beside the files: the same HEAD,
//! an index, and `objects/info/alternates` pointing at the user's object store (read-only under
//! confinement), never the user's own `.git`. The folder is deleted when the `Sandbox` is dropped,
//! or by `runner::interrupt::stop_all` when hone is interrupted.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::confine::{ConfinePolicy, Confinement};
use crate::repo::FileKind;

use crate::edits::{ApplyOptions, ApplyReport, Patch};
use crate::error::{Error, Result};
use crate::repo::{Repository, TreeSource};
use crate::runner::{RunOptions, TestReport};

/// How to build a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Ignored paths (relative to the root, nested allowed) to symlink into the sandbox when
    /// present and not already there: the dependency folders tests need. Default:
    /// [`DEFAULT_INCLUDE`]; `[sandbox] include` adds to it.
    pub link_ignored: Vec<String>,
    /// How commands run in the sandbox are confined (default: strict, no network).
    pub confinement: ConfinePolicy,
    /// Write a `.git` tests can read (default true).
    pub git: bool,
    /// A cargo target folder shared by all sandboxes of this repository (set as `CARGO_TARGET_DIR`
    /// for commands run in the sandbox), so dependencies compile once. Never the user's own
    /// `target/`: sandbox builds would overwrite its binaries. `None`: no sharing.
    pub cargo_target_dir: Option<PathBuf>,
    /// Where to create the temporary folder (default: the system temp dir).
    pub parent_dir: Option<PathBuf>,
}

/// Ignored dependency folders linked by default, per ecosystem: JavaScript (`node_modules`),
/// Python virtual environments (`.venv`, `venv`), Go / PHP / Ruby vendoring (`vendor`, `.bundle`).
pub const DEFAULT_INCLUDE: &[&str] = &["node_modules", ".venv", "venv", "vendor", ".bundle"];

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            link_ignored: DEFAULT_INCLUDE
                .iter()
                .map(|&name| name.to_owned())
                .collect(),
            confinement: ConfinePolicy::default(),
            git: true,
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
    // Unregistered after the folder is gone (fields drop in order).
    dir: tempfile::TempDir,
    _live: crate::runner::interrupt::LiveFolder,
    root: PathBuf,
    confinement: Confinement,
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
        let parent = options
            .parent_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let (dir, live) = crate::runner::interrupt::create_folder(
            || builder.tempdir_in(&parent),
            tempfile::TempDir::path,
        )
        .map_err(|error| Error::io(&parent, error))?;
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
        link_included(repo.root(), &root, &options.link_ignored)?;
        if options.git {
            crate::sandbox_git::write_git_dir(repo, source, &root)?;
        }
        let mut env = Vec::new();
        let mut writable = vec![dir.path().to_path_buf()];
        if let Some(target) = &options.cargo_target_dir {
            std::fs::create_dir_all(target).map_err(|error| Error::io(target, error))?;
            env.push((
                "CARGO_TARGET_DIR".to_string(),
                target.to_string_lossy().into_owned(),
            ));
            writable.push(target.clone());
        }
        let mut readable = vec![repo.root().to_path_buf()];
        let common = repo.git().commondir();
        if !common.starts_with(repo.root()) {
            readable.push(common.to_path_buf());
        }
        let confinement = Confinement {
            policy: options.confinement.clone(),
            writable,
            readable,
        };
        tracing::debug!(files, elapsed = ?start.elapsed(), root = %root.display(), "sandbox created");
        Ok(Self {
            dir,
            _live: live,
            root,
            confinement,
            files,
            creation_time: start.elapsed(),
            env,
        })
    }

    /// The sandbox's repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The temporary folder that holds the root (what a confined command may write).
    pub fn folder(&self) -> &Path {
        self.dir.path()
    }

    /// How commands run in this sandbox are confined.
    pub fn confinement(&self) -> &Confinement {
        &self.confinement
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

    /// Run options for this sandbox: cwd set to its root, shared cache variables added, confined
    /// to the sandbox (this is how every test command of hone gets its confinement).
    pub fn run_options(&self) -> RunOptions {
        let mut options = RunOptions::new(&self.root);
        options.extra_env.extend(self.env.iter().cloned());
        options.confinement = Some(self.confinement.clone());
        options
    }

    /// Run `command` in the sandbox (`options.cwd` and the confinement are the sandbox's).
    pub fn run(&self, command: &str, options: &RunOptions) -> Result<TestReport> {
        let mut options = options.clone();
        options.cwd = self.root.clone();
        options.confinement = Some(self.confinement.clone());
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

/// Symlink each included ignored path of `source` into `dest` when it exists there and the
/// sandbox has nothing at that path yet. Paths must be relative and stay inside the repository.
fn link_included(source: &Path, dest: &Path, include: &[String]) -> Result<()> {
    for name in include {
        let name = name.trim_end_matches('/');
        if name.is_empty() {
            continue;
        }
        crate::repo::check_relative(name)?;
        let original = source.join(name);
        let link = dest.join(name);
        if original.symlink_metadata().is_err() || link.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(|error| Error::io(parent, error))?;
        }
        std::os::unix::fs::symlink(&original, &link).map_err(|error| Error::io(&link, error))?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::confine::{Mechanism, SandboxMode};

    fn repository() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
        std::fs::write(dir.path().join(".gitignore"), "vendor/\n").unwrap();
        std::fs::create_dir(dir.path().join("vendor")).unwrap();
        std::fs::write(dir.path().join("vendor").join("dep.txt"), "dep\n").unwrap();
        let mut index = git.index().unwrap();
        index.add_path(Path::new("a.txt")).unwrap();
        index.add_path(Path::new(".gitignore")).unwrap();
        index.write().unwrap();
        let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::now("t", "t@x").unwrap();
        git.commit(Some("HEAD"), &signature, &signature, "first", &tree, &[])
            .unwrap();
        let repo = Repository::discover(dir.path()).unwrap();
        (dir, repo)
    }

    #[test]
    fn confined_commands_write_only_the_sandbox() {
        if crate::confine::status(SandboxMode::Strict).mechanism != Mechanism::Bubblewrap {
            return; // bwrap missing here: the fallback is exercised by tests/adversarial.
        }
        let (dir, repo) = repository();
        let sandbox =
            Sandbox::create(&repo, &TreeSource::WorkTree, &SandboxOptions::default()).unwrap();
        let outside = dir.path().join("escaped");
        let command = format!(
            "echo in > inside.txt && cat vendor/dep.txt && git rev-parse HEAD && (echo out > {} || echo blocked)",
            outside.display()
        );
        let report = sandbox.run(&command, &sandbox.run_options()).unwrap();
        assert_eq!(report.confinement, Mechanism::Bubblewrap);
        assert!(report.passed, "{}", report.output);
        assert!(report.output.contains("dep"), "{}", report.output);
        assert!(report.output.contains("blocked"), "{}", report.output);
        assert!(!outside.exists());
        assert!(sandbox.root().join("inside.txt").is_file());
    }

    #[test]
    fn included_paths_are_linked_and_unsafe_ones_refused() {
        let (_dir, repo) = repository();
        let sandbox =
            Sandbox::create(&repo, &TreeSource::Head, &SandboxOptions::default()).unwrap();
        let link = sandbox.root().join("vendor");
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert!(sandbox.root().join(".git").join("HEAD").is_file());
        let mut options = SandboxOptions::default();
        options.link_ignored.push("../outside".into());
        assert!(Sandbox::create(&repo, &TreeSource::Head, &options).is_err());
    }
}
