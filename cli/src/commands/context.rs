//! `hone context`: not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ContextArgs {}

pub fn run(_args: ContextArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hone context` is not available in this build yet")
}
