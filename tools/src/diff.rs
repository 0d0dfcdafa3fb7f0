//! Unified diffs (via `similar`) in the form `git apply` accepts: `diff --git` headers, new/deleted
//! file modes, renames, and `\ No newline at end of file` markers.

use crate::edits::FileChange;

/// Lines of context around each hunk.
pub const CONTEXT_LINES: usize = 3;

/// A git-style unified diff of one file. `old`/`new` `None` mean absent (creation / deletion).
/// Returns an empty string when nothing changed.
pub fn unified_diff(
    old_path: &str,
    new_path: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> String {
    file_diff(old_path, new_path, old, new, false)
}

fn file_diff(
    old_path: &str,
    new_path: &str,
    old: Option<&str>,
    new: Option<&str>,
    executable: bool,
) -> String {
    let renamed = old_path != new_path;
    if old == new && !renamed {
        return String::new();
    }
    let mode = if executable { "100755" } else { "100644" };
    let mut out = format!("diff --git a/{old_path} b/{new_path}\n");
    match (old, new) {
        (None, Some(_)) => out.push_str(&format!("new file mode {mode}\n")),
        (Some(_), None) => out.push_str(&format!("deleted file mode {mode}\n")),
        _ => {}
    }
    if renamed && old.is_some() && new.is_some() {
        out.push_str(&format!("rename from {old_path}\nrename to {new_path}\n"));
    }
    let old_text = old.unwrap_or("");
    let new_text = new.unwrap_or("");
    if old_text == new_text {
        return out;
    }
    let old_header = if old.is_some() {
        format!("a/{old_path}")
    } else {
        "/dev/null".to_string()
    };
    let new_header = if new.is_some() {
        format!("b/{new_path}")
    } else {
        "/dev/null".to_string()
    };
    out.push_str(&format!("--- {old_header}\n+++ {new_header}\n"));
    out.push_str(&hunks(old_text, new_text));
    out
}

/// The `@@` hunks of a line diff. Written here rather than with similar's `unified_diff()` so the
/// ranges follow git's conventions exactly (a zero-length range names the line before it).
fn hunks(old: &str, new: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut out = String::new();
    for group in diff.grouped_ops(CONTEXT_LINES) {
        let Some(first) = group.first() else { continue };
        let old_range = span(
            group.iter().map(similar::DiffOp::old_range),
            first.old_range().start,
        );
        let new_range = span(
            group.iter().map(similar::DiffOp::new_range),
            first.new_range().start,
        );
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(&old_range),
            range(&new_range)
        ));
        for op in &group {
            for change in diff.iter_changes(op) {
                let sign = match change.tag() {
                    similar::ChangeTag::Equal => ' ',
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                };
                let value = change.value();
                out.push(sign);
                out.push_str(value);
                if !value.ends_with('\n') {
                    out.push_str("\n\\ No newline at end of file\n");
                }
            }
        }
    }
    out
}

/// The smallest range covering the non-empty `ranges` (the empty ones can carry odd positions
/// next to a deletion); `fallback` positions an all-empty side.
fn span(
    ranges: impl Iterator<Item = std::ops::Range<usize>>,
    fallback: usize,
) -> std::ops::Range<usize> {
    let mut covered: Option<std::ops::Range<usize>> = None;
    for range in ranges.filter(|range| !range.is_empty()) {
        covered = Some(match covered {
            None => range,
            Some(seen) => seen.start.min(range.start)..seen.end.max(range.end),
        });
    }
    covered.unwrap_or(fallback..fallback)
}

fn range(range: &std::ops::Range<usize>) -> String {
    let len = range.end - range.start;
    match len {
        0 => format!("{},0", range.start),
        1 => format!("{}", range.start + 1),
        _ => format!("{},{}", range.start + 1, len),
    }
}

/// A git-style diff of a set of file changes (the output of applying a patch).
pub fn diff_changes(changes: &[FileChange]) -> String {
    changes
        .iter()
        .map(|change| {
            file_diff(
                change.moved_from.as_deref().unwrap_or(&change.path),
                &change.path,
                change.before.as_deref(),
                change.after.as_deref(),
                change.executable,
            )
        })
        .collect()
}

/// Counts of added and removed lines in a diff produced here (for summaries).
pub fn diff_stats(diff: &str) -> (usize, usize) {
    let mut added = 0;
    let mut removed = 0;
    for line in diff.lines() {
        if line.starts_with('+') && !line.starts_with("+++ ") {
            added += 1;
        } else if line.starts_with('-') && !line.starts_with("--- ") {
            removed += 1;
        }
    }
    (added, removed)
}
