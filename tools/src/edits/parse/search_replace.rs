//! Aider-style SEARCH/REPLACE blocks: a path line (optionally inside or before a code fence), then
//! `<<<<<<< SEARCH`, the old lines, `=======`, the new lines, `>>>>>>> REPLACE`. An empty SEARCH
//! creates a file. A block with no path line of its own reuses the previous block's path.

use super::{block, clean_path, join_lines, ParseError};
use crate::edits::{EditBlock, EditFormat, EditOperation};

const FORMAT: EditFormat = EditFormat::SearchReplace;

pub(crate) fn is_search_marker(line: &str) -> bool {
    marker(line, '<', "SEARCH")
}

fn is_divider(line: &str) -> bool {
    let line = line.trim_end();
    (5..=9).contains(&line.len()) && line.chars().all(|c| c == '=')
}

fn is_replace_marker(line: &str) -> bool {
    marker(line, '>', "REPLACE")
}

fn marker(line: &str, symbol: char, word: &str) -> bool {
    let line = line.trim();
    let rest = line.trim_start_matches(symbol);
    let count = line.len() - rest.len();
    (5..=9).contains(&count) && rest.trim() == word
}

pub(super) fn parse(text: &str) -> Result<Vec<EditBlock>, ParseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut blocks = Vec::new();
    let mut last_path: Option<String> = None;
    let mut previous_end = 0;
    let mut i = 0;
    while i < lines.len() {
        if !is_search_marker(lines[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let path = find_path(&lines[previous_end..start])
            .or_else(|| last_path.clone())
            .ok_or_else(|| {
                ParseError::new(
                FORMAT,
                start + 1,
                "SEARCH block without a file path: put the path on its own line before the block",
            )
            })?;
        let mut j = start + 1;
        while j < lines.len() && !is_divider(lines[j]) {
            if is_replace_marker(lines[j]) || is_search_marker(lines[j]) {
                return Err(ParseError::new(
                    FORMAT,
                    j + 1,
                    "expected `=======` before this marker",
                ));
            }
            j += 1;
        }
        if j >= lines.len() {
            return Err(ParseError::new(
                FORMAT,
                start + 1,
                "SEARCH block has no `=======` divider",
            ));
        }
        let divider = j;
        let mut k = divider + 1;
        while k < lines.len() && !is_replace_marker(lines[k]) {
            if is_search_marker(lines[k]) {
                return Err(ParseError::new(
                    FORMAT,
                    k + 1,
                    "expected `>>>>>>> REPLACE` before this marker",
                ));
            }
            k += 1;
        }
        if k >= lines.len() {
            return Err(ParseError::new(
                FORMAT,
                start + 1,
                "SEARCH block has no `>>>>>>> REPLACE` end",
            ));
        }
        let search = join_lines(&lines[start + 1..divider]);
        let replace = join_lines(&lines[divider + 1..k]);
        let operation = if search.trim().is_empty() {
            EditOperation::Create { content: replace }
        } else {
            EditOperation::Replace {
                search,
                replace,
                line_hint: None,
                anchors: Vec::new(),
                at_end: false,
            }
        };
        blocks.push(block(path.clone(), operation));
        last_path = Some(path);
        previous_end = k + 1;
        i = k + 1;
    }
    Ok(blocks)
}

/// The path is the last non-blank, non-fence line before the block (Aider puts it before the
/// fence; some models put it inside).
fn find_path(lines: &[&str]) -> Option<String> {
    for line in lines.iter().rev() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("```") {
            continue;
        }
        return clean_path(trimmed);
    }
    None
}
