//! What a person can do about an error of the agent or the tools: the one place that turns their
//! typed variants into `hint:` lines naming hone's flags and files (the libraries' messages say
//! what happened, never which flag to pass). `exit::report` looks the hints up for whatever error
//! reaches it, so commands just use `?`; a command that knows more adds its own with
//! `exit::Hinted`. Engine errors get theirs from `engine_options::engine_hint`.

use hone_agent::Error as AgentError;
use hone_tools::Error as ToolsError;

/// The hints for every agent or tools error in `error`'s chain, outermost first.
pub fn for_error(error: &anyhow::Error) -> Vec<String> {
    let hints = error.chain().flat_map(|cause| {
        match (cause.downcast_ref::<AgentError>(), cause.downcast_ref()) {
            (Some(error), _) => agent(error),
            (None, Some(error)) => tools(error),
            (None, None) => Vec::new(),
        }
    });
    hints.collect()
}

/// An error and its hints on one line, for reports that list several (`hone refactor`'s files).
pub fn inline(error: &anyhow::Error) -> String {
    let hints = for_error(error);
    std::iter::once(error.to_string())
        .chain(hints)
        .collect::<Vec<_>>()
        .join("; ")
}

fn agent(error: &AgentError) -> Vec<String> {
    let hints: &[&str] = match error {
        AgentError::Tools(error) => return tools(error),
        AgentError::ConfigFile { path, .. } => {
            let file = path.display();
            return vec![format!("fix {file} (keys are listed in `hone run --help` and docs/)")];
        }
        AgentError::ConfigEnv { name, .. } => return vec![format!("fix or unset {name}")],
        AgentError::Unauthorized { .. } => {
            &["set the key in the environment variable named by --api-key-env"]
        }
        AgentError::NotFound { .. } => &["check --base-url (it usually ends in /v1) and --model"],
        AgentError::Http { .. } => {
            &["is the server running and reachable? check --base-url (it usually ends in /v1)"]
        }
        AgentError::Unsupported { .. } => &["use --mode edit-blocks with this backend"],
        AgentError::DirtyTree => &[
            "or pass --allow-dirty (the sandbox then includes them and only hone's patch is applied on top)",
        ],
        AgentError::NothingToRewrite => &["pass --allow-test-edits if the task is to change tests"],
        AgentError::NoCommitToBranchFrom => &["commit once first, or deliver without --branch"],
        AgentError::TaskLine { .. } => &[
            r#"each line is a JSON object: {"id": "...", "task": "...", "repo"?: "...", "test"?: "...", "files"?: [...], "patch"?: "..."}"#,
        ],
        AgentError::ResultsExist { .. } => &[
            "pass --resume to continue that run (finished ids are skipped)",
            "or pass --out with another file",
        ],
        AgentError::ResultsLine { .. } => &[
            "--resume needs the file a previous `hone batch` wrote; pass --out with another file",
        ],
        _ => &[],
    };
    hints.iter().map(|hint| (*hint).to_owned()).collect()
}

fn tools(error: &ToolsError) -> Vec<String> {
    let hint = match error {
        ToolsError::NoTestCommand { .. } => {
            "pass --test \"CMD\" or set `test = \"CMD\"` in .hone.toml"
        }
        ToolsError::HookBackupExists { .. } => {
            "check which of the two you want to keep, or pass --force to keep both (the older backup is renamed with a number)"
        }
        _ => return Vec::new(),
    };
    vec![hint.to_owned()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_found_through_the_agents_wrapping_and_added_context() {
        let error = AgentError::Tools(ToolsError::NoTestCommand { root: "/r".into() });
        let error = anyhow::Error::new(error).context("checking the run");
        assert_eq!(
            for_error(&error),
            ["pass --test \"CMD\" or set `test = \"CMD\"` in .hone.toml"]
        );
        assert_eq!(
            inline(&AgentError::NothingToRewrite.into()),
            "nothing to rewrite: no plan and no ranked file outside test code; \
             pass --allow-test-edits if the task is to change tests"
        );
        assert!(for_error(&anyhow::anyhow!("plain")).is_empty());
    }
}
