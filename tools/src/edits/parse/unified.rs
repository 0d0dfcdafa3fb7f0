//! Unified diffs (`diff -u`, `git diff`, and the looser diffs models write): `---`/`+++` headers,
//! `@@ -a,b +c,d @@` hunks, git's extended headers (new/deleted file, rename). Hunk line numbers are
//! kept only as hints. Counts end a hunk only where the body ends too: a body longer than its counts
//! is read in full (with a warning), never cut, and a body shorter than its counts runs until the
//! next line that cannot belong to it (models miscount). `\ No newline at end of file` is honoured.

use super::{block, ParseError};
use crate::edits::{EditBlock, EditFormat, EditOperation};

const FORMAT: EditFormat = EditFormat::UnifiedDiff;

#[derive(Default)]
struct FileSection {
    old_path: Option<String>,
    new_path: Option<String>,
    created: bool,
    deleted: bool,
    rename_from: Option<String>,
    rename_to: Option<String>,
    /// A `---`/`+++` pair was read for this section.
    headers: bool,
    hunks: Vec<Hunk>,
}

struct Hunk {
    old_start: Option<usize>,
    search: String,
    replace: String,
}

pub(super) fn parse(text: &str) -> Result<Vec<EditBlock>, ParseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut sections: Vec<FileSection> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let mut section = FileSection::default();
            if let Some((a, b)) = split_git_paths(rest) {
                section.old_path = Some(a);
                section.new_path = Some(b);
            }
            sections.push(section);
            i += 1;
            continue;
        }
        if line.starts_with("GIT binary patch")
            || (line.starts_with("Binary files ") && line.ends_with(" differ"))
        {
            return Err(ParseError::new(
                FORMAT,
                i + 1,
                "binary patches are not supported",
            ));
        }
        if let Some(section) = sections.last_mut() {
            if line.starts_with("new file mode") {
                section.created = true;
            } else if line.starts_with("deleted file mode") {
                section.deleted = true;
            } else if let Some(path) = line.strip_prefix("rename from ") {
                section.rename_from = Some(path.trim().to_string());
            } else if let Some(path) = line.strip_prefix("rename to ") {
                section.rename_to = Some(path.trim().to_string());
            }
        }
        if line.starts_with("--- ")
            && lines
                .get(i + 1)
                .is_some_and(|next| next.starts_with("+++ "))
        {
            let old = header_path(&line[4..]);
            let new = header_path(&lines[i + 1][4..]);
            // A `diff --git` section that has no headers yet takes them; otherwise a new file starts.
            let reuse = sections
                .last()
                .is_some_and(|section| section.hunks.is_empty() && !section.headers);
            if !reuse {
                sections.push(FileSection::default());
            }
            if let Some(section) = sections.last_mut() {
                section.created |= old.is_none();
                section.deleted |= new.is_none();
                section.old_path = old.or(section.old_path.take());
                section.new_path = new.or(section.new_path.take());
                section.headers = true;
            }
            i += 2;
            continue;
        }
        if line.starts_with("@@") {
            let Some(section) = sections.last_mut() else {
                return Err(ParseError::new(
                    FORMAT,
                    i + 1,
                    "hunk before any `---`/`+++` file header",
                ));
            };
            let (hunk, next) = parse_hunk(&lines, i);
            section.hunks.push(hunk);
            i = next;
            continue;
        }
        i += 1;
    }
    let mut blocks = Vec::new();
    for section in sections {
        section.into_blocks(&mut blocks)?;
    }
    Ok(blocks)
}

impl FileSection {
    fn into_blocks(self, blocks: &mut Vec<EditBlock>) -> Result<(), ParseError> {
        let old_path = self.rename_from.clone().or(self.old_path.clone());
        let new_path = self.rename_to.clone().or(self.new_path.clone());
        if self.created {
            let Some(path) = new_path else { return Ok(()) };
            let content: String = self
                .hunks
                .iter()
                .map(|hunk| hunk.replace.as_str())
                .collect();
            blocks.push(block(path, EditOperation::Create { content }));
            return Ok(());
        }
        if self.deleted {
            let Some(path) = old_path else { return Ok(()) };
            blocks.push(block(path, EditOperation::Delete));
            return Ok(());
        }
        let Some(path) = old_path.or(new_path.clone()) else {
            return Ok(());
        };
        for hunk in self.hunks {
            blocks.push(block(
                path.clone(),
                EditOperation::Replace {
                    search: hunk.search,
                    replace: hunk.replace,
                    line_hint: hunk.old_start,
                    anchors: Vec::new(),
                    at_end: false,
                },
            ));
        }
        if let Some(to) = new_path.filter(|to| *to != path) {
            blocks.push(block(path, EditOperation::Move { to }));
        }
        Ok(())
    }
}

