//! The Python half of [`super`]: one pass over a file's bytes that follows strings, comments,
//! brackets and backslash continuations far enough to know where each logical line starts, which
//! physical lines start inside a string, and where a non-raw string holds an invalid escape; then
//! pycodestyle's blank-line rules (E301-E306, `blank_lines` in pycodestyle.py, reproduced with
//! its quirks: comment lines reset the blank count but not `blank_before`) and E111 over those
//! logical lines. It is not a tokenizer: what it gets wrong (PEP 701 f-strings reusing their own
//! quote) it gets wrong quietly, and the caller prefers missing a finding to inventing one.

use super::Finding;

/// Blank lines pycodestyle expects around a top-level definition and before a method.
const TOP_LEVEL_LINES: usize = 2;
const METHOD_LINES: usize = 1;

/// A physical line as the blank-line rules see it.
#[derive(Debug, Clone, Copy)]
enum Line {
    /// Only whitespace, outside any string, bracket or continuation.
    Blank,
    /// Only a comment, at the given indent width.
    Comment { line: usize, indent: usize },
    /// The first line of a logical line of code: its indent width and where its text starts and
    /// ends (the newline that ends its last physical line).
    Code {
        line: usize,
        indent: usize,
        start: usize,
        end: usize,
    },
}

/// What the scan of one Python file gives.
#[derive(Debug, Default)]
pub(super) struct Scan {
    lines: Vec<Line>,
    /// Byte offset where each physical line starts.
    line_starts: Vec<usize>,
    /// 1-based lines that start inside a string (ascending).
    pub(super) in_string: Vec<usize>,
    /// W605 findings, in line order.
    pub(super) escapes: Vec<Finding>,
}

/// Scan `text` (Python source); `escapes` says whether to look for invalid escape sequences.
pub(super) fn scan(text: &str, escapes: bool) -> Scan {
    let bytes = text.as_bytes();
    let mut scan = Scan {
        line_starts: vec![0],
        ..Scan::default()
    };
    let (mut pos, mut line, mut depth) = (0, 1, 0usize);
    let mut continued = false;
    while pos < bytes.len() {
        // At the start of a physical line, outside any string.
        let (indent, width) = indent_of(&bytes[pos..]);
        let content = pos + width;
        if depth == 0 && !continued {
            match bytes.get(content) {
                None | Some(b'\n') | Some(b'\r') => scan.lines.push(Line::Blank),
                Some(b'#') => scan.lines.push(Line::Comment { line, indent }),
                Some(_) => scan.lines.push(Line::Code {
                    line,
                    indent,
                    start: content,
                    end: bytes.len(),
                }),
            }
        }
        continued = false;
        pos = content;
        // The rest of the physical line, and any lines a string carries it over.
        while pos < bytes.len() {
            match bytes[pos] {
                b'\n' => break,
                b'#' => {
                    while pos < bytes.len() && bytes[pos] != b'\n' {
                        pos += 1;
                    }
                }
                b'\\' if matches!(bytes.get(pos + 1), Some(b'\n')) => {
                    continued = true;
                    pos += 1;
                }
                b'\\' if bytes.get(pos + 1..pos + 3) == Some(b"\r\n") => {
                    continued = true;
                    pos += 2;
                }
                quote @ (b'"' | b'\'') => {
                    pos = string(text, pos, quote, &mut line, &mut scan, escapes);
                }
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    pos += 1;
                }
                b')' | b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    pos += 1;
                }
                _ => pos += 1,
            }
        }
        // `pos` is at the line's newline (or the end).
        if depth == 0 && !continued {
            if let Some(Line::Code { end, .. }) = scan.lines.last_mut() {
                *end = (*end).min(pos);
            }
        }
        if pos < bytes.len() {
            pos += 1;
            line += 1;
            scan.line_starts.push(pos);
        }
    }
    scan
}

