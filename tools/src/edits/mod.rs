//! Edits: the one internal representation every supported edit format parses into (`Patch`, a list
//! of `EditBlock`s), the parsers for those formats (`parse`), the strict, atomic application to a
//! folder (`apply`) and the failure reports for people and for the model (`report`).
//!
//! Parsing is tolerant (prose around blocks, fences, wrong hunk counts), application is strict: a
//! block applies only where its old text matches exactly once, and a patch applies in full or not
//! at all.

pub mod apply;
pub mod parse;
pub mod report;

pub use apply::{
    apply_patch, plan_patch, recover_interrupted_apply, write_file_changes, ApplyOptions,
    ApplyReport, BlockFailure, BlockOutcome, BlockStatus, FailureReason, FileChange, MatchRule,
    Recovery,
};
pub use parse::{parse_patch, parse_patch_as, ParseError};
pub use report::{render_for_model, render_for_people};

/// The edit formats hone reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditFormat {
    /// Aider-style `path` + `<<<<<<< SEARCH` / `=======` / `>>>>>>> REPLACE` blocks.
    SearchReplace,
    /// `---` / `+++` / `@@` unified diff (git's extended headers understood).
    UnifiedDiff,
    /// Codex CLI's `*** Begin Patch` envelope.
    CodexPatch,
    /// A path line followed by a fenced block holding the whole new file.
    WholeFile,
}

impl EditFormat {
    /// Human name of the format.
    pub fn name(self) -> &'static str {
        match self {
            Self::SearchReplace => "SEARCH/REPLACE blocks",
            Self::UnifiedDiff => "unified diff",
            Self::CodexPatch => "Codex patch",
            Self::WholeFile => "whole-file blocks",
        }
    }
}

/// A parsed patch: edit blocks in the order they must be applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Patch {
    pub format: EditFormat,
    pub blocks: Vec<EditBlock>,
}

impl Patch {
    /// Paths this patch reads or writes (sources and destinations of moves included), deduplicated.
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = Vec::new();
        for block in &self.blocks {
            for path in std::iter::once(&block.path).chain(match &block.operation {
                EditOperation::Move { to } => Some(to),
                _ => None,
            }) {
                if !paths.contains(path) {
                    paths.push(path.clone());
                }
            }
        }
        paths
    }
}

/// One edit to one file. `index` is the block's position in the patch (0-based), for reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EditBlock {
    pub index: usize,
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    pub operation: EditOperation,
}

/// What an edit block does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EditOperation {
    /// Replace the unique occurrence of `search` with `replace`. Lines that are exactly `...` in
    /// both elide unchanged text (each side must have the same number of them).
    Replace {
        search: String,
        replace: String,
        /// 1-based line where the old text is expected (unified diffs): used only to choose between
        /// several exact matches when one starts exactly there, or to place a context-free insertion.
        line_hint: Option<usize>,
        /// Lines that must be found, in order, before the match (Codex `@@ anchor` lines); the match
        /// is then the first after the last anchor.
        anchors: Vec<String>,
        /// The old text must end at the end of the file (Codex `*** End of File`).
        at_end: bool,
    },
    /// Create a file that must not exist yet (empty SEARCH, Codex Add File, `--- /dev/null`).
    Create { content: String },
    /// Replace the whole content of a file, creating it if needed.
    Write { content: String },
    /// Delete the file.
    Delete,
    /// Rename the file to `to` (content unchanged; later blocks address it as `to`).
    Move { to: String },
}

impl EditOperation {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Replace { .. } => "replace",
            Self::Create { .. } => "create",
            Self::Write { .. } => "write",
            Self::Delete => "delete",
            Self::Move { .. } => "move",
        }
    }
}
