//! The Codex CLI patch envelope: `*** Begin Patch`, then `*** Add File: p` (lines prefixed `+`),
//! `*** Delete File: p`, `*** Update File: p` (optional `*** Move to: q`, then chunks introduced by
//! `@@` or `@@ anchor line`, with ` `/`-`/`+` lines, optionally closed by `*** End of File`), and
//! `*** End Patch`. Reference: openai/codex `codex-rs/apply-patch` (behaviour, not code).

use super::{block, join_lines, ParseError};
use crate::edits::{EditBlock, EditFormat, EditOperation};

const FORMAT: EditFormat = EditFormat::CodexPatch;

struct Chunk {
    anchors: Vec<String>,
    search: Vec<String>,
    replace: Vec<String>,
    at_end: bool,
}

impl Chunk {
    fn new() -> Self {
        Self {
            anchors: Vec::new(),
            search: Vec::new(),
            replace: Vec::new(),
            at_end: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.search.is_empty() && self.replace.is_empty()
    }
}

pub(super) fn parse(text: &str) -> Result<Vec<EditBlock>, ParseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(begin) = lines
        .iter()
        .position(|line| line.trim() == "*** Begin Patch")
    else {
        return Err(ParseError::new(FORMAT, 0, "missing `*** Begin Patch`"));
    };
    let mut blocks = Vec::new();
    let mut i = begin + 1;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if line.trim() == "*** End Patch" {
            break;
        }
        if let Some(path) = line.strip_prefix("*** Add File: ") {
            let mut content = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].starts_with("***") {
                match lines[i].strip_prefix('+') {
                    Some(rest) => content.push(rest),
                    None if lines[i].is_empty() && i + 1 == lines.len() => {}
                    None => {
                        return Err(ParseError::new(
                            FORMAT,
                            i + 1,
                            "lines of an added file must start with `+`",
                        ))
                    }
                }
                i += 1;
            }
            blocks.push(block(
                path.trim().to_string(),
                EditOperation::Create {
                    content: join_lines(&content),
                },
            ));
            continue;
        }
        if let Some(path) = line.strip_prefix("*** Delete File: ") {
            blocks.push(block(path.trim().to_string(), EditOperation::Delete));
            i += 1;
            continue;
        }
        if let Some(path) = line.strip_prefix("*** Update File: ") {
            let path = path.trim().to_string();
            i += 1;
            let mut move_to = None;
            if let Some(to) = lines
                .get(i)
                .and_then(|line| line.strip_prefix("*** Move to: "))
            {
                move_to = Some(to.trim().to_string());
                i += 1;
            }
            let mut chunks: Vec<Chunk> = vec![Chunk::new()];
            while i < lines.len() {
                let line = lines[i];
                if line.trim_end() == "*** End of File" {
                    if let Some(chunk) = chunks.last_mut() {
                        chunk.at_end = true;
                    }
                    i += 1;
                    continue;
                }
                if line.starts_with("***") {
                    break;
                }
                if let Some(anchor) = line.strip_prefix("@@") {
                    if chunks.last().is_some_and(|chunk| !chunk.is_empty()) {
                        chunks.push(Chunk::new());
                    }
                    let anchor = anchor.trim();
                    if let (false, Some(chunk)) = (anchor.is_empty(), chunks.last_mut()) {
                        chunk.anchors.push(anchor.to_string());
                    }
                    i += 1;
                    continue;
                }
                let Some(chunk) = chunks.last_mut() else {
                    break;
                };
                match line.chars().next() {
                    Some(' ') => {
                        chunk.search.push(line[1..].to_string());
                        chunk.replace.push(line[1..].to_string());
                    }
                    Some('-') => chunk.search.push(line[1..].to_string()),
                    Some('+') => chunk.replace.push(line[1..].to_string()),
                    None => {
                        // A blank line inside a chunk is blank context (the space was dropped).
                        if lines[i + 1..]
                            .iter()
                            .any(|next| !next.is_empty() && !next.starts_with("***"))
                        {
                            chunk.search.push(String::new());
                            chunk.replace.push(String::new());
                        }
                    }
                    _ => {
                        return Err(ParseError::new(
                            FORMAT,
                            i + 1,
                            "expected a line starting with ` `, `-`, `+` or `@@` in an update",
                        ))
                    }
                }
                i += 1;
            }
            for chunk in chunks.into_iter().filter(|chunk| !chunk.is_empty()) {
                let search: Vec<&str> = chunk.search.iter().map(String::as_str).collect();
                let replace: Vec<&str> = chunk.replace.iter().map(String::as_str).collect();
                blocks.push(block(
                    path.clone(),
                    EditOperation::Replace {
                        search: join_lines(&search),
                        replace: join_lines(&replace),
                        line_hint: None,
                        anchors: chunk.anchors,
                        at_end: chunk.at_end,
                    },
                ));
            }
            if let Some(to) = move_to {
                blocks.push(block(path, EditOperation::Move { to }));
            }
            continue;
        }
        if line.trim().is_empty() {
            i += 1;
            continue;
        }
        return Err(ParseError::new(
            FORMAT,
            i + 1,
            "expected `*** Add File:`, `*** Delete File:`, `*** Update File:` or `*** End Patch`",
        ));
    }
    Ok(blocks)
}
