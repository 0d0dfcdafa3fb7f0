//! A candidate's change as whole files: for each touched path, the content before (in the run's base
//! state) and after. This is what the agent compares (duplicate detection, diff size), shows (unified
//! diff) and finally delivers, independent of the edit format the model used. Diffs and writes go
//! through hone-tools (`diff::diff_changes`, `edits::write_file_changes`): one implementation of
//! each, with file modes (a moved executable stays executable).

use std::collections::BTreeMap;

use serde::Serialize;

/// One file's change; `None` means the file does not exist on that side.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FileChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// The file is executable after the change (a created file gets mode 755: the target of a
    /// move keeps its source's mode); an existing file keeps its own mode when written.
    pub executable: bool,
}

/// All the files one candidate changes, sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ChangeSet {
    pub files: Vec<FileChange>,
}

impl ChangeSet {
    /// Build from (path, before, after) triples, dropping files whose content did not change.
    pub fn new(files: impl IntoIterator<Item = FileChange>) -> Self {
        let mut by_path: BTreeMap<String, FileChange> = BTreeMap::new();
        for file in files {
            if file.before != file.after {
                by_path.insert(file.path.clone(), file);
            }
        }
        Self {
            files: by_path.into_values().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn paths(&self) -> Vec<String> {
        self.files.iter().map(|file| file.path.clone()).collect()
    }

    /// A unified diff that `git apply` accepts.
    pub fn unified_diff(&self) -> String {
        hone_tools::diff::diff_changes(&self.to_tools())
    }

    /// The same change as hone-tools' file changes (to diff or write it).
    pub fn to_tools(&self) -> Vec<hone_tools::FileChange> {
        self.files
            .iter()
            .map(|file| hone_tools::FileChange {
                path: file.path.clone(),
                moved_from: None,
                before: file.before.clone(),
                after: file.after.clone(),
                executable: file.executable,
            })
            .collect()
    }

    /// Lines added plus removed: the size used to prefer smaller candidates.
    pub fn changed_lines(&self) -> usize {
        self.unified_diff()
            .lines()
            .filter(|line| {
                (line.starts_with('+') && !line.starts_with("+++"))
                    || (line.starts_with('-') && !line.starts_with("---"))
            })
            .count()
    }

    /// Compose: `self` then `next` (whose `before` is `self`'s `after`) as one change from `self`'s base.
    pub fn then(&self, next: &ChangeSet) -> ChangeSet {
        let mut by_path: BTreeMap<String, FileChange> = self
            .files
            .iter()
            .map(|file| (file.path.clone(), file.clone()))
            .collect();
        for file in &next.files {
            let before = by_path
                .get(&file.path)
                .map_or_else(|| file.before.clone(), |first| first.before.clone());
            by_path.insert(
                file.path.clone(),
                FileChange {
                    path: file.path.clone(),
                    before,
                    after: file.after.clone(),
                    executable: file.executable,
                },
            );
        }
        ChangeSet::new(by_path.into_values())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn change(path: &str, before: Option<&str>, after: Option<&str>) -> FileChange {
        FileChange {
            path: path.into(),
            before: before.map(Into::into),
            after: after.map(Into::into),
            executable: false,
        }
    }

    #[test]
    fn drops_unchanged_and_sorts() {
        let set = ChangeSet::new([
            change("b.txt", Some("x\n"), Some("y\n")),
            change("a.txt", Some("same\n"), Some("same\n")),
            change("new.txt", None, Some("n\n")),
        ]);
        assert_eq!(set.paths(), ["b.txt", "new.txt"]);
        let diff = set.unified_diff();
        assert!(diff.contains("--- a/b.txt\n+++ b/b.txt\n"), "{diff}");
        assert!(diff.contains("--- /dev/null\n+++ b/new.txt\n"), "{diff}");
        assert_eq!(set.changed_lines(), 3);
    }

    #[test]
    fn composes_changes() {
        let first = ChangeSet::new([change("a", Some("1\n"), Some("2\n"))]);
        let second = ChangeSet::new([
            change("a", Some("2\n"), Some("3\n")),
            change("b", None, Some("b\n")),
        ]);
        let both = first.then(&second);
        assert_eq!(both.files[0], change("a", Some("1\n"), Some("3\n")));
        assert_eq!(both.files.len(), 2);
        let back = first.then(&ChangeSet::new([change("a", Some("2\n"), Some("1\n"))]));
        assert!(back.is_empty(), "a change undone is no change");
    }
}
