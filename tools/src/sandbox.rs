//! Sandboxes: a temporary copy of the repository state (HEAD + the working tree's changes, the
//! index only, HEAD, or any revision) in which a patch is applied and tests run without touching the
//! user's tree. Working-tree files are copied (`std::fs::copy`, which uses `copy_file_range` and
//! thus shares extents on filesystems that support it); hardlinks are not used because a test or
//! formatter writing a file in place would then modify the user's file. Git sources are written
//! from the object database. Large ignored dependency folders (`node_modules`, `.venv`) are
//! symlinked so that tests find them. The folder is deleted when the `Sandbox` is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

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
            options.cargo_target_dir = Some(repo.git().commondir().join("hone").join("cargo-target"));
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
    pub fn create(repo: &Repository, source: &TreeSource, options: &SandboxOptions) -> Result<Self> {
        let _ = (repo, source, options);
        Err(Error::Invalid("sandbox: not implemented yet".into()))
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
            if !options.extra_env.iter().any(|(existing, _)| existing == name) {
                options.extra_env.push((name.clone(), value.clone()));
            }
        }
        crate::runner::run_command(command, &options)
    }
}
