//! `hone apply`: not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {}

pub fn run(_args: ApplyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hone apply` is not available in this build yet")
}