/// Parse the hunk whose `@@` line is `lines[start]`; returns it and the index after it.
fn parse_hunk(lines: &[&str], start: usize) -> (Hunk, usize) {
    let (old_start, old_count, new_count) = parse_range(lines[start]);
    let mut counted = old_count.zip(new_count);
    let (mut old_left, mut new_left) = counted.unwrap_or((usize::MAX, usize::MAX));
    let mut search = String::new();
    let mut replace = String::new();
    // Which side(s) the last line went to, for `\ No newline at end of file`.
    let mut last: (bool, bool) = (false, false);
    let mut i = start + 1;
    while i < lines.len() {
        if counted.is_some() && old_left == 0 && new_left == 0 {
            if lines[i].starts_with('\\') {
                strip_final_newline(&mut search, &mut replace, last);
                i += 1;
                break;
            }
            if !is_body_line(lines, i) {
                break;
            }
            // The header counts fewer lines than the body has: cutting the body would silently
            // drop lines, so the body is trusted and the counts ignored from here.
            tracing::warn!(
                "hunk at patch line {}: its body is longer than its header counts; the counts are ignored",
                start + 1
            );
            counted = None;
            old_left = usize::MAX;
            new_left = usize::MAX;
        }
        let line = lines[i];
        // A new file header or hunk ends this hunk even when the counts say otherwise.
        if line.starts_with("@@") || line.starts_with("diff --git ") {
            break;
        }
        if line.starts_with("--- ")
            && lines
                .get(i + 1)
                .is_some_and(|next| next.starts_with("+++ "))
        {
            break;
        }
        match line.chars().next() {
            Some(' ') => {
                push(&mut search, &line[1..]);
                push(&mut replace, &line[1..]);
                old_left = old_left.saturating_sub(1);
                new_left = new_left.saturating_sub(1);
                last = (true, true);
            }
            Some('-') => {
                push(&mut search, &line[1..]);
                old_left = old_left.saturating_sub(1);
                last = (true, false);
            }
            Some('+') => {
                push(&mut replace, &line[1..]);
                new_left = new_left.saturating_sub(1);
                last = (false, true);
            }
            Some('\\') => strip_final_newline(&mut search, &mut replace, last),
            // Models drop the space of blank context lines; an empty line inside the counts, or
            // followed by more hunk lines, is such a line.
            // The last element is what follows the patch's final newline, not a line.
            None if (counted.is_some() && i + 1 < lines.len()) || continues_hunk(lines, i + 1) => {
                search.push('\n');
                replace.push('\n');
                old_left = old_left.saturating_sub(1);
                new_left = new_left.saturating_sub(1);
                last = (true, true);
            }
            _ => break,
        }
        i += 1;
    }
    let hint = old_start.map(|line| {
        if old_count == Some(0) {
            line
        } else {
            line.max(1)
        }
    });
    (
        Hunk {
            old_start: hint,
            search,
            replace,
        },
        i,
    )
}

/// True when `lines[at]` reads as a hunk body line: a context, removed or added line that is not
/// a file header pair or git's `-- ` signature line.
fn is_body_line(lines: &[&str], at: usize) -> bool {
    let line = lines[at];
    if line == "-- " || line.starts_with("+++ ") {
        return false;
    }
    if line.starts_with("--- ")
        && lines
            .get(at + 1)
            .is_some_and(|next| next.starts_with("+++ "))
    {
        return false;
    }
    matches!(line.chars().next(), Some(' ' | '-' | '+'))
}

fn continues_hunk(lines: &[&str], from: usize) -> bool {
    for line in &lines[from.min(lines.len())..] {
        match line.chars().next() {
            None => continue,
            Some(' ' | '-' | '+' | '\\') => return !line.starts_with("--- "),
            _ => return false,
        }
    }
    false
}

fn push(text: &mut String, line: &str) {
    text.push_str(line);
    text.push('\n');
}

fn strip_final_newline(search: &mut String, replace: &mut String, last: (bool, bool)) {
    if last.0 && search.ends_with('\n') {
        search.pop();
    }
    if last.1 && replace.ends_with('\n') {
        replace.pop();
    }
}

/// `@@ -12,3 +12,4 @@ section` → (Some(12), Some(3), Some(4)); a bare `@@` gives Nones.
fn parse_range(line: &str) -> (Option<usize>, Option<usize>, Option<usize>) {
    let body = line.trim_start_matches('@').trim_start();
    let body = body.split("@@").next().unwrap_or("");
    let mut old = (None, None);
    let mut new_count = None;
    for part in body.split_whitespace() {
        if let Some(range) = part.strip_prefix('-') {
            old = parse_pair(range);
        } else if let Some(range) = part.strip_prefix('+') {
            new_count = parse_pair(range).1;
        }
    }
    (old.0, old.1, new_count)
}

fn parse_pair(range: &str) -> (Option<usize>, Option<usize>) {
    let mut parts = range.split(',');
    let start = parts.next().and_then(|text| text.parse().ok());
    let count = match parts.next() {
        Some(text) => text.parse().ok(),
        None => start.map(|_| 1),
    };
    (start, count)
}

/// The path in a `---`/`+++` header: `a/`/`b/` stripped, timestamps dropped, `/dev/null` → None.
fn header_path(text: &str) -> Option<String> {
    let text = text.split('\t').next().unwrap_or(text).trim();
    let text = text.trim_matches('"');
    if text == "/dev/null" || text.is_empty() {
        return None;
    }
    let text = text
        .strip_prefix("a/")
        .or_else(|| text.strip_prefix("b/"))
        .unwrap_or(text);
    Some(text.to_string())
}

fn split_git_paths(rest: &str) -> Option<(String, String)> {
    let rest = rest.trim();
    let middle = rest.find(" b/")?;
    let a = rest[..middle].strip_prefix("a/")?;
    let b = &rest[middle + 3..];
    Some((a.to_string(), b.to_string()))
}
