//! Token budgets: the first prompt's sections split within the backend's window, the answer
//! budget, and a conversation kept inside the window on later iterations.

use hone_prompts::{ContextFile, RepoFacts, TokenCounter};

/// Tokens the template and message framing add around the sections of the first prompt.
pub(super) const FRAME_TOKENS: usize = 200;
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

pub(super) fn file_list_tokens(files: &[String], counter: &dyn TokenCounter) -> usize {
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
