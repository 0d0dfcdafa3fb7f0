//! `hone hook`: not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum HookCommand {
    /// List hone's hooks and their state.
    List,
}

pub fn run(_command: HookCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hone hook` is not available in this build yet")
}
