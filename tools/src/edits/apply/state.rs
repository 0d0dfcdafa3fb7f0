//! The in-memory view of the files a patch touches, and the application of one block to it. Text is
//! held with LF line ends; a file whose line ends are all CRLF gets them back in `changes`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::locate::{self, Request};
use super::{BlockFailure, BlockOutcome, BlockStatus, FailureReason, FileChange, MatchRule};
use crate::edits::{EditBlock, EditOperation};
use crate::error::{Error, Result};
use crate::repo::{check_relative, classify, FileContent};

#[derive(Debug, Clone)]
struct Entry {
    /// Content on disk before the patch, exactly as read.
    original: Option<String>,
    /// Current content (LF line ends), `None` when absent.
    current: Option<String>,
    crlf: bool,
    executable: bool,
    /// The content came from this path by a move (which existed before the patch).
    moved_from: Option<String>,
    /// This path's content was moved away.
    moved_away: bool,
    /// Lines added minus lines removed by earlier blocks, to shift later line hints.
    delta: isize,
    /// Why the file cannot be edited at all, if so.
    refused: Option<FailureReason>,
}

pub(super) struct Files {
    root: PathBuf,
    canonical_root: PathBuf,
    max_bytes: u64,
    entries: BTreeMap<String, Entry>,
}

impl Files {
    pub(super) fn new(root: &Path, max_bytes: u64) -> Result<Self> {
        let canonical_root = root
            .canonicalize()
            .map_err(|error| Error::io(root, error))?;
        Ok(Self {
            root: root.to_path_buf(),
            canonical_root,
            max_bytes,
            entries: BTreeMap::new(),
        })
    }

    fn entry(&mut self, path: &str) -> &mut Entry {
        if !self.entries.contains_key(path) {
            let entry = self.load(path);
            self.entries.insert(path.to_string(), entry);
        }
        // Inserted just above when missing.
        self.entries
            .entry(path.to_string())
            .or_insert_with(|| empty_entry(None))
    }

