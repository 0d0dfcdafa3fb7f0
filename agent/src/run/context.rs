//! Gathering what the prompts need from the repository: the ranked context (read from the run's base
//! state and fitted to the token budget; a test file as the failing tests' own functions), repository
//! facts (file list, AGENTS.md / README excerpt), the fallback plan, and the lines failing tests point
//! at; and the token budgets: the first prompt's sections split within the backend's window, the
//! answer budget, and a conversation kept inside the window on later iterations.

use hone_prompts::{ContextFile, FailureLocation, PlanItem, RepoFacts, TokenCounter};
use hone_tools::{ContextQuery, Repository, TreeSource};

use crate::changes::ChangeSet;
use crate::Result;

/// Files listed in the prompt at most.
const LISTED_FILES: usize = 60;
/// Characters of AGENTS.md / README shown.
const INSTRUCTIONS_CHARS: usize = 1500;
/// Largest region the fallback plan or infill rewrites as a whole file.
pub(crate) const WHOLE_FILE_LINES: usize = 80;

/// Text of `path` in the base state with the carried changes on top; `None` when absent or not text.
pub(crate) fn current_text(
    repo: &Repository,
    source: &TreeSource,
    carried: &ChangeSet,
    path: &str,
) -> Option<String> {
    if let Some(change) = carried.files.iter().find(|file| file.path == path) {
        return change.after.clone();
    }
    repo.read_file(path, source, hone_tools::repo::DEFAULT_MAX_FILE_BYTES)
        .ok()
        .and_then(|content| content.text().map(str::to_owned))
}

/// Tokens the template and message framing add around the sections of the first prompt.
const FRAME_TOKENS: usize = 200;
/// Answer room kept on top of a whole file's tokens (the path line, fences, a sentence).
const WHOLE_FILE_MARGIN: usize = 96;
/// The smallest answer budget worth asking for.
const MIN_ANSWER_TOKENS: usize = 256;

/// Token budgets of the first prompt's variable sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FirstPromptBudget {
    /// Tokens of code (`fit_context`).
    pub code: usize,
    pub failing: usize,
    pub file_list: usize,
    pub instructions: usize,
    /// Budgets of the caller's extra sections (e.g. a repository map), in the order given.
    pub extra: Vec<usize>,
}

/// The answer room reserved before the prompt is built: the requested answer budget, but at most
/// three eighths of a known window (a 4,096-token window keeps 2,560 for the prompt).
pub(crate) fn answer_reserve(window: Option<usize>, max_tokens: usize) -> usize {
    window.map_or(max_tokens, |window| max_tokens.min(window * 3 / 8))
}

/// What the first prompt has to fit in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PromptRoom {
    /// The backend's window, when known.
    pub window: Option<usize>,
    /// Tokens kept for the answer.
    pub answer: usize,
    /// Tokens of the parts that are never cut (system prompt, task).
    pub fixed: usize,
    /// Tokens of code wanted (the run's code budget).
    pub code_wanted: usize,
}

/// Split what the window leaves after the answer and the fixed parts (`fixed`: system prompt and
/// task) between the failing tests, the code, the file list, the instructions and any `extra`
/// sections, most important first. Without a known window every section gets what it wants and
/// the code its usual budget (`code_wanted`).
pub(crate) fn first_prompt_budget(
    room: &PromptRoom,
    facts: &RepoFacts,
    failing: Option<&str>,
    extra: &[hone_prompts::Section],
    counter: &dyn TokenCounter,
) -> FirstPromptBudget {
    let mut sections = vec![
        hone_prompts::Section::new(
            "failing tests",
            failing.map_or(0, |text| counter.count(text)),
            64,
        ),
        hone_prompts::Section::new("code", room.code_wanted, 512),
        hone_prompts::Section::new("file list", file_list_tokens(&facts.files, counter), 96),
        hone_prompts::Section::new(
            "instructions",
            facts
                .instructions
                .as_deref()
                .map_or(0, |text| counter.count(text)),
            96,
        ),
    ];
    sections.extend(extra.iter().cloned());
    let given: Vec<usize> = match room.window {
        Some(window) => {
            let available = window.saturating_sub(room.answer + room.fixed + FRAME_TOKENS);
            hone_prompts::allot(available, &sections)
        }
        None => sections.iter().map(|section| section.wanted).collect(),
    };
    FirstPromptBudget {
        failing: given[0],
        code: given[1],
        file_list: given[2],
        instructions: given[3],
        extra: given[4..].to_vec(),
    }
}

