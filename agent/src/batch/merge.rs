//! Merging the per-file results of `hone refactor` into one patch. Each task's diff is taken whole
//! or not at all (it was verified whole); a diff that touches a path an earlier accepted diff
//! already touched is a conflict, reported with both tasks and left out — two edits of one file
//! are never blended.

use std::collections::HashMap;

/// One task's verified diff.
#[derive(Debug, Clone)]
pub struct FileResult {
    /// The file the task was about.
    pub target: String,
    pub diff: String,
}

/// Two tasks whose diffs touch the same path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The task left out.
    pub target: String,
    /// The task whose diff was kept.
    pub kept: String,
    pub path: String,
}

/// The merge: the combined diff, the targets included, and the conflicts.
#[derive(Debug, Default)]
pub struct Merged {
    pub diff: String,
    pub included: Vec<String>,
    pub conflicts: Vec<Conflict>,
}

/// Paths a unified diff writes (its `+++` and `---` sides, `/dev/null` aside).
pub fn touched_paths(diff: &str) -> hone_tools::Result<Vec<String>> {
    Ok(hone_tools::parse_patch(diff)?.paths())
}

/// Merge `results` in order: a task's diff is included when none of its paths was touched by an
/// included one. Results whose own file is their only path never conflict with one another.
pub fn merge(results: &[FileResult]) -> hone_tools::Result<Merged> {
    // Tasks that stay inside their own file go first, so a task that strays into another
    // file cannot push out that file's own task.
    let mut order: Vec<(&FileResult, Vec<String>)> = Vec::new();
    for result in results {
        if result.diff.trim().is_empty() {
            continue;
        }
        order.push((result, touched_paths(&result.diff)?));
    }
    order.sort_by_key(|(result, paths)| !(paths.len() == 1 && paths[0] == result.target));
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut merged = Merged::default();
    for (result, paths) in order {
        if let Some((path, kept)) = paths
            .iter()
            .find_map(|path| owner.get(path).map(|kept| (path.clone(), kept.clone())))
        {
            merged.conflicts.push(Conflict {
                target: result.target.clone(),
                kept,
                path,
            });
            continue;
        }
        for path in paths {
            owner.insert(path, result.target.clone());
        }
        if !merged.diff.is_empty() && !merged.diff.ends_with('\n') {
            merged.diff.push('\n');
        }
        merged.diff.push_str(&result.diff);
        merged.included.push(result.target.clone());
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn diff(path: &str, old: &str, new: &str) -> String {
        format!("--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n")
    }

    #[test]
    fn two_edits_of_one_file_are_a_conflict_not_a_blend() {
        let results = vec![
            FileResult {
                target: "a.rs".into(),
                diff: format!("{}{}", diff("b.rs", "x", "y"), diff("a.rs", "1", "2")),
            },
            FileResult {
                target: "b.rs".into(),
                diff: diff("b.rs", "x", "z"),
            },
            FileResult {
                target: "c.rs".into(),
                diff: diff("c.rs", "p", "q"),
            },
            FileResult {
                target: "d.rs".into(),
                diff: String::new(),
            },
        ];
        let merged = merge(&results).unwrap();
        assert_eq!(merged.included, ["b.rs", "c.rs"]);
        assert_eq!(
            merged.conflicts,
            [Conflict {
                target: "a.rs".into(),
                kept: "b.rs".into(),
                path: "b.rs".into()
            }]
        );
        assert!(
            merged.diff.contains("+z") && merged.diff.contains("+q") && !merged.diff.contains("+y")
        );
    }
}
