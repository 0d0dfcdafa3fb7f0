//! `hone runs`: not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RunsArgs {}

pub fn run(_args: RunsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hone runs` is not available in this build yet")
}
