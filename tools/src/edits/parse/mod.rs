//! Tolerant parsers for every edit format hone reads, all producing `Patch`. `parse_patch` detects
//! the format (Codex envelope, then SEARCH/REPLACE markers, then diff headers, then whole-file
//! fenced blocks); `parse_patch_as` forces one. Prose around the blocks is ignored, as models add it.
//! Parsers never panic on any input (checked by property tests).

mod codex;
mod search_replace;
mod unified;
mod whole_file;

use super::{EditBlock, EditFormat, Patch};

/// Why a patch text could not be parsed; `line` is 1-based (0 when not about one line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if *line > 0 { format!("line {line}: ") } else { String::new() })]
pub struct ParseError {
    pub format: Option<EditFormat>,
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(format: EditFormat, line: usize, message: impl Into<String>) -> Self {
        Self {
            format: Some(format),
            line,
            message: message.into(),
        }
    }
}

/// Detect the format of `text` and parse it.
pub fn parse_patch(text: &str) -> Result<Patch, ParseError> {
    let format = detect_format(text).ok_or_else(|| ParseError {
        format: None,
        line: 0,
        message:
            "no edits found: expected SEARCH/REPLACE blocks, a unified diff, a `*** Begin Patch` \
                  envelope, or a path line followed by a fenced whole file"
                .to_string(),
    })?;
    parse_patch_as(text, format)
}

/// Parse `text` as `format`.
pub fn parse_patch_as(text: &str, format: EditFormat) -> Result<Patch, ParseError> {
    // Models and Windows editors produce CRLF patch text; the file's own line endings are restored
    // at application, so the patch is read with LF only.
    let text = text.replace("\r\n", "\n");
    let mut blocks = match format {
        EditFormat::SearchReplace => search_replace::parse(&text)?,
        EditFormat::UnifiedDiff => unified::parse(&text)?,
        EditFormat::CodexPatch => codex::parse(&text)?,
        EditFormat::WholeFile => whole_file::parse(&text)?,
    };
    if blocks.is_empty() {
        return Err(ParseError::new(
            format,
            0,
            format!("no edits found in the {}", format.name()),
        ));
    }
    for (index, block) in blocks.iter_mut().enumerate() {
        block.index = index;
    }
    Ok(Patch { format, blocks })
}

/// Which format `text` is in, if any.
pub fn detect_format(text: &str) -> Option<EditFormat> {
    let mut saw_minus = false;
    let mut unified = false;
    let mut fence = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed == "*** Begin Patch" {
            return Some(EditFormat::CodexPatch);
        }
        if search_replace::is_search_marker(line) {
            return Some(EditFormat::SearchReplace);
        }
        if line.starts_with("+++ ") && saw_minus {
            unified = true;
        }
        saw_minus = line.starts_with("--- ");
        if line.starts_with("@@ -") || line.starts_with("diff --git ") {
            unified = true;
        }
        if trimmed.starts_with("```") {
            fence = true;
        }
    }
    if unified {
        Some(EditFormat::UnifiedDiff)
    } else if fence {
        Some(EditFormat::WholeFile)
    } else {
        None
    }
}

/// Strip the decoration models put around a path (`**src/a.rs**`, `` `a.py`: ``, `# file: x`) and
/// return it when what remains looks like a path.
pub(crate) fn clean_path(line: &str) -> Option<String> {
    let mut text = line.trim();
    for prefix in [
        "#",
        "File:",
        "file:",
        "Path:",
        "path:",
        "Filename:",
        "filename:",
    ] {
        text = text.trim_start_matches(prefix).trim();
    }
    let text = text
        .trim_matches(|c: char| matches!(c, '*' | '`' | '"' | '\'' | ':' | ' '))
        .trim();
    let text = text.strip_prefix("./").unwrap_or(text);
    if text.is_empty() || text.starts_with("```") || text.contains(char::is_whitespace) {
        return None;
    }
    Some(text.to_string())
}

/// Join lines into text with a `\n` after each.
pub(crate) fn join_lines(lines: &[&str]) -> String {
    let mut text = String::with_capacity(lines.iter().map(|line| line.len() + 1).sum());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

pub(crate) fn block(path: String, operation: super::EditOperation) -> EditBlock {
    EditBlock {
        index: 0,
        path,
        operation,
    }
}
