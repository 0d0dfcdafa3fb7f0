//! The CLI's side of configuration: the schema, layering and trust live in
//! `hone_agent::settings`; here they are loaded with the hints a person needs for a bad file or
//! variable, and the notice about keys ignored from an untrusted `.hone.toml`.

use std::path::Path;

pub use hone_agent::settings::{
    parse_duration, parse_seconds, set_trust, trust_file_with, Config, HookFix,
};

use crate::exit::Hinted;

/// Load the layers for a repository (or none), from the process environment.
pub fn load(repo_root: Option<&Path>) -> anyhow::Result<Config> {
    Config::load(repo_root).map_err(hinted)
}

/// Load, and say on stderr which keys of an untrusted `.hone.toml` were ignored.
pub fn load_noting_untrusted(repo_root: Option<&Path>) -> anyhow::Result<Config> {
    let config = load(repo_root)?;
    if !config.ignored.is_empty() {
        note!(
            "hone: ignoring {} from the repository's .hone.toml until you trust it: run `hone trust` (it sends code and credentials where it says)",
            config.ignored.join(", ")
        );
    }
    Ok(config)
}

/// What to do about a configuration error.
pub fn hinted(error: hone_agent::Error) -> anyhow::Error {
    let hint = match &error {
        hone_agent::Error::ConfigFile { path, .. } => format!(
            "fix {} (keys are listed in `hone run --help` and docs/)",
            path.display()
        ),
        hone_agent::Error::ConfigEnv { name, .. } => format!("fix or unset {name}"),
        _ => return error.into(),
    };
    Hinted::new(error, [hint]).into()
}
