//! Whole-file blocks: a path line, then a fenced block holding the complete new content.

use super::{block, clean_path, join_lines, ParseError};
use crate::edits::{EditBlock, EditFormat, EditOperation};

pub(super) fn parse(text: &str) -> Result<Vec<EditBlock>, ParseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    let mut previous: Option<&str> = None;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if !trimmed.starts_with("```") {
            if !line.trim().is_empty() {
                previous = Some(line);
            }
            i += 1;
            continue;
        }
        let ticks = trimmed.len() - trimmed.trim_start_matches('`').len();
        let info = trimmed.trim_start_matches('`').trim();
        // The path is on the line before the fence, or is the fence's info string (```src/a.py).
        let path = previous.and_then(clean_path).or_else(|| {
            info.split_whitespace()
                .last()
                .filter(|word| word.contains(['.', '/']))
                .and_then(clean_path)
        });
        let Some(end) = (i + 1..lines.len()).find(|&j| {
            let closing = lines[j].trim();
            closing.len() >= ticks && closing.chars().all(|c| c == '`')
        }) else {
            return Err(ParseError::new(
                EditFormat::WholeFile,
                i + 1,
                "code fence is never closed",
            ));
        };
        if let Some(path) = path {
            blocks.push(block(
                path,
                EditOperation::Write {
                    content: join_lines(&lines[i + 1..end]),
                },
            ));
        }
        previous = None;
        i = end + 1;
    }
    Ok(blocks)
}