    fn load(&self, path: &str) -> Entry {
        if let Err(Error::UnsafePath { reason, .. }) = check_relative(path) {
            return empty_entry(Some(FailureReason::UnsafePath { reason }));
        }
        if let Some(reason) = self.escapes(path) {
            return empty_entry(Some(FailureReason::UnsafePath { reason }));
        }
        let full = self.root.join(path);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(meta) => meta,
            Err(_) => return empty_entry(None),
        };
        if meta.file_type().is_symlink() {
            return empty_entry(Some(FailureReason::NotText {
                what: "it is a symlink: edit the file it points to".into(),
            }));
        }
        if meta.is_dir() {
            return empty_entry(Some(FailureReason::NotText {
                what: "it is a directory".into(),
            }));
        }
        if meta.len() > self.max_bytes {
            return empty_entry(Some(FailureReason::NotText {
                what: format!(
                    "it is {} bytes, over the {}-byte limit",
                    meta.len(),
                    self.max_bytes
                ),
            }));
        }
        let bytes = match std::fs::read(&full) {
            Ok(bytes) => bytes,
            Err(error) => {
                return empty_entry(Some(FailureReason::NotText {
                    what: format!("unreadable: {error}"),
                }))
            }
        };
        let text = match classify(bytes) {
            FileContent::Text(text) => text,
            FileContent::Binary => {
                return empty_entry(Some(FailureReason::NotText {
                    what: "it is binary".into(),
                }))
            }
            _ => {
                return empty_entry(Some(FailureReason::NotText {
                    what: "it is not valid UTF-8".into(),
                }))
            }
        };
        let newlines = text.matches('\n').count();
        let crlf = newlines > 0 && text.matches("\r\n").count() == newlines;
        let current = if crlf {
            text.replace("\r\n", "\n")
        } else {
            text.clone()
        };
        use std::os::unix::fs::PermissionsExt;
        Entry {
            original: Some(text),
            current: Some(current),
            crlf,
            executable: meta.permissions().mode() & 0o111 != 0,
            ..empty_entry(None)
        }
    }

    /// Why writing `path` would leave the root through a symlinked folder, if it would.
    fn escapes(&self, path: &str) -> Option<String> {
        let mut ancestor = self.root.join(path);
        while ancestor.pop() {
            if ancestor.exists() {
                return match ancestor.canonicalize() {
                    Ok(real) if real.starts_with(&self.canonical_root) => None,
                    Ok(real) => Some(format!(
                        "a symlinked folder leads outside the repository ({})",
                        real.display()
                    )),
                    Err(error) => Some(format!("cannot resolve {}: {error}", ancestor.display())),
                };
            }
        }
        Some("no folder of it exists".into())
    }

    pub(super) fn apply_block(&mut self, block: &EditBlock) -> BlockOutcome {
        let (status, search) = match &block.operation {
            EditOperation::Replace {
                search,
                replace,
                line_hint,
                anchors,
                at_end,
            } => (
                self.replace(&block.path, search, replace, *line_hint, anchors, *at_end),
                Some(search.clone()),
            ),
            EditOperation::Create { content } => (self.create(&block.path, content), None),
            EditOperation::Write { content } => (self.write(&block.path, content), None),
            EditOperation::Delete => (self.delete(&block.path), None),
            EditOperation::Move { to } => (self.move_file(&block.path, to), None),
        };
        BlockOutcome {
            index: block.index,
            path: block.path.clone(),
            operation: block.operation.name(),
            status,
            search,
        }
    }

    fn replace(
        &mut self,
        path: &str,
        search: &str,
        replace: &str,
        line_hint: Option<usize>,
        anchors: &[String],
        at_end: bool,
    ) -> BlockStatus {
        let entry = self.entry(path);
        if let Some(reason) = &entry.refused {
            return failed(reason.clone());
        }
        let Some(current) = entry.current.clone() else {
            return failed(FailureReason::FileMissing);
        };
        let file_lines = split_lines(&current);
        let search_text = search.replace("\r\n", "\n");
        let replace_text = replace.replace("\r\n", "\n");
        let search_lines = split_lines(&search_text);
        let replace_lines = split_lines(&replace_text);
        let hint = line_hint.map(|line| {
            // Unified diffs count from 1 (0 for "before the first line" with an empty old side).
            let zero_based = if search_lines.is_empty() {
                line as isize
            } else {
                line as isize - 1
            };
            (zero_based + entry.delta).max(0) as usize
        });
        let request = Request {
            file: &file_lines,
            search: &search_lines,
            replace: &replace_lines,
            hint,
            anchors,
            at_end,
        };
        let located = match locate::locate(&request) {
            Ok(located) => located,
            Err(reason) => {
                let present = !replace_lines.is_empty()
                    && replace_lines != search_lines
                    && locate::occurs(&file_lines, &replace_lines);
                let reason = if reason == FailureReason::NotFound && present {
                    FailureReason::AlreadyApplied
                } else {
                    reason
                };
                let closest = match reason {
                    FailureReason::NotFound | FailureReason::AnchorNotFound { .. } => {
                        locate::closest(&file_lines, &search_lines)
                    }
                    _ => None,
                };
                return BlockStatus::Failed(BlockFailure {
                    reason,
                    closest,
                    replacement_present: present,
                });
            }
        };
        let first_line = located.splices.first().map_or(1, |splice| splice.start + 1);
        let touches_end = located
            .splices
            .last()
            .is_some_and(|splice| splice.end == file_lines.len());
        let mut lines: Vec<String> = file_lines.iter().map(ToString::to_string).collect();
        let mut delta = 0isize;
        for splice in located.splices.iter().rev() {
            delta += splice.lines.len() as isize - (splice.end - splice.start) as isize;
            lines.splice(splice.start..splice.end, splice.lines.iter().cloned());
        }
        let file_final = current.ends_with('\n') || current.is_empty();
        // Only a diff that says so (`\ No newline at end of file`) changes the final newline.
        let final_newline =
            if touches_end && !replace_text.is_empty() && search_text.ends_with('\n') == file_final
            {
                replace_text.ends_with('\n')
            } else {
                file_final
            };
        let entry = self.entry(path);
        entry.current = Some(join_lines(&lines, final_newline));
        entry.delta += delta;
        BlockStatus::Applied {
            rule: located.rule,
            line: first_line,
        }
    }

    fn create(&mut self, path: &str, content: &str) -> BlockStatus {
        let entry = self.entry(path);
        if let Some(reason) = &entry.refused {
            return failed(reason.clone());
        }
        let content = content.replace("\r\n", "\n");
        match &entry.current {
            Some(existing) if existing.trim_end() == content.trim_end() => {
                failed(FailureReason::AlreadyApplied)
            }
            Some(existing) if existing.is_empty() => {
                entry.current = Some(content);
                BlockStatus::Applied {
                    rule: MatchRule::Exact,
                    line: 1,
                }
            }
            Some(_) => failed(FailureReason::FileExists),
            None => {
                entry.current = Some(content);
                BlockStatus::Applied {
                    rule: MatchRule::Exact,
                    line: 1,
                }
            }
        }
    }

    fn write(&mut self, path: &str, content: &str) -> BlockStatus {
        let entry = self.entry(path);
        if let Some(reason) = &entry.refused {
            return failed(reason.clone());
        }
        let mut content = content.replace("\r\n", "\n");
        if let Some(existing) = &entry.current {
            // Whole-file blocks come from fences, whose last newline says nothing about the file's.
            let had_final = existing.ends_with('\n');
            if had_final && !content.ends_with('\n') && !content.is_empty() {
                content.push('\n');
            } else if !had_final && !existing.is_empty() && content.ends_with('\n') {
                content.pop();
            }
        }
        entry.current = Some(content);
        BlockStatus::Applied {
            rule: MatchRule::Exact,
            line: 1,
        }
    }

    fn delete(&mut self, path: &str) -> BlockStatus {
        let entry = self.entry(path);
        if let Some(reason) = &entry.refused {
            return failed(reason.clone());
        }
        if entry.current.take().is_none() {
            return failed(FailureReason::FileMissing);
        }
        BlockStatus::Applied {
            rule: MatchRule::Exact,
            line: 1,
        }
    }

    fn move_file(&mut self, from: &str, to: &str) -> BlockStatus {
        if let Some(reason) = self.entry(to).refused.clone() {
            return failed(reason);
        }
        if self.entry(to).current.is_some() {
            return failed(FailureReason::FileExists);
        }
        let source = self.entry(from);
        if let Some(reason) = &source.refused {
            return failed(reason.clone());
        }
        let Some(content) = source.current.take() else {
            return failed(FailureReason::FileMissing);
        };
        let crlf = source.crlf;
        let executable = source.executable;
        let origin = match (&source.moved_from, &source.original) {
            (Some(origin), _) => Some(origin.clone()),
            (None, Some(_)) => Some(from.to_string()),
            (None, None) => None,
        };
        source.moved_away = origin.is_some();
        let target = self.entry(to);
        target.current = Some(content);
        target.crlf = crlf;
        target.executable = executable;
        target.moved_from = origin;
        BlockStatus::Applied {
            rule: MatchRule::Exact,
            line: 1,
        }
    }

    pub(super) fn changes(&self) -> Vec<FileChange> {
        let mut changes = Vec::new();
        for (path, entry) in &self.entries {
            let after = entry.current.as_ref().map(|text| {
                if entry.crlf {
                    text.replace('\n', "\r\n")
                } else {
                    text.clone()
                }
            });
            if let Some(from) = &entry.moved_from {
                let before = self
                    .entries
                    .get(from)
                    .and_then(|source| source.original.clone());
                changes.push(FileChange {
                    path: path.clone(),
                    moved_from: Some(from.clone()),
                    before,
                    after,
                    executable: entry.executable,
                });
                continue;
            }
            if entry.moved_away && entry.current.is_none() {
                continue;
            }
            if after != entry.original {
                changes.push(FileChange {
                    path: path.clone(),
                    moved_from: None,
                    before: entry.original.clone(),
                    after,
                    executable: entry.executable,
                });
            }
        }
        changes
    }
}

fn empty_entry(refused: Option<FailureReason>) -> Entry {
    Entry {
        original: None,
        current: None,
        crlf: false,
        executable: false,
        moved_from: None,
        moved_away: false,
        delta: 0,
        refused,
    }
}

fn failed(reason: FailureReason) -> BlockStatus {
    BlockStatus::Failed(BlockFailure {
        reason,
        closest: None,
        replacement_present: false,
    })
}

/// Lines without terminators; a final newline does not make an extra empty line.
pub(crate) fn split_lines(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    body.split('\n').collect()
}

fn join_lines(lines: &[String], final_newline: bool) -> String {
    let mut text = lines.join("\n");
    if final_newline && !lines.is_empty() {
        text.push('\n');
    }
    text
}
