//! Commit messages for changes, the one implementation behind `hone run --commit` / `--branch` and
//! the prepare-commit-msg hook: the request (hone-prompts' template, long diffs cut to their
//! start), the cleaning of the model's answer (fences, labels, quotes, a 72-character summary), and
//! a plain fallback so delivery never fails for want of a message.

use crate::model::{ChatRequest, Message, Model, Purpose};
use crate::Result;

/// Longest slice of a diff shown to the model; a commit message needs the gist, not all.
const MAX_DIFF_CHARS: usize = 12_000;

/// Ask the model for a commit message for `diff`; falls back to the task's first line.
pub async fn commit_message(model: &dyn Model, task: Option<&str>, diff: &str) -> String {
    let fallback = task
        .and_then(|task| task.lines().next())
        .map(|line| format!("hone: {}", line.chars().take(64).collect::<String>()))
        .unwrap_or_else(|| "hone: apply verified change".to_owned());
    match draft_commit_message(model, task, diff).await {
        Ok(Some(message)) => message,
        Ok(None) => fallback,
        Err(error) => {
            tracing::warn!(%error, "could not generate a commit message");
            fallback
        }
    }
}

/// Ask the model for a commit message for `diff`: `None` when its answer holds no message.
pub async fn draft_commit_message(
    model: &dyn Model,
    task: Option<&str>,
    diff: &str,
) -> Result<Option<String>> {
    let request = commit_message_request(task, diff)?;
    let response = model.chat(&request, None).await?;
    Ok(response
        .candidates
        .first()
        .and_then(|candidate| clean_draft(&candidate.text)))
}

/// The request for a message describing `diff` (with the task, when there is one).
pub fn commit_message_request(task: Option<&str>, diff: &str) -> Result<ChatRequest> {
    let mut shown: String = diff.chars().take(MAX_DIFF_CHARS).collect();
    if shown.len() < diff.len() {
        shown.push_str("\n[diff truncated]\n");
    }
    let prompt = hone_prompts::commit_message_request(task, &shown)?;
    Ok(ChatRequest {
        messages: vec![Message::user(prompt)],
        n: 1,
        max_tokens: 200,
        purpose: Purpose::CommitMessage,
        ..ChatRequest::default()
    })
}

/// Tidy a model's answer into a commit message: no code fences, no "Commit message:" label, no
/// quotes around the summary, a summary of at most 72 characters, no trailing blanks.
pub fn clean_draft(text: &str) -> Option<String> {
    let text = text.trim().trim_matches('`').trim();
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("```"))
        .collect();
    while lines.first().is_some_and(|line| line.trim().is_empty()) {
        lines.remove(0);
    }
    let mut first = lines.first().map_or("", |line| line.trim());
    for label in ["Commit message:", "commit message:", "Subject:"] {
        if let Some(rest) = first.strip_prefix(label) {
            first = rest.trim_start();
        }
    }
    let summary: String = first.trim_matches('"').chars().take(72).collect();
    let rest = lines
        .iter()
        .skip(1)
        .map(|line| line.trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    let message = match rest.trim() {
        "" => summary.trim().to_owned(),
        rest => format!("{}\n\n{rest}", summary.trim()),
    };
    (!message.trim().is_empty()).then_some(message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn drafts_lose_fences_and_labels() {
        assert_eq!(
            clean_draft("```\nCommit message: Fix the parser\n\nIt choked on tabs.\n```\n")
                .unwrap(),
            "Fix the parser\n\nIt choked on tabs."
        );
        assert_eq!(clean_draft("```\n```"), None);
    }

    #[test]
    fn the_summary_loses_quotes_and_stays_short() {
        let long = "x".repeat(100);
        assert_eq!(clean_draft(&format!("\"{long}\"")).unwrap(), "x".repeat(72));
        assert_eq!(clean_draft("`Fix add`").unwrap(), "Fix add");
    }

    #[test]
    fn long_diffs_are_cut_in_the_request() {
        let diff = "+line\n".repeat(5_000);
        let request = commit_message_request(None, &diff).unwrap();
        let prompt = &request.messages[0].content;
        assert!(prompt.contains("[diff truncated]"));
        assert!(prompt.len() < diff.len());
    }
}
