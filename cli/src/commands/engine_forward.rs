//! `hone engine forward`: not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {}

pub fn run(_args: ForwardArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hone engine forward` is not available in this build yet")
}