/// The indent width of a line (tabs to the next multiple of 8, as pycodestyle's `expand_indent`)
/// and its length in bytes.
fn indent_of(bytes: &[u8]) -> (usize, usize) {
    let mut width = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        match byte {
            b' ' => width += 1,
            b'\t' => width = width / 8 * 8 + 8,
            b'\x0c' => width = 0,
            _ => return (width, index),
        }
    }
    (width, bytes.len())
}

/// Skip the string whose opening quote is at `start`, counting the lines it spans (each one after
/// the first starts inside it) and recording invalid escapes; returns the offset after it.
fn string(
    text: &str,
    start: usize,
    quote: u8,
    line: &mut usize,
    scan: &mut Scan,
    escapes: bool,
) -> usize {
    let bytes = text.as_bytes();
    let prefix = prefix_of(bytes, start);
    let raw = prefix.iter().any(|&byte| byte == b'r' || byte == b'R');
    let is_bytes = prefix.iter().any(|&byte| byte == b'b' || byte == b'B');
    let triple = bytes.get(start..start + 3) == Some(&[quote, quote, quote][..]);
    let mut pos = start + if triple { 3 } else { 1 };
    let new_line = |line: &mut usize, scan: &mut Scan, at: usize| {
        *line += 1;
        scan.line_starts.push(at);
        scan.in_string.push(*line);
    };
    while pos < bytes.len() {
        match bytes[pos] {
            b'\\' => {
                let Some(&next) = bytes.get(pos + 1) else {
                    return bytes.len();
                };
                if escapes && !raw && !valid_escape(next, is_bytes) {
                    let shown = text[pos + 1..].chars().next().unwrap_or('?');
                    scan.escapes.push(Finding {
                        line: *line,
                        code: "W605",
                        message: format!("invalid escape sequence '\\{shown}'"),
                    });
                }
                if next == b'\n' {
                    new_line(line, scan, pos + 2);
                } else if next == b'\r' && bytes.get(pos + 2) == Some(&b'\n') {
                    pos += 1;
                    new_line(line, scan, pos + 2);
                }
                pos += 2;
            }
            b'\n' if !triple => return pos,
            b'\n' => {
                pos += 1;
                new_line(line, scan, pos);
            }
            byte if byte == quote => {
                if !triple {
                    return pos + 1;
                }
                if bytes.get(pos..pos + 3) == Some(&[quote, quote, quote][..]) {
                    return pos + 3;
                }
                pos += 1;
            }
            _ => pos += 1,
        }
    }
    bytes.len()
}

/// The string prefix (`r`, `b`, `rb`, `f`, ...) before the quote at `quote`, or nothing when the
/// letters before it are a longer name (not valid Python anyway).
fn prefix_of(bytes: &[u8], quote: usize) -> &[u8] {
    let mut start = quote;
    while start > 0 && bytes[start - 1].is_ascii_alphabetic() && quote - start < 3 {
        start -= 1;
    }
    let prefix = &bytes[start..quote];
    let is_name = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80;
    let stands_alone = start == 0 || !is_name(bytes[start - 1]);
    if prefix.len() <= 2 && stands_alone && prefix.iter().all(|byte| b"rRbBuUfFtT".contains(byte)) {
        prefix
    } else {
        &[]
    }
}

/// Whether `\` followed by `next` is an escape Python knows (`\N`, `\u`, `\U` only in text).
fn valid_escape(next: u8, is_bytes: bool) -> bool {
    matches!(
        next,
        b'\n' | b'\r' | b'\\' | b'\'' | b'"' | b'a' | b'b' | b'f' | b'n' | b'r' | b't' | b'v'
    ) || (b'0'..=b'7').contains(&next)
        || next == b'x'
        || (!is_bytes && matches!(next, b'N' | b'u' | b'U'))
}

impl Scan {
    /// The indent width of the 1-based physical `line` (0 for a line past the end).
    fn indent_at(&self, text: &str, line: usize) -> usize {
        match self.line_starts.get(line.wrapping_sub(1)) {
            Some(&start) => indent_of(&text.as_bytes()[start..]).0,
            None => 0,
        }
    }

