//! What a person can do about an error of the agent or the tools: the one place that turns their
//! typed variants into `hint:` lines naming hone's flags and files (the libraries' messages say
//! what happened, never which flag to pass). `exit::report` looks the hints up for whatever error
//! reaches it (agent, tools and engine errors alike), so commands just use `?`; a command that
//! knows more adds its own with `exit::Hinted`.

use hone_agent::Error as AgentError;
use hone_tools::Error as ToolsError;

/// The hints for every agent, tools or engine error in `error`'s chain, outermost first.
pub fn for_error(error: &anyhow::Error) -> Vec<String> {
    let hints = error.chain().flat_map(|cause| {
        if let Some(error) = cause.downcast_ref::<AgentError>() {
            agent(error)
        } else if let Some(error) = cause.downcast_ref::<ToolsError>() {
            tools(error)
        } else {
            cause
                .downcast_ref()
                .and_then(engine_hint)
                .into_iter()
                .collect()
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

/// What a user can do about an engine error, when there is something.
pub fn engine_hint(error: &hone_engine::Error) -> Option<String> {
    use hone_engine::Error;
    match error {
        Error::Checkpoint(_) => Some(
            "a checkpoint is a folder with config.json and model.safetensors (or a sharded index), \
             or a .gguf file with its tokenizer.json beside it"
                .to_owned(),
        ),
        Error::CheckpointMissing { id, .. } => Some(download_hint(id)),
        Error::UnknownArchitecture { .. } => Some(
            "pass --arch with one of these names if the weights are one of these under another config"
                .to_owned(),
        ),
        Error::InvalidSetting { field, .. } => Some(format!("check {}", setting_flag(field))),
        Error::Tokenizer(_) => Some(
            "the checkpoint's tokenizer.json / tokenizer_config.json could not be used".to_owned(),
        ),
        Error::NotEnoughMemory(_) => Some(
            "pass --quantize q4k (about 4.5 bits a weight) or q8_0 (8.5), --dtype bf16, or --device cuda"
                .to_owned(),
        ),
        _ => None,
    }
}

/// How to fetch a hub checkpoint by hand (for `Error::CheckpointMissing`).
pub fn download_hint(id: &str) -> String {
    format!(
        "download it with `huggingface-cli download {id} --local-dir models/{name}` (or `hf download`) on a \
         machine with network access, then pass `--model models/{name}`",
        name = id.rsplit('/').next().unwrap_or(id)
    )
}

/// The flag that sets a sampler setting named by `Error::InvalidSetting`'s `field`.
pub fn setting_flag(field: &str) -> String {
    match field {
        "stop_at_eos" | "eos_early_stop" => "--no-early-stop".to_owned(),
        field => format!("--{}", field.replace('_', "-")),
    }
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
        let (id, cache, why) = ("org/m".into(), "/c".into(), "offline".into());
        let engine = anyhow::Error::new(hone_engine::Error::CheckpointMissing { id, cache, why });
        assert_eq!(
            for_error(&engine.context("loading")),
            [download_hint("org/m")]
        );
    }
}