/// Tokens of one line of the file list (`- path`).
fn path_tokens(path: &str, counter: &dyn TokenCounter) -> usize {
    counter.count(path) + 2
}

fn file_list_tokens(files: &[String], counter: &dyn TokenCounter) -> usize {
    files.iter().map(|path| path_tokens(path, counter)).sum()
}

/// The repository facts and failing summary cut to their budgets.
pub(crate) fn fit_facts(
    mut facts: RepoFacts,
    failing: Option<&str>,
    budget: &FirstPromptBudget,
    counter: &dyn TokenCounter,
) -> (RepoFacts, Option<String>) {
    let mut used = 0;
    let mut files = Vec::new();
    for path in facts.files {
        let cost = path_tokens(&path, counter);
        if used + cost > budget.file_list {
            break;
        }
        used += cost;
        files.push(path);
    }
    facts.files = files;
    facts.instructions = facts
        .instructions
        .map(|text| hone_prompts::cut_to_tokens(&text, budget.instructions, counter))
        .filter(|text| !text.trim().is_empty() && !text.starts_with("[..."));
    if facts.instructions.is_none() {
        facts.instructions_source = None;
    }
    let failing = failing.map(|text| hone_prompts::cut_to_tokens(text, budget.failing, counter));
    (facts, failing)
}

/// The answer budget for edit blocks: the requested one, raised to hold any file of the context
/// rewritten whole (models answer small files with whole-file blocks, and a cut-off whole file is
/// lost), and capped by what a known window leaves after the prompt.
pub(crate) fn answer_budget(
    window: Option<usize>,
    max_tokens: usize,
    context: &[ContextFile],
    prompt_tokens: usize,
    counter: &dyn TokenCounter,
) -> usize {
    let whole_file = context
        .iter()
        .filter(|file| file.whole)
        .map(|file| {
            let tokens = counter.count(&file.content);
            tokens + tokens / 8 + counter.count(&file.path) + WHOLE_FILE_MARGIN
        })
        .max()
        .unwrap_or(0);
    let wanted = max_tokens.max(whole_file);
    match window {
        Some(window) => wanted
            .min(window.saturating_sub(prompt_tokens))
            .max(MIN_ANSWER_TOKENS),
        None => wanted,
    }
}

/// Keep a conversation inside a known window with `answer` tokens to spare: drop the oldest
/// answer/feedback turns after the task (the latest turn stays), then cut the latest message.
/// Returns how many messages were dropped.
pub(crate) fn fit_conversation(
    messages: &mut Vec<crate::model::Message>,
    window: Option<usize>,
    answer: usize,
    counter: &dyn TokenCounter,
) -> usize {
    let Some(window) = window else { return 0 };
    let limit = window.saturating_sub(answer);
    let total = |messages: &[crate::model::Message]| -> usize {
        messages
            .iter()
            .map(|message| counter.count(&message.content) + 4)
            .sum()
    };
    let mut dropped = 0;
    // messages: system, task, then (answer, feedback) pairs.
    while total(messages) > limit && messages.len() > 4 {
        messages.drain(2..4);
        dropped += 2;
    }
    let over = total(messages).saturating_sub(limit);
    if over > 0 && messages.len() > 2 {
        if let Some(last) = messages.last_mut() {
            let keep = counter.count(&last.content).saturating_sub(over);
            last.content = hone_prompts::cut_to_tokens(&last.content, keep, counter);
        }
    }
    dropped
}