    /// The 1-based physical `line`'s text, without its newline.
    fn line_text<'a>(&self, text: &'a str, line: usize) -> &'a str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map_or(text.len(), |&next| next.saturating_sub(1));
        text.get(start..end.max(start)).unwrap_or("")
    }

    /// pycodestyle's blank-line findings (E301-E306); `stub` files (`.pyi`) skip the ones
    /// flake8-pyi turns off (E301, E302, E305), since stubs keep definitions together.
    pub(super) fn blank_line_findings(&self, text: &str, stub: bool) -> Vec<Finding> {
        let mut findings = Vec::new();
        let (mut blank_lines, mut blank_before) = (0, 0);
        let mut previous_logical: Option<&str> = None;
        let mut previous_indent = 0;
        let mut previous_unindented = "";
        for &physical in &self.lines {
            let (line, indent, logical) = match physical {
                Line::Blank => {
                    blank_lines += 1;
                    continue;
                }
                Line::Comment { line, indent } => (line, indent, ""),
                Line::Code {
                    line,
                    indent,
                    start,
                    end,
                } => (line, indent, text.get(start..end).unwrap_or("")),
            };
            blank_before = blank_before.max(blank_lines);
            let found = |code: &'static str, message: String| Finding {
                line,
                code,
                message,
            };
            let previous = previous_logical.unwrap_or("");
            if previous_logical.is_none() && blank_before < TOP_LEVEL_LINES {
                // No blank lines expected before the first line.
            } else if previous.starts_with('@') {
                if blank_lines > 0 {
                    let message = "blank lines found after function decorator".to_string();
                    findings.push(found("E304", message));
                }
            } else if blank_lines > TOP_LEVEL_LINES
                || (indent > 0 && blank_lines == METHOD_LINES + 1)
            {
                findings.push(found(
                    "E303",
                    format!("too many blank lines ({blank_lines})"),
                ));
            } else if starts_top_level(logical) {
                if blank_before == 0
                    && (self.is_one_liner(text, line, indent) || is_stub_definition(previous))
                {
                    // A group of one-liners (dummy implementations) may stay together, and so
                    // may a definition after a stub (`@overload`s whose signatures span lines,
                    // as black and ruff format them).
                } else if indent > 0 {
                    let separated = blank_before == METHOD_LINES
                        || previous_indent < indent
                        || is_docstring(previous);
                    if !separated && !stub {
                        findings.push(self.method_finding(text, line, indent));
                    }
                } else if blank_before != TOP_LEVEL_LINES && !stub {
                    let message = format!("expected 2 blank lines, found {blank_before}");
                    findings.push(found("E302", message));
                }
            } else if !logical.is_empty()
                && indent == 0
                && blank_before != TOP_LEVEL_LINES
                && !stub
                && (previous_unindented.starts_with("def ")
                    || previous_unindented.starts_with("class "))
            {
                let message = format!(
                    "expected 2 blank lines after class or function definition, \
                     found {blank_before}"
                );
                findings.push(found("E305", message));
            }
            blank_lines = 0;
            if !logical.is_empty() {
                previous_logical = Some(logical);
                previous_indent = indent;
                if indent == 0 {
                    previous_unindented = logical;
                }
                blank_before = 0;
            }
        }
        findings.retain(|finding| !self.is_noqa(text, finding.line));
        findings
    }

    /// E301 (a method without a blank line before it) or E306 (a nested function), as
    /// pycodestyle tells them apart: by the nearest less indented line above.
    fn method_finding(&self, text: &str, line: usize, indent: usize) -> Finding {
        let mut ancestor = indent;
        let mut nested = false;
        for above in (1..line).rev() {
            let body = self.line_text(text, above);
            if body.trim().is_empty() {
                continue;
            }
            let level = self.indent_at(text, above);
            if level < ancestor {
                ancestor = level;
                nested = starts_def(body.trim_start());
                if nested || ancestor == 0 {
                    break;
                }
            }
        }
        let (code, what) = if nested {
            (
                "E306",
                "expected 1 blank line before a nested definition, found 0",
            )
        } else {
            ("E301", "expected 1 blank line, found 0")
        };
        Finding {
            line,
            code,
            message: what.to_string(),
        }
    }

    /// pycodestyle's `_is_one_liner`: the definition starting at `line` (after its decorators)
    /// has no indented body.
    fn is_one_liner(&self, text: &str, line: usize, indent: usize) -> bool {
        if line > 1 && self.indent_at(text, line - 1) > indent {
            return false;
        }
        let total = self.line_starts.len();
        let mut at = line;
        while at <= total {
            let body = self.line_text(text, at).trim();
            if !body.starts_with('@') && starts_top_level(body) {
                break;
            }
            at += 1;
        }
        if at > total {
            return false;
        }
        let mut next = at + 1;
        while next <= total && self.line_text(text, next).trim().is_empty() {
            next += 1;
        }
        next > total || self.indent_at(text, next) <= indent
    }

    /// Whether the physical `line` carries a `# noqa` comment.
    fn is_noqa(&self, text: &str, line: usize) -> bool {
        let body = self.line_text(text, line).to_ascii_lowercase();
        body.contains("# noqa") || body.contains("#noqa")
    }

    /// E111: logical lines of code indented by a width that is not a multiple of four. A file
    /// indented that way throughout (two-space style) is its style, not a slip: then none.
    pub(super) fn indent_findings(&self, text: &str) -> Vec<Finding> {
        let mut indented = 0;
        let mut findings = Vec::new();
        for physical in &self.lines {
            if let Line::Code { line, indent, .. } = *physical {
                if indent == 0 {
                    continue;
                }
                indented += 1;
                if indent % 4 != 0 && !self.is_noqa(text, line) {
                    findings.push(Finding {
                        line,
                        code: "E111",
                        message: "indentation is not a multiple of 4".to_string(),
                    });
                }
            }
        }
        if findings.len() * 4 > indented {
            findings.clear();
        }
        findings
    }
}

