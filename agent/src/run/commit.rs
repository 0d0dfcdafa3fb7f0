//! Commit messages for verified changes: asked of the model, cleaned of fences and quotes, with a
//! plain fallback so delivery never fails for want of a message.

use crate::model::{ChatRequest, Message, Model, Purpose};

/// Ask the model for a commit message for `diff`; falls back to the task's first line.
pub async fn commit_message(model: &dyn Model, task: Option<&str>, diff: &str) -> String {
    let fallback = task
        .and_then(|task| task.lines().next())
        .map(|line| format!("hone: {}", line.chars().take(64).collect::<String>()))
        .unwrap_or_else(|| "hone: apply verified change".to_owned());
    let Ok(prompt) = hone_prompts::commit_message_request(task, diff) else {
        return fallback;
    };
    let request = ChatRequest {
        messages: vec![Message::user(prompt)],
        n: 1,
        max_tokens: 160,
        purpose: Purpose::CommitMessage,
        ..Default::default()
    };
    match model.chat(&request, None).await {
        Ok(response) => response
            .candidates
            .first()
            .map(|candidate| clean_message(&candidate.text))
            .filter(|message| !message.is_empty())
            .unwrap_or(fallback),
        Err(error) => {
            tracing::warn!(%error, "could not generate a commit message");
            fallback
        }
    }
}

fn clean_message(text: &str) -> String {
    let text = text.trim().trim_matches('`').trim();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("```"))
        .collect();
    let first = lines
        .first()
        .map(|line| line.trim().trim_matches('"'))
        .unwrap_or("");
    let summary: String = first.chars().take(72).collect();
    let rest = lines
        .iter()
        .skip(1)
        .map(|line| line.trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    let rest = rest.trim();
    if rest.is_empty() {
        summary
    } else {
        format!("{summary}\n\n{rest}")
    }
}