/// Token counts of what a request sends, by section: the system prompt, the first task message's
/// sections, then each later message by role.
pub(crate) fn message_sections(
    messages: &[crate::model::Message],
    task_sections: &[(String, usize)],
    counter: &dyn TokenCounter,
) -> Vec<(String, usize)> {
    let mut sections = Vec::new();
    let mut turn = 0;
    for (index, message) in messages.iter().enumerate() {
        match (index, message.role) {
            (0, crate::model::Role::System) => {
                sections.push(("system".to_owned(), counter.count(&message.content)));
            }
            (1, _) if !task_sections.is_empty() => sections.extend(task_sections.iter().cloned()),
            (_, role) => {
                if role == crate::model::Role::Assistant {
                    turn += 1;
                }
                let name = match role {
                    crate::model::Role::Assistant => format!("earlier answer {turn}"),
                    _ => format!("feedback {turn}"),
                };
                sections.push((name, counter.count(&message.content)));
            }
        }
    }
    sections
}

/// Repository facts for the prompts.
pub(crate) fn repo_facts(
    repo: &Repository,
    source: &TreeSource,
    test_command: &str,
) -> Result<RepoFacts> {
    let files = repo.list_files()?;
    let name = repo
        .root()
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repository".to_owned());
    let mut instructions = None;
    let mut instructions_source = None;
    for candidate in ["AGENTS.md", "CONTRIBUTING.md", "README.md", "README"] {
        if let Some(text) = current_text(repo, source, &ChangeSet::default(), candidate) {
            let excerpt: String = text.chars().take(INSTRUCTIONS_CHARS).collect();
            instructions = Some(excerpt.trim_end().to_owned());
            instructions_source = Some(candidate.to_owned());
            break;
        }
    }
    Ok(RepoFacts {
        name,
        test_command: Some(test_command.to_owned()),
        file_count: files.len(),
        files: files
            .iter()
            .take(LISTED_FILES)
            .map(|file| file.path.clone())
            .collect(),
        instructions,
        instructions_source,
    })
}

/// The repo map for the prompt: signatures of the ranked files not shown whole, in an eighth of
/// the context budget (at most 512 tokens).
pub(crate) fn repo_map(
    fitted: &hone_prompts::Fitted,
    ranked: &[hone_tools::RankedFile],
    context_budget: usize,
) -> String {
    // Test files are left out: their signatures are the names of passing tests, and the failing
    // ones are already shown as code (`failing_test_regions`).
    let others: Vec<hone_tools::RankedFile> = ranked
        .iter()
        .filter(|file| file.class != hone_tools::context::FileClass::Test)
        .filter(|file| {
            !fitted
                .files
                .iter()
                .any(|shown| shown.path == file.path && shown.whole)
        })
        .cloned()
        .collect();
    hone_tools::context::repo_map(&others, (context_budget / 8).min(512))
        .trim_end()
        .to_owned()
}

