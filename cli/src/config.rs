//! The CLI's side of configuration: the schema, layering and trust live in
//! `hone_agent::settings`; here they are loaded (a bad file or variable gets its hint from
//! `hints`), with the notices about keys ignored from a repository's `.hone.toml`.

use std::path::Path;

pub use hone_agent::settings::{
    parse_duration, parse_seconds, set_trust, trust_file_with, Config, HookFix,
};

/// Load the layers for a repository (or none), from the process environment, and say on stderr
/// which `[sandbox]` keys of the repository's `.hone.toml` were ignored.
pub fn load(repo_root: Option<&Path>) -> anyhow::Result<Config> {
    let config = Config::load(repo_root)?;
    if !config.ignored_sandbox.is_empty() {
        note!(
            "hone: ignoring [sandbox] {} from the repository's .hone.toml: set them in your own config, HONE_SANDBOX or --sandbox",
            config.ignored_sandbox.join(", ")
        );
    }
    Ok(config)
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
