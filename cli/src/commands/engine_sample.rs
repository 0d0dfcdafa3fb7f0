//! `hone engine sample`: not built yet.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SampleArgs {}

pub fn run(_args: SampleArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`hone engine sample` is not available in this build yet")
}