/// Rank the repository for the task and read the chosen files (whole; the budget narrows them).
pub(crate) fn ranked_context(
    repo: &Repository,
    source: &TreeSource,
    task: &str,
    failure_output: Option<&str>,
    named: &[String],
    budget: usize,
    counter: &dyn TokenCounter,
) -> Result<(hone_prompts::Fitted, Vec<hone_tools::RankedFile>)> {
    let query = ContextQuery {
        task: task.to_owned(),
        failure_output: failure_output.map(str::to_owned),
        named_files: named.to_vec(),
        top: 8,
    };
    let ranking = hone_tools::select_context(repo, &query)?;
    let mut files = Vec::new();
    for ranked in &ranking.files {
        let Some(content) = current_text(repo, source, &ChangeSet::default(), &ranked.path) else {
            continue;
        };
        let lines = content.lines().count();
        let reason = describe_reasons(&ranked.reasons);
        // A test file is shown as the failing tests' own functions (with the file's imports), not
        // whole: the rest of the file is other tests, and it is often the largest file ranked.
        if is_test_path(&ranked.path) {
            let focused = failing_test_regions(&content, &ranked.path, failure_output);
            if !focused.is_empty() {
                files.extend(focused.into_iter().map(|(start, end)| {
                    ContextFile {
                        path: ranked.path.clone(),
                        content: content
                            .lines()
                            .skip(start - 1)
                            .take(end + 1 - start)
                            .collect::<Vec<_>>()
                            .join("\n"),
                        reason: reason.clone(),
                        start_line: start,
                        end_line: end,
                        whole: start == 1 && end == lines,
                    }
                }));
                continue;
            }
        }
        // Centre a narrowed window on the best region: `fit_context` narrows around the middle.
        let (content, start_line, end_line, whole) = match ranked.regions.first() {
            Some(region) if lines > WHOLE_FILE_LINES * 3 => {
                let from = region.start_line.saturating_sub(WHOLE_FILE_LINES).max(1);
                let to = (region.end_line + WHOLE_FILE_LINES).min(lines);
                let text = content
                    .lines()
                    .skip(from - 1)
                    .take(to + 1 - from)
                    .collect::<Vec<_>>()
                    .join("\n");
                (text, from, to, false)
            }
            _ => (content.trim_end_matches('\n').to_owned(), 1, lines, true),
        };
        files.push(ContextFile {
            path: ranked.path.clone(),
            content,
            reason,
            start_line,
            end_line,
            whole,
        });
    }
    Ok((
        hone_prompts::fit_context(files, budget, counter),
        ranking.files,
    ))
}

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
    let mut starts: Vec<usize> = Vec::new();
    // Lines the output points at in this file, as the definitions around them.
    for location in hone_tools::context::extract_locations(output) {
        if location.path != path {
            continue;
        }
        if let Some(line) = location
            .line
            .filter(|&line| line >= 1 && line <= lines.len())
        {
            if let Some(start) = enclosing_definition(&lines, line - 1) {
                starts.push(start);
            }
        }
    }
    // Test names in the output that this file defines.
    for word in output.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if word.len() < 4 {
            continue;
        }
        if let Some(start) = lines.iter().position(|line| defines(line, word)) {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    starts.dedup();
    let mut regions: Vec<(usize, usize)> = Vec::new();
    for start in starts.into_iter().take(MAX_FOCUSED_TESTS) {
        let (from, to) = definition_span(&lines, start);
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

fn describe_reasons(reasons: &[hone_tools::Reason]) -> String {
    reasons
        .iter()
        .map(|reason| match reason {
            hone_tools::Reason::Named => "named in the task".to_owned(),
            hone_tools::Reason::InTrace { lines } if lines.is_empty() => {
                "in the test output".to_owned()
            }
            hone_tools::Reason::InTrace { lines } => format!(
                "in the test output at line {}",
                lines
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hone_tools::Reason::Terms { terms } => format!(
                "mentions {}",
                terms
                    .iter()
                    .take(4)
                    .map(|(term, _)| term.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hone_tools::Reason::PathTerms { terms } => format!("path matches {}", terms.join(", ")),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The plan used when the model's is unusable: lines failing tests point at (as their enclosing
/// ranked region), then the best region of the top-ranked files. Unless `allow_test_edits`, test
/// code is never a target: test files are skipped, and so are regions that overlap the test code
/// of a source file (a Rust `#[cfg(test)]` module); a whole-file item stops before it.
pub(crate) fn fallback_plan(
    repo: &Repository,
    source: &TreeSource,
    ranked: &[hone_tools::RankedFile],
    failure_output: Option<&str>,
    allow_test_edits: bool,
) -> Vec<PlanItem> {
    let mut items: Vec<PlanItem> = Vec::new();
    let mut locations = failure_output
        .map(hone_tools::context::extract_locations)
        .unwrap_or_default();
    // The code under test before the tests themselves: a trace names the test first, but the fix
    // is usually elsewhere (and rewriting a test is how a weak model "passes").
    locations.sort_by_key(|location| is_test_path(&location.path));
    let mut ranked: Vec<&hone_tools::RankedFile> = ranked.iter().collect();
    ranked.sort_by_key(|file| is_test_path(&file.path));
    let test_code = |path: &str, content: &str, start: usize, end: usize| {
        !allow_test_edits && targets_test_code(path, content, start, end)
    };
    for location in locations {
        let Some(line) = location.line else { continue };
        let Some(content) = current_text(repo, source, &ChangeSet::default(), &location.path)
        else {
            continue;
        };
        if test_code(&location.path, &content, line, line) {
            continue;
        }
        let region = ranked
            .iter()
            .find(|file| file.path == location.path)
            .and_then(|file| {
                file.regions
                    .iter()
                    .find(|r| r.start_line <= line && line <= r.end_line)
            });
        let lines = content.lines().count().max(1);
        let (start, end) = match region {
            Some(region)
                if !test_code(&location.path, &content, region.start_line, region.end_line) =>
            {
                (region.start_line, region.end_line)
            }
            _ => (line.saturating_sub(5).max(1), (line + 5).min(lines)),
        };
        if test_code(&location.path, &content, start, end) {
            continue;
        }
        push_unique(
            &mut items,
            PlanItem {
                path: location.path,
                start_line: start,
                end_line: end,
                why: format!("a failing test points at line {line}"),
            },
        );
        if items.len() >= 3 {
            return items;
        }
    }
    let mut taken = 0;
    for file in ranked {
        if taken >= 3 {
            break;
        }
        let content = if allow_test_edits {
            String::new()
        } else if is_test_path(&file.path) {
            continue;
        } else {
            current_text(repo, source, &ChangeSet::default(), &file.path).unwrap_or_default()
        };
        taken += 1;
        let region = file
            .regions
            .iter()
            .find(|region| !test_code(&file.path, &content, region.start_line, region.end_line));
        let item = match region {
            Some(region) => PlanItem {
                path: file.path.clone(),
                start_line: region.start_line,
                end_line: region.end_line,
                why: format!("most relevant region ({})", region.name),
            },
            None => match first_test_line(&file.path, &content) {
                // The file's code before its test module.
                Some(first) if !allow_test_edits => {
                    if first <= 1 {
                        continue;
                    }
                    PlanItem {
                        path: file.path.clone(),
                        start_line: 1,
                        end_line: (first - 1).min(WHOLE_FILE_LINES),
                        why: "most relevant file (its code, not its tests)".to_owned(),
                    }
                }
                _ => PlanItem {
                    path: file.path.clone(),
                    start_line: 0,
                    end_line: 0,
                    why: "most relevant file".to_owned(),
                },
            },
        };
        push_unique(&mut items, item);
        if items.len() >= 3 {
            break;
        }
    }
    items
}

/// Whether a path looks like a test file (`test_x.py`, `x_test.go`, `x.test.ts`, `tests/...`).
pub(crate) fn is_test_path(path: &str) -> bool {
    hone_tools::runner::integrity::is_test_path(path)
}

/// Whether lines `start..=end` (1-based) of `path` are test code: a test file, or lines that
/// overlap the test code of a source file (a Rust `#[cfg(test)]` module, a `#[test]` function).
pub(crate) fn targets_test_code(path: &str, content: &str, start: usize, end: usize) -> bool {
    if is_test_path(path) {
        return true;
    }
    let (start, end) = (start.max(1) - 1, end.max(start.max(1)));
    hone_tools::runner::integrity::test_regions(path, content)
        .iter()
        .any(|region| region.start < end && start < region.end)
}

/// A plan item that does not target test code: unchanged when it does not, a whole-file item cut
/// before the file's test code, `None` when it is test code.
pub(crate) fn without_test_code(item: PlanItem, content: &str) -> Option<PlanItem> {
    if item.start_line == 0 && !is_test_path(&item.path) {
        return match first_test_line(&item.path, content) {
            None => Some(item),
            Some(first) if first > 1 => Some(PlanItem {
                start_line: 1,
                end_line: (first - 1).min(WHOLE_FILE_LINES),
                ..item
            }),
            Some(_) => None,
        };
    }
    let end = item.end_line.max(item.start_line);
    (!targets_test_code(&item.path, content, item.start_line, end)).then_some(item)
}

/// The first line (1-based) of test code inside a source file, if any.
fn first_test_line(path: &str, content: &str) -> Option<usize> {
    hone_tools::runner::integrity::test_regions(path, content)
        .first()
        .map(|region| region.start + 1)
}

fn push_unique(items: &mut Vec<PlanItem>, item: PlanItem) {
    if !items
        .iter()
        .any(|existing| existing.path == item.path && existing.start_line == item.start_line)
    {
        items.push(item);
    }
}

/// Up to five locations named in the test output that are files of the repository, with two lines
/// of context each (from the candidate's state).
pub(crate) fn failure_locations(
    repo: &Repository,
    source: &TreeSource,
    state: &ChangeSet,
    output: &str,
) -> Vec<FailureLocation> {
    let mut locations = Vec::new();
    for location in hone_tools::context::extract_locations(output) {
        let Some(line) = location.line else { continue };
        let Some(content) = current_text(repo, source, state, &location.path) else {
            continue;
        };
        let lines: Vec<&str> = content.lines().collect();
        if line == 0 || line > lines.len() {
            continue;
        }
        let from = line.saturating_sub(3);
        let to = (line + 2).min(lines.len());
        let excerpt = (from..to)
            .map(|index| {
                format!(
                    "{:>5}{} {}",
                    index + 1,
                    if index + 1 == line { ">" } else { " " },
                    lines[index]
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        if !locations
            .iter()
            .any(|known: &FailureLocation| known.path == location.path && known.line == line)
        {
            locations.push(FailureLocation {
                path: location.path,
                line,
                excerpt,
            });
        }
        if locations.len() >= 5 {
            break;
        }
    }
    locations
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const TESTS: &str = "import unittest\nfrom calc import add, sub\n\n\nclass CalcTests(unittest.TestCase):\n    def test_sub(self):\n        self.assertEqual(sub(3, 1), 2)\n\n    def test_add(self):\n        total = add(2, 3)\n        self.assertEqual(total, 5)\n\n    def test_zero(self):\n        self.assertEqual(add(0, 0), 0)\n";

    #[test]
    fn a_failing_test_named_in_the_output_is_shown_with_the_imports() {
        let output =
            "`python -m unittest` failed (exit code 1): test_add (test_calc.CalcTests.test_add)";
        assert_eq!(
            failing_test_regions(TESTS, "test_calc.py", Some(output)),
            vec![(1, 2), (9, 11)]
        );
    }

    #[test]
    fn a_trace_line_inside_a_test_selects_that_test() {
        let output = "  File \"test_calc.py\", line 14, in test_zero\n    self.assertEqual(add(0, 0), 0)\nAssertionError";
        assert_eq!(
            failing_test_regions(TESTS, "test_calc.py", Some(output)),
            vec![(1, 2), (13, 14)]
        );
    }

    #[test]
    fn nothing_named_means_no_focus() {
        assert!(failing_test_regions(TESTS, "test_calc.py", Some("exit code 2")).is_empty());
        assert!(failing_test_regions(TESTS, "test_calc.py", None).is_empty());
    }

    fn file(path: &str, content: String, whole: bool) -> ContextFile {
        ContextFile {
            path: path.to_owned(),
            content,
            whole,
            ..ContextFile::default()
        }
    }

    fn ranked(path: &str, signature: &str) -> hone_tools::RankedFile {
        hone_tools::RankedFile {
            path: path.into(),
            score: 1.0,
            reasons: Vec::new(),
            regions: Vec::new(),
            class: hone_tools::context::FileClass::Source,
            signals: Vec::new(),
            symbols: vec![hone_tools::context::Definition {
                name: "x".into(),
                line: 3,
                signature: signature.into(),
            }],
        }
    }

    #[test]
    fn the_answer_budget_holds_a_whole_file_and_stays_inside_the_window() {
        let counter = hone_prompts::CharEstimate;
        let big = "x = compute(value)\n".repeat(600); // about 3,100 tokens
        let tokens = counter.count(&big);
        let context = [file("big.py", big.clone(), true)];
        let wanted = answer_budget(None, 2048, &context, 1000, &counter);
        assert!(
            wanted > tokens && wanted < tokens * 3 / 2,
            "{wanted} for {tokens}"
        );
        // A narrowed file cannot be answered whole: the requested budget stands.
        let narrowed = [file("big.py", big, false)];
        assert_eq!(answer_budget(None, 2048, &narrowed, 1000, &counter), 2048);
        // A known window caps it at what the prompt leaves.
        assert_eq!(
            answer_budget(Some(4096), 2048, &context, 3000, &counter),
            1096
        );
        assert_eq!(
            answer_budget(Some(4096), 2048, &context, 4000, &counter),
            256
        );
    }

    #[test]
    fn first_prompt_sections_share_a_small_window() {
        let counter = hone_prompts::CharEstimate;
        let facts = RepoFacts {
            files: (0..500).map(|i| format!("src/module_{i}.py")).collect(),
            instructions: Some("Write tests first. ".repeat(200)),
            ..RepoFacts::default()
        };
        let room = PromptRoom {
            window: Some(4096),
            answer: answer_reserve(Some(4096), 2048),
            fixed: 400,
            code_wanted: 6000,
        };
        assert_eq!(room.answer, 1536);
        let budget = first_prompt_budget(&room, &facts, Some("failed: test_x"), &[], &counter);
        let sum = budget.code + budget.failing + budget.file_list + budget.instructions;
        assert!(sum <= 4096 - 1536 - 400 - FRAME_TOKENS, "{budget:?}");
        assert!(
            budget.code >= 1000,
            "code comes before the file list: {budget:?}"
        );
        assert!(
            budget.file_list >= 96 && budget.instructions >= 96,
            "{budget:?}"
        );
        let (facts, failing) = fit_facts(facts, Some("failed: test_x"), &budget, &counter);
        assert!(file_list_tokens(&facts.files, &counter) <= budget.file_list);
        assert!(counter.count(facts.instructions.as_deref().unwrap()) <= budget.instructions);
        assert_eq!(failing.as_deref(), Some("failed: test_x"));
        // An extra section (a repository map) gets what is left after the others.
        let extra = [hone_prompts::Section::new("repo map", 800, 0)];
        let budget = first_prompt_budget(&room, &RepoFacts::default(), None, &extra, &counter);
        assert_eq!(budget.extra.len(), 1);
        assert!(budget.extra[0] <= 800);
        // Without a window, everything gets what it wants.
        let room = PromptRoom {
            window: None,
            ..room
        };
        assert_eq!(
            first_prompt_budget(&room, &RepoFacts::default(), None, &[], &counter).code,
            6000
        );
    }

    #[test]
    fn a_long_conversation_keeps_the_task_and_the_latest_turn() {
        use crate::model::Message;
        let counter = hone_prompts::CharEstimate;
        let long = "output line\n".repeat(400); // about 1,400 tokens
        let mut messages = vec![
            Message::system("system"),
            Message::user("task"),
            Message::assistant("first answer"),
            Message::user(long.clone()),
            Message::assistant("second answer"),
            Message::user(long),
        ];
        let dropped = fit_conversation(&mut messages, Some(2048), 1024, &counter);
        assert_eq!(dropped, 2);
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[2].content, "second answer");
        let total: usize = messages.iter().map(|m| counter.count(&m.content) + 4).sum();
        assert!(total <= 2048 - 1024, "{total}");
        assert!(messages[3].content.ends_with("cut to fit the prompt]"));
        // No window: nothing changes.
        let mut short = vec![Message::system("s"), Message::user("t")];
        assert_eq!(fit_conversation(&mut short, None, 1024, &counter), 0);
    }

    #[test]
    fn rust_test_functions_with_attributes_and_closing_braces() {
        let tests = "use calc::add;\n\n#[test]\nfn adds() {\n    assert_eq!(add(2, 3), 5);\n}\n\n#[test]\nfn adds_zero() {\n    assert_eq!(add(0, 0), 0);\n}\n";
        assert_eq!(
            failing_test_regions(tests, "tests/calc.rs", Some("---- adds stdout ----")),
            vec![(1, 6)]
        );
    }

    const LIB: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        assert_eq!(super::add(2, 2), 4);\n    }\n}\n";

    fn item(path: &str, start_line: usize, end_line: usize) -> PlanItem {
        PlanItem {
            path: path.to_owned(),
            start_line,
            end_line,
            why: String::new(),
        }
    }

    #[test]
    fn a_rust_test_module_is_never_the_target() {
        assert!(targets_test_code("src/lib.rs", LIB, 7, 10));
        assert!(!targets_test_code("src/lib.rs", LIB, 1, 3));
        assert!(without_test_code(item("src/lib.rs", 6, 11), LIB).is_none());
        let kept = without_test_code(item("src/lib.rs", 1, 3), LIB).unwrap();
        assert_eq!((kept.start_line, kept.end_line), (1, 3));
        // A whole-file item stops before the test module.
        let cut = without_test_code(item("src/lib.rs", 0, 0), LIB).unwrap();
        assert_eq!((cut.start_line, cut.end_line), (1, 4));
        assert!(without_test_code(item("tests/test_calc.py", 1, 5), "x = 1\n").is_none());
    }

    #[test]
    fn the_task_prompt_shows_a_repo_map_of_files_not_shown_whole_within_budget() {
        let fitted = hone_prompts::Fitted {
            files: vec![ContextFile {
                path: "shop/checkout.py".into(),
                content: "def checkout_cart(cart):\n    return apply_discount_rules(cart)\n".into(),
                reason: "named in the task".into(),
                start_line: 1,
                end_line: 2,
                whole: true,
            }],
            omitted: Vec::new(),
        };
        let mut files = vec![
            ranked("shop/checkout.py", "def checkout_cart(cart):"),
            ranked("shop/pricing.py", "def apply_discount_rules(items):"),
        ];
        for i in 0..200 {
            files.push(ranked(
                &format!("shop/m{i}.py"),
                "def helper_with_a_long_name(a, b, c):",
            ));
        }
        // A 4,096-token window: the map gets an eighth, at most 512 tokens (~2,048 characters).
        let map = repo_map(&fitted, &files, 4096);
        assert!(map.contains("shop/pricing.py:\n     3│ def apply_discount_rules(items):"));
        assert!(!map.contains("shop/checkout.py"));
        assert!(map.len() <= 512 * 4, "{}", map.len());
        let prompt = hone_prompts::task_message(&hone_prompts::TaskPrompt {
            task: "checkout_cart returns the wrong total",
            repo: &RepoFacts::default(),
            context: &fitted.files,
            omitted_paths: &[],
            plan: &[],
            failing: None,
            repo_map: &map,
        })
        .unwrap();
        assert!(prompt.contains("# Repository map"));
        assert!(prompt.contains("def apply_discount_rules(items):"));
    }
}
