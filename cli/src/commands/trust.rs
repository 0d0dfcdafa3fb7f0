//! `hone trust`: allow this repository's `.hone.toml` to choose the backend, model, endpoint,
//! credentials variable and headers (ignored until then, because the file comes with the code).
//! The trust is recorded with the file's content hash beside the user config, so any later edit
//! of the file needs a new `hone trust`. `--revoke` removes it.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::{set_trust, trust_file_with};
use crate::exit::Hinted;

#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// Remove the trust of this repository's `.hone.toml`.
    #[arg(long)]
    pub revoke: bool,
}

pub fn run(args: TrustArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let repo = hone_tools::Repository::discover(&cwd)
        .map_err(|error| Hinted::new(error, ["run `hone trust` inside the repository to trust"]))?;
    let file = repo.root().join(".hone.toml");
    if !file.is_file() {
        return Err(Hinted::new(
            anyhow::anyhow!(
                "{} does not exist: there is nothing to trust",
                file.display()
            ),
            Vec::<String>::new(),
        )
        .into());
    }
    let trust_file = trust_file_with(&|name| std::env::var(name).ok()).ok_or_else(|| {
        Hinted::new(
            anyhow::anyhow!("no user configuration folder to record trust in"),
            ["set HOME, XDG_CONFIG_HOME or HONE_CONFIG"],
        )
    })?;
    let hash = set_trust(&trust_file, &file, !args.revoke)?;
    let mut stdout = std::io::stdout().lock();
    if args.revoke {
        writeln!(stdout, "no longer trusted: {}", file.display())?;
    } else {
        writeln!(
            stdout,
            "trusted {} (content {}; recorded in {}); editing the file untrusts it",
            file.display(),
            &hash[..12.min(hash.len())],
            trust_file.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
