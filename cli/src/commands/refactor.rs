//! `hone refactor`: not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RefactorArgs {}

pub fn run(_args: RefactorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hone refactor` is not available in this build yet")
}
