//! A test file shown as the failing tests' own functions (with the file's imports), not whole. The
//! functions' extents come from the tree-sitter parse (`hone_tools::context::definitions`); files
//! without a grammar, and test cases that are calls (`it("...", ...)`), fall back to indentation.

use hone_tools::context::Definition;

/// Lines (1-based, inclusive ranges, in file order) of a test file worth showing for a failure:
/// its import header and the whole function of each failing test the output names or points into.
/// Empty when the output names none of the file's tests.
pub(crate) fn failing_test_regions(
    content: &str,
    path: &str,
    failure_output: Option<&str>,
) -> Vec<(usize, usize)> {
    let Some(output) = failure_output else {
        return Vec::new();
    };
    let lines: Vec<&str> = content.lines().collect();
    let parsed: Vec<Definition> = hone_tools::context::definitions(path, content)
        .into_iter()
        .filter(|definition| matches!(definition.kind, "function" | "method"))
        .collect();
    // 0-based first line, and last line when the parse knows it.
    let mut starts: Vec<(usize, Option<usize>)> = Vec::new();
    // Lines the output points at in this file, as the definitions around them.
    for location in hone_tools::context::extract_locations(output) {
        if location.path != path {
            continue;
        }
        if let Some(line) = location
            .line
            .filter(|&line| line >= 1 && line <= lines.len())
        {
            let innermost = parsed
                .iter()
                .filter(|definition| definition.start_line <= line && line <= definition.end_line)
                .min_by_key(|definition| definition.end_line - definition.start_line);
            if let Some(definition) = innermost {
                starts.push((definition.start_line - 1, Some(definition.end_line - 1)));
            } else if let Some(start) = enclosing_definition(&lines, line - 1) {
                starts.push((start, None));
            }
        }
    }
    // Test names in the output that this file defines.
    for word in output.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if word.len() < 4 {
            continue;
        }
        if let Some(definition) = parsed.iter().find(|definition| definition.name == word) {
            starts.push((definition.start_line - 1, Some(definition.end_line - 1)));
        } else if let Some(start) = lines.iter().position(|line| defines(line, word)) {
            starts.push((start, None));
        }
    }
    starts.sort_unstable();
    starts.dedup();
    let mut regions: Vec<(usize, usize)> = Vec::new();
    for (start, end) in starts.into_iter().take(MAX_FOCUSED_TESTS) {
        let (from, to) = match end {
            Some(end) => (with_decorators(&lines, start), end.min(lines.len() - 1)),
            None => definition_span(&lines, start),
        };
        let (from, to) = (from + 1, to + 1);
        match regions.last_mut() {
            Some(last) if from <= last.1 + 1 => last.1 = last.1.max(to),
            _ => regions.push((from, to)),
        }
    }
    if regions.is_empty() {
        return regions;
    }
    // The header: the lines before the first definition or class (imports, fixtures' setup),
    // when short enough to be worth it.
    let header_end = lines
        .iter()
        .position(|line| {
            let trimmed = line.trim_start();
            line.len() == trimmed.len()
                && DEFINITION_STARTS
                    .iter()
                    .chain(&["class ", "impl ", "mod ", "describe("])
                    .any(|start| trimmed.starts_with(start))
        })
        .unwrap_or(0);
    let header_end = lines[..header_end]
        .iter()
        .rposition(|line| !line.trim().is_empty())
        .map_or(0, |last| last + 1);
    if header_end > 0 && header_end <= MAX_TEST_HEADER_LINES {
        match regions.first_mut() {
            Some(first) if first.0 <= header_end + 1 => first.0 = 1,
            _ => regions.insert(0, (1, header_end)),
        }
    }
    regions
}

/// Failing tests shown from one test file at most.
const MAX_FOCUSED_TESTS: usize = 3;
/// Longest import header shown with focused tests.
const MAX_TEST_HEADER_LINES: usize = 20;
/// How definitions start, trimmed (Python, Rust, Go, JavaScript, Java-ish test cases).
const DEFINITION_STARTS: [&str; 10] = [
    "def ",
    "async def ",
    "fn ",
    "pub fn ",
    "async fn ",
    "func ",
    "function ",
    "it(",
    "test(",
    "public void ",
];

/// Whether `line` defines `name` (`def name(`, `fn name(`, `it("name"` ...).
fn defines(line: &str, name: &str) -> bool {
    let trimmed = line.trim_start();
    DEFINITION_STARTS.iter().any(|start| {
        trimmed.strip_prefix(start).is_some_and(|rest| {
            // `it("name"` / `test('name'`: the name is the quoted text.
            let rest = if start.ends_with('(') {
                match rest.strip_prefix(['"', '\'', '`']) {
                    Some(quoted) => quoted,
                    None => return false,
                }
            } else {
                rest
            };
            rest.strip_prefix(name)
                .is_some_and(|after| after.starts_with(['(', '<', ' ', '"', '\'', '`']))
        })
    })
}

/// The 0-based line of the definition enclosing line `at` (or starting there).
fn enclosing_definition(lines: &[&str], at: usize) -> Option<usize> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    // Only lines indented less than everything seen so far enclose the line.
    let mut bound = indent(lines[at]) + 1;
    for index in (0..=at).rev() {
        let line = lines[index];
        if line.trim().is_empty() {
            continue;
        }
        let depth = indent(line);
        if depth >= bound {
            continue;
        }
        let trimmed = line.trim_start();
        if DEFINITION_STARTS
            .iter()
            .any(|start| trimmed.starts_with(start))
        {
            return Some(index);
        }
        bound = depth;
    }
    None
}

/// 0-based first and last line of the definition starting at `start`: decorators and attributes
/// above it, and its body (every following line indented deeper, plus a closing bracket line at
/// its own depth).
fn definition_span(lines: &[&str], start: usize) -> (usize, usize) {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let depth = indent(lines[start]);
    let from = with_decorators(lines, start);
    let mut end = start;
    for (index, line) in lines.iter().enumerate().skip(start + 1) {
        if line.trim().is_empty() {
            continue;
        }
        if indent(line) > depth {
            end = index;
            continue;
        }
        if indent(line) == depth && matches!(line.trim(), "}" | "});" | "})" | "end" | ")") {
            end = index;
        }
        break;
    }
    (from, end)
}

/// The first line (0-based) of the definition starting at `start` with the decorators and
/// attributes above it (`@pytest.mark...`, `#[test]`).
fn with_decorators(lines: &[&str], start: usize) -> usize {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let depth = indent(lines[start]);
    let mut from = start;
    while from > 0 {
        let above = lines[from - 1];
        let trimmed = above.trim_start();
        if indent(above) == depth && (trimmed.starts_with('@') || trimmed.starts_with("#[")) {
            from -= 1;
        } else {
            break;
        }
    }
    from
}
