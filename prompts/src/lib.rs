//! hone's prompts: the text the model sees (system prompt, edit-format instructions, plan requests,
//! test and apply feedback, commit messages), rendered from minijinja templates in `templates/`, and
//! fitted to a token budget. It knows nothing about models or repositories beyond the plain data
//! handed to it; counting tokens is delegated to a [`TokenCounter`] the caller supplies.

mod budget;

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

pub use budget::{allot, cut_to_tokens, fit_context, CharEstimate, Fitted, Section, TokenCounter};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A template failed to render (a bug in hone, never the user's input).
    #[error("rendering prompt template {template}: {source}")]
    Render {
        template: &'static str,
        source: minijinja::Error,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What the prompts say about the repository.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoFacts {
    /// The repository's folder name.
    pub name: String,
    pub test_command: Option<String>,
    /// Some tracked paths (the caller decides how many).
    pub files: Vec<String>,
    /// How many files the repository has in all.
    pub file_count: usize,
    /// An excerpt of AGENTS.md (or README) for conventions.
    pub instructions: Option<String>,
    /// Which file `instructions` came from.
    pub instructions_source: Option<String>,
}

/// A file or region shown to the model.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ContextFile {
    pub path: String,
    /// The text shown: the whole file, or lines `start_line..=end_line`.
    pub content: String,
    /// Why it was chosen (from the context ranking).
    pub reason: String,
    /// First line shown, 1-based.
    pub start_line: usize,
    /// Last line shown, 1-based, inclusive.
    pub end_line: usize,
    /// Whether `content` is the whole file.
    pub whole: bool,
}

/// One planned region.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PlanItem {
    pub path: String,
    /// 1-based inclusive line range; 0 when the plan names the whole file.
    pub start_line: usize,
    pub end_line: usize,
    pub why: String,
}

/// The first request of an iteration.
#[derive(Debug, Clone)]
pub struct TaskPrompt<'a> {
    pub task: &'a str,
    pub repo: &'a RepoFacts,
    pub context: &'a [ContextFile],
    /// Paths that were ranked but left out for the budget.
    pub omitted_paths: &'a [String],
    pub plan: &'a [PlanItem],
    /// Summary of tests failing before any change, if known.
    pub failing: Option<&'a str>,
    /// Signatures of ranked files not shown in full (`hone_tools::context::repo_map`); may be empty.
    pub repo_map: &'a str,
}

/// A failing test run, as the model should see it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestFeedback {
    pub command: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub timeout_seconds: u64,
    pub failing_tests: Vec<String>,
    pub locations: Vec<FailureLocation>,
    pub output: String,
    pub output_truncated: bool,
    /// The failed edits were discarded (they removed tests), so the files are as before them.
    pub reverted: bool,
}

/// A line a failure points at, with a few lines around it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FailureLocation {
    pub path: String,
    pub line: usize,
    pub excerpt: String,
}

/// The block-rewrite request for infill backends.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InfillPrompt<'a> {
    pub task: &'a str,
    pub path: &'a str,
    pub content: &'a str,
    pub start_line: usize,
    pub end_line: usize,
    pub why: &'a str,
    pub feedback: Option<&'a str>,
}

const TEMPLATES: [(&str, &str); 8] = [
    ("system.j2", include_str!("../templates/system.j2")),
    (
        "edit_format.j2",
        include_str!("../templates/edit_format.j2"),
    ),
    ("task.j2", include_str!("../templates/task.j2")),
    ("plan.j2", include_str!("../templates/plan.j2")),
    (
        "test_feedback.j2",
        include_str!("../templates/test_feedback.j2"),
    ),
    (
        "apply_feedback.j2",
        include_str!("../templates/apply_feedback.j2"),
    ),
    (
        "commit_message.j2",
        include_str!("../templates/commit_message.j2"),
    ),
    (
        "infill_task.j2",
        include_str!("../templates/infill_task.j2"),
    ),
];

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        environment.set_trim_blocks(true);
        environment.set_lstrip_blocks(true);
        environment.set_keep_trailing_newline(false);
        environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            // The templates are compiled into the binary and covered by the snapshot tests, so a
            // syntax error cannot reach users; ignoring it here keeps this infallible.
            let _ = environment.add_template(name, source);
        }
        environment
    })
}