/// pycodestyle's `STARTSWITH_TOP_LEVEL_REGEX`: `def`, `async def`, `class` or a decorator.
fn starts_top_level(logical: &str) -> bool {
    logical.starts_with('@') || starts_def(logical) || keyword_then_space(logical, "class")
}

/// pycodestyle's `STARTSWITH_DEF_REGEX` (with the space its top-level regex asks for).
fn starts_def(logical: &str) -> bool {
    if let Some(rest) = logical.strip_prefix("async") {
        let rest = rest.trim_start_matches([' ', '\t']);
        return rest.len() < logical.len() - 5 && keyword_then_space(rest, "def");
    }
    keyword_then_space(logical, "def")
}

fn keyword_then_space(logical: &str, keyword: &str) -> bool {
    logical
        .strip_prefix(keyword)
        .is_some_and(|rest| rest.starts_with([' ', '\t']))
}

/// A definition whose body is `...` on its own last line (`def f(x: int) -> int: ...`), as ruff's
/// blank-line rules allow to sit right before the next definition.
fn is_stub_definition(logical: &str) -> bool {
    if !starts_def(logical) && !keyword_then_space(logical, "class") {
        return false;
    }
    let code = match logical.rfind('#') {
        Some(comment) if !logical[comment..].contains(['"', '\'']) => &logical[..comment],
        _ => logical,
    };
    code.trim_end()
        .strip_suffix("...")
        .is_some_and(|head| head.trim_end().ends_with(':'))
}

/// pycodestyle's `DOCSTRING_REGEX`: the line starts with a string.
fn is_docstring(logical: &str) -> bool {
    let rest = logical.strip_prefix('u').unwrap_or(logical);
    let rest = rest.strip_prefix('r').unwrap_or(rest);
    rest.starts_with(['"', '\''])
}
