//! Strict, atomic application of a `Patch` to a folder (a repository's working tree or a sandbox).
//!
//! Each `Replace` block is located by the first rule that finds it — exact lines, then ignoring
//! trailing whitespace, then ignoring indentation (the replacement is re-indented to the file),
//! then with Unicode quotes, dashes and spaces normalised — and must match exactly once. Lines
//! that are only `...` elide unchanged text. CRLF vs LF and the final newline of each file are
//! preserved. All blocks are tried (so every failure is reported at once) against an in-memory copy;
//! files are written only if every block applied, through a journal under `.git/hone/` so that even
//! a killed process leaves the tree fully old or fully new (`write`, `journal`).
//! Paths outside the root (`..`, absolute, through escaping symlinks), `.git/`, symlinked targets,
//! binary and non-UTF-8 files are refused.

mod journal;
mod locate;
mod replacement;
mod state;
mod write;

pub use journal::Recovery;
pub use write::recover_interrupted_apply;
pub(crate) use write::Transaction;

use std::path::Path;

use crate::edits::{EditFormat, Patch};
use crate::error::Result;

/// Which rule located a block's old text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchRule {
    Exact,
    /// Equal once trailing whitespace is ignored.
    TrailingWhitespace,
    /// Equal once leading and trailing whitespace is ignored; the replacement was re-indented.
    Indentation,
    /// Equal once Unicode quotes, dashes and spaces are mapped to ASCII (and whitespace trimmed).
    Unicode,
}

/// Why a block did not apply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FailureReason {
    /// The old text is not in the file under any matching rule.
    NotFound,
    /// The old text matches at several places (1-based start lines); hone never guesses.
    NotUnique { lines: Vec<usize> },
    /// The file to edit, delete or move does not exist.
    FileMissing,
    /// The file to create already exists (with other content).
    FileExists,
    /// The old text is absent but the new text is already there.
    AlreadyApplied,
    /// A Codex `@@` anchor line was not found.
    AnchorNotFound { anchor: String },
    /// `...` elision lines differ in number between the old and new text, or new lines sit next to
    /// a `...` where the old text has nothing to anchor them; `detail` says which.
    ElisionMismatch { detail: String },
    /// The new lines' indentation or place cannot be told for sure (added lines at an edge of the
    /// block that dedent out of the block around them, or old lines indented inconsistently).
    UnclearIndentation { detail: String },
    /// The path is refused (outside the repository, `.git`, symlink).
    UnsafePath { reason: String },
    /// The file is binary, not UTF-8, too large, or a symlink.
    NotText { what: String },
}

impl FailureReason {
    /// One-line explanation.
    pub fn describe(&self) -> String {
        match self {
            Self::NotFound => "the SEARCH/old text was not found in the file".to_string(),
            Self::NotUnique { lines } => format!(
                "the old text matches {} places (lines {}); add surrounding lines to make it unique",
                lines.len(),
                lines.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
            Self::FileMissing => "the file does not exist".to_string(),
            Self::FileExists => "the file already exists; edit it with a SEARCH/REPLACE block instead".to_string(),
            Self::AlreadyApplied => "the old text is absent and the new text is already present: this edit seems already applied".to_string(),
            Self::AnchorNotFound { anchor } => format!("the anchor line `{anchor}` was not found"),
            Self::ElisionMismatch { detail } => detail.clone(),
            Self::UnclearIndentation { detail } => detail.clone(),
            Self::UnsafePath { reason } => format!("refused path: {reason}"),
            Self::NotText { what } => format!("cannot edit this file: {what}"),
        }
    }
}

/// The file lines nearest to a block's old text ("did you mean").
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClosestMatch {
    /// 1-based first line in the file.
    pub line: usize,
    pub text: String,
    /// 0..1 similarity with the old text.
    pub similarity: f32,
}

/// Details of a failed block.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BlockFailure {
    pub reason: FailureReason,
    pub closest: Option<ClosestMatch>,
    /// The replacement text already occurs in the file.
    pub replacement_present: bool,
}

/// What happened to one block.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum BlockStatus {
    /// Applied; `line` is the 1-based first line of the change in the file at that point.
    Applied {
        rule: MatchRule,
        line: usize,
    },
    Failed(BlockFailure),
}

/// One block's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BlockOutcome {
    pub index: usize,
    pub path: String,
    /// `replace`, `create`, `write`, `delete` or `move`.
    pub operation: &'static str,
    pub status: BlockStatus,
    /// The block's old text (Replace), for reports.
    pub search: Option<String>,
}

/// The net effect of a patch on one file (after all its blocks), with the original line endings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileChange {
    /// Path after the patch (for a deletion: the deleted path).
    pub path: String,
    /// Set when the file was moved here from another path.
    pub moved_from: Option<String>,
    /// Content before (`None`: created).
    pub before: Option<String>,
    /// Content after (`None`: deleted).
    pub after: Option<String>,
    /// Unix mode bits to give a new file (copied from the source of a move).
    pub executable: bool,
}

/// Everything about applying a patch: per-block outcomes, the resulting file changes, and whether
/// they were written.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApplyReport {
    pub format: EditFormat,
    pub blocks: Vec<BlockOutcome>,
    /// Net file changes (computed even when some blocks failed, from the blocks that did apply).
    pub changes: Vec<FileChange>,
    /// True when the changes were written to disk (all blocks applied and not a dry run).
    pub written: bool,
}

impl ApplyReport {
    /// True when every block applied.
    pub fn is_success(&self) -> bool {
        self.blocks
            .iter()
            .all(|block| matches!(block.status, BlockStatus::Applied { .. }))
    }

    /// The blocks that failed.
    pub fn failures(&self) -> impl Iterator<Item = (&BlockOutcome, &BlockFailure)> {
        self.blocks.iter().filter_map(|block| match &block.status {
            BlockStatus::Failed(failure) => Some((block, failure)),
            BlockStatus::Applied { .. } => None,
        })
    }

    /// A unified diff of `changes` that `git apply` accepts.
    pub fn diff(&self) -> String {
        crate::diff::diff_changes(&self.changes)
    }
}

/// Options for applying a patch.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Files larger than this are refused (default 1 MiB).
    pub max_file_bytes: u64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            max_file_bytes: crate::repo::DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Work out what `patch` would do to the files under `root`, without writing anything.
pub fn plan_patch(root: &Path, patch: &Patch, options: &ApplyOptions) -> Result<ApplyReport> {
    let mut files = state::Files::new(root, options.max_file_bytes)?;
    let mut blocks = Vec::with_capacity(patch.blocks.len());
    for block in &patch.blocks {
        blocks.push(files.apply_block(block));
    }
    Ok(ApplyReport {
        format: patch.format,
        blocks,
        changes: files.changes(),
        written: false,
    })
}

/// Write already-computed file changes under `root` through the crash-safe journal (see `write`):
/// refused, writing nothing, when a file no longer holds `before`.
pub fn write_file_changes(root: &Path, changes: &[FileChange]) -> Result<()> {
    write::write_changes(root, changes)
}

/// Apply `patch` to the files under `root`: all blocks or none. Failing blocks are data in the
/// report (`written == false`); `Err` only for I/O failures (after rolling back any partial write).
pub fn apply_patch(root: &Path, patch: &Patch, options: &ApplyOptions) -> Result<ApplyReport> {
    let mut report = plan_patch(root, patch, options)?;
    if report.is_success() {
        write::write_changes(root, &report.changes)?;
        report.written = true;
    }
    Ok(report)
}