fn render(template: &'static str, context: minijinja::Value) -> Result<String> {
    let environment = environment();
    let rendered = environment
        .get_template(template)
        .and_then(|compiled| compiled.render(context))
        .map_err(|source| Error::Render { template, source })?;
    Ok(rendered.trim_end().to_owned() + "\n")
}

/// A code fence longer than any backtick run in `texts`, so shown code never closes it early.
pub fn fence_for<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    let longest = texts
        .into_iter()
        .flat_map(|text| text.split(|c| c != '`').map(str::len))
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// The language tag for a path's code fence (empty when unknown).
pub fn language_of(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "rs" => "rust",
        "py" => "python",
        "js" | "mjs" | "cjs" => "javascript",
        "ts" | "tsx" => "typescript",
        "go" => "go",
        "c" | "h" => "c",
        "cc" | "cpp" | "hpp" => "cpp",
        "java" => "java",
        "rb" => "ruby",
        "sh" => "bash",
        "toml" => "toml",
        "json" => "json",
        "md" => "markdown",
        "yaml" | "yml" => "yaml",
        _ => "",
    }
}

/// The system prompt: role, rules and the SEARCH/REPLACE edit format.
pub fn system_prompt(repo: &RepoFacts) -> Result<String> {
    render("system.j2", minijinja::context! { repo, fence => "```" })
}

fn with_language(context: &[ContextFile]) -> Vec<minijinja::Value> {
    context
        .iter()
        .map(|file| {
            minijinja::context! {
                ..minijinja::Value::from_serialize(file),
                ..minijinja::context! { language => language_of(&file.path) }
            }
        })
        .collect()
}

/// The task with repository facts, the plan and the selected code.
pub fn task_message(prompt: &TaskPrompt<'_>) -> Result<String> {
    let fence = fence_for(prompt.context.iter().map(|file| file.content.as_str()));
    render(
        "task.j2",
        minijinja::context! {
            task => prompt.task,
            repo => prompt.repo,
            context => with_language(prompt.context),
            omitted => prompt.omitted_paths.len(),
            omitted_paths => prompt.omitted_paths,
            plan => prompt.plan,
            failing => prompt.failing,
            repo_map => prompt.repo_map,
            fence,
        },
    )
}

/// The request for a plan: which files and line ranges to change, one line each. It shows an
/// outline of each context file (its block-opening lines, numbered), not the code: the plan only
/// names regions, and the code itself is sent once, with the edit request that follows.
pub fn plan_request(task: &str, context: &[ContextFile], failing: Option<&str>) -> Result<String> {
    let outlined: Vec<minijinja::Value> = context
        .iter()
        .map(|file| {
            minijinja::context! {
                ..minijinja::Value::from_serialize(file),
                ..minijinja::context! { outline => outline(&file.content, file.start_line.max(1), PLAN_OUTLINE_LINES) }
            }
        })
        .collect();
    render(
        "plan.j2",
        minijinja::context! { task, context => outlined, failing },
    )
}

/// Outline lines per file in a plan request at most.
const PLAN_OUTLINE_LINES: usize = 40;

