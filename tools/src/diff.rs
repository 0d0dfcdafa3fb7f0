//! Unified diffs (via `similar`) in the form `git apply` accepts: `diff --git` headers, new/deleted
//! file modes, renames, and `\ No newline at end of file` markers.

use crate::edits::FileChange;

/// Lines of context around each hunk.
pub const CONTEXT_LINES: usize = 3;

/// A git-style unified diff of one file. `old`/`new` `None` mean absent (creation / deletion).
pub fn unified_diff(old_path: &str, new_path: &str, old: Option<&str>, new: Option<&str>) -> String {
    let _ = (old_path, new_path, old, new);
    String::new()
}

/// A git-style diff of a set of file changes (the output of applying a patch).
pub fn diff_changes(changes: &[FileChange]) -> String {
    changes
        .iter()
        .map(|change| {
            unified_diff(
                change.moved_from.as_deref().unwrap_or(&change.path),
                &change.path,
                change.before.as_deref(),
                change.after.as_deref(),
            )
        })
        .collect()
}
