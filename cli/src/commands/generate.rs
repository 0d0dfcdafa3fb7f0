//! `hone generate`: not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {}

pub fn run(_args: GenerateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hone generate` is not available in this build yet")
}
