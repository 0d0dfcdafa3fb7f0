//! prepare-commit-msg: when the user gave no message, draft one from the staged diff with the model
//! and put it above git's comment lines, where the editor opens on it. Merges, amends (`commit`),
//! squashes, `-m`/`-F` (`message`) and templates keep their text; no configured or reachable model
//! (within the budget) means no draft and no noise: committing must never depend on a model.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use hone_agent::Model;

use super::git::git;
use super::settings::HookSettings;

/// The model's share of the hook budget: drafting must stay quick.
const MAX_DRAFT_TIME: Duration = Duration::from_secs(30);

/// Whether git's message `source` argument asks for a draft: only a plain `git commit`.
pub fn wants_draft(source: Option<&str>) -> bool {
    matches!(source, None | Some(""))
}

/// Whether `text` holds anything besides comment lines and blanks.
pub fn has_message(text: &str, comment: &str) -> bool {
    text.lines()
        .any(|line| !line.trim().is_empty() && !line.starts_with(comment))
}

/// The message file's new text: the draft, a comment saying where it came from, then what git
/// (or an earlier hook) had written.
pub fn compose(draft: &str, existing: &str, comment: &str) -> String {
    format!(
        "{}\n\n{comment} hone drafted the message above from the staged diff: edit it as you like;\n\
         {comment} an empty message aborts the commit.\n{existing}",
        draft.trim()
    )
}

/// Ask `model` for a message within `budget` (`hone_agent`'s commit message, as `hone run
/// --commit` writes it); None on any failure or timeout.
pub fn draft(model: &dyn Model, diff: &str, budget: Duration) -> Option<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime
        .block_on(async {
            tokio::time::timeout(budget, hone_agent::draft_commit_message(model, None, diff)).await
        })
        .ok()?
        .map_err(|error| tracing::debug!("commit message draft failed: {error}"))
        .ok()?
}

/// The hook: `args` are git's `MSG_FILE [SOURCE [SHA]]`.
pub fn run(top: &Path, settings: &HookSettings, args: &[String]) -> anyhow::Result<ExitCode> {
    let Some(file) = args.first() else {
        return Err(crate::exit::Hinted::new(
            anyhow::anyhow!("prepare-commit-msg needs the message file as its first argument"),
            ["git passes it; run `hone hook install` rather than calling this by hand"],
        )
        .into());
    };
    // The pre-commit framework passes the source in the environment instead.
    let env_source = std::env::var("PRE_COMMIT_COMMIT_MSG_SOURCE").ok();
    let source = args.get(1).map(String::as_str).or(env_source.as_deref());
    if !wants_draft(source) {
        return Ok(ExitCode::SUCCESS);
    }
    let path = top.join(file);
    let existing = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read the commit message file {}", path.display()))?;
    let comment = git(top, ["config", "--get", "core.commentChar"])
        .ok()
        .filter(|text| !text.is_empty() && text != "auto")
        .unwrap_or_else(|| "#".to_owned());
    if has_message(&existing, &comment) {
        return Ok(ExitCode::SUCCESS);
    }
    let diff = git(top, ["diff", "--cached", "--no-color", "--no-ext-diff"])?;
    if diff.trim().is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let budget = settings.budget.min(MAX_DRAFT_TIME);
    let started = std::time::Instant::now();
    let Some(backend) = super::model::for_hooks(&settings.config, budget) else {
        return Ok(ExitCode::SUCCESS);
    };
    let Some(message) = draft(
        backend.model.as_ref(),
        &diff,
        budget.saturating_sub(started.elapsed()),
    ) else {
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::write(&path, compose(&message, &existing, &comment))
        .with_context(|| format!("could not write {}", path.display()))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn only_a_plain_commit_gets_a_draft() {
        assert!(wants_draft(None));
        for source in ["message", "template", "merge", "squash", "commit"] {
            assert!(!wants_draft(Some(source)), "{source}");
        }
    }

    #[test]
    fn git_comment_template_is_not_a_message() {
        let template =
            "\n# Please enter the commit message for your changes.\n#\n# On branch main\n";
        assert!(!has_message(template, "#"));
        assert!(has_message(&format!("Fix it\n{template}"), "#"));
        let composed = compose("Add parser\n", template, "#");
        assert!(composed.starts_with("Add parser\n\n# hone drafted"));
        assert!(composed.ends_with(template));
    }
}