/// The lines of `content` that open a block (the next non-blank line is indented deeper) or start a
/// top-level item, numbered from `first_line`, at most `limit` of them (then a count of the rest).
/// Works for any indented language: `def`/`class`, `fn`/`impl`, `if`, test cases, table entries.
pub fn outline(content: &str, first_line: usize, limit: usize) -> String {
    let lines: Vec<&str> = content.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut picked = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let next = lines[index + 1..]
            .iter()
            .find(|next| !next.trim().is_empty());
        let opens = next.is_some_and(|next| indent(next) > indent(line));
        let trimmed = line.trim();
        let comment = ["#", "//", "/*", "*", "--", ";"]
            .iter()
            .any(|marker| trimmed.starts_with(marker))
            && !trimmed.starts_with("#[")
            && !trimmed.starts_with("#include");
        let top_level = indent(line) == 0
            && !comment
            && !matches!(trimmed, "}" | ")" | "]" | "};" | ");" | "end");
        if opens || top_level {
            picked.push(format!("{:>5}: {}", first_line + index, line.trim_end()));
        }
    }
    let total = picked.len();
    if total > limit {
        picked.truncate(limit);
        picked.push(format!("      (and {} more)", total - limit));
    }
    picked.join("\n")
}

/// Tokens of each part of a task message, in the order they appear: the task, repository
/// instructions, the file list, the failing tests, the plan, each code file (`code: <path>`), and
/// what the template adds around them (`frame`).
pub fn task_sections(
    prompt: &TaskPrompt<'_>,
    counter: &dyn TokenCounter,
) -> Result<Vec<(String, usize)>> {
    let total = counter.count(&task_message(prompt)?);
    let mut sections = vec![("task".to_owned(), counter.count(prompt.task))];
    if let Some(instructions) = &prompt.repo.instructions {
        sections.push(("instructions".to_owned(), counter.count(instructions)));
    }
    sections.push((
        "file list".to_owned(),
        counter.count(&prompt.repo.files.join("\n")),
    ));
    if let Some(failing) = prompt.failing {
        sections.push(("failing tests".to_owned(), counter.count(failing)));
    }
    if !prompt.plan.is_empty() {
        let plan: Vec<String> = prompt
            .plan
            .iter()
            .map(|item| {
                format!(
                    "{}:{}-{}: {}",
                    item.path, item.start_line, item.end_line, item.why
                )
            })
            .collect();
        sections.push(("plan".to_owned(), counter.count(&plan.join("\n"))));
    }
    if !prompt.repo_map.is_empty() {
        sections.push(("repo map".to_owned(), counter.count(prompt.repo_map)));
    }
    for file in prompt.context {
        let name = if file.whole {
            format!("code: {}", file.path)
        } else {
            format!("code: {}:{}-{}", file.path, file.start_line, file.end_line)
        };
        sections.push((name, counter.count(&file.content)));
    }
    let counted: usize = sections.iter().map(|(_, tokens)| tokens).sum();
    sections.push(("frame".to_owned(), total.saturating_sub(counted)));
    Ok(sections)
}

/// Feedback after the tests failed.
pub fn test_feedback(feedback: &TestFeedback) -> Result<String> {
    let fence = fence_for(
        std::iter::once(feedback.output.as_str()).chain(
            feedback
                .locations
                .iter()
                .map(|location| location.excerpt.as_str()),
        ),
    );
    render(
        "test_feedback.j2",
        minijinja::context! { ..minijinja::Value::from_serialize(feedback), ..minijinja::context! { fence } },
    )
}

/// Feedback after edits failed to apply; `report` is the tools' rendering for the model.
pub fn apply_feedback(report: &str) -> Result<String> {
    render(
        "apply_feedback.j2",
        minijinja::context! { report => report.trim_end() },
    )
}

/// The request for a commit message describing `diff`.
pub fn commit_message_request(task: Option<&str>, diff: &str) -> Result<String> {
    render(
        "commit_message.j2",
        minijinja::context! { task, diff => diff.trim_end(), fence => fence_for([diff]) },
    )
}

/// The prompt before a block-rewrite skeleton (infill backends).
pub fn infill_task(prompt: &InfillPrompt<'_>) -> Result<String> {
    render(
        "infill_task.j2",
        minijinja::context! {
            ..minijinja::Value::from_serialize(prompt),
            ..minijinja::context! {
                fence => fence_for([prompt.content]),
                language => language_of(prompt.path),
            }
        },
    )
}

#[cfg(test)]
mod tests;
