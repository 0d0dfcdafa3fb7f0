//! `hone batch`: not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct BatchArgs {}

pub fn run(_args: BatchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hone batch` is not available in this build yet")
}
