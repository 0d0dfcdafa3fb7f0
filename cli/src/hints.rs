//! What a person can do about an error of the agent or the tools: the one place that turns their
//! typed variants into `hint:` lines naming hone's flags and files (the libraries' messages say
//! what happened, never which flag to pass). `exit::report` looks the hints up for whatever error
//! reaches it, so commands just use `?`; a command that knows more adds its own with
//! `exit::Hinted`. Engine errors get theirs from `engine_options::engine_hint`.

use hone_agent::Error as AgentError;
use hone_tools::Error as ToolsError;

/// The hints for every agent or tools error in `error`'s chain, outermost first.
pub fn for_error(error: &anyhow::Error) -> Vec<String> {
    error
        .chain()
        .flat_map(|cause| {
            if let Some(error) = cause.downcast_ref::<AgentError>() {
                agent(error)
            } else if let Some(error) = cause.downcast_ref::<ToolsError>() {
                tools(error)
            } else {
                Vec::new()
            }
        })
        .collect()
}

/// An error and its hints on one line, for reports that list several (`hone refactor`'s files).
pub fn inline(error: &anyhow::Error) -> String {
    std::iter::once(error.to_string())
        .chain(for_error(error))
        .collect::<Vec<_>>()
        .join("; ")
}

fn agent(error: &AgentError) -> Vec<String> {
    let hints: &[&str] = match error {
        AgentError::Tools(error) => return tools(error),
        AgentError::ConfigFile { path, .. } => {
            return vec![format!(
                "fix {} (keys are listed in `hone run --help` and docs/)",
                path.display()
            )]
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
    fn hints_name_the_flags_the_libraries_leave_out() {
        let refused = anyhow::Error::new(AgentError::Unauthorized {
            url: "http://127.0.0.1:1/v1/chat/completions".into(),
            status: 401,
            message: "bad key".into(),
        });
        assert!(!refused.to_string().contains("--"), "{refused}");
        assert_eq!(
            for_error(&refused),
            ["set the key in the environment variable named by --api-key-env"]
        );
        // Through the agent's wrapping of a tools error, and under added context.
        let no_test = anyhow::Error::new(AgentError::Tools(ToolsError::NoTestCommand {
            root: "/repo".into(),
        }))
        .context("checking the run");
        assert_eq!(
            for_error(&no_test),
            ["pass --test \"CMD\" or set `test = \"CMD\"` in .hone.toml"]
        );
        let exists = anyhow::Error::new(AgentError::ResultsExist {
            path: "out.jsonl".into(),
        });
        assert!(for_error(&exists)[0].contains("--resume"));
        assert_eq!(
            inline(&anyhow::Error::new(AgentError::NothingToRewrite)),
            "nothing to rewrite: no plan and no ranked file outside test code; \
             pass --allow-test-edits if the task is to change tests"
        );
        assert!(for_error(&anyhow::anyhow!("plain")).is_empty());
    }
}
