//! `hone engine info`: not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct InfoArgs {}

pub fn run(_args: InfoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hone engine info` is not available in this build yet")
}
