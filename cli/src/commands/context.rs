//! `hone context "task"`: rank the repository's files and regions by relevance to a task and print
//! the ranking with scores and reasons (`--json` for scripts).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use hone_tools::{ContextQuery, Finding, Misspelling, Reason, Repository};

use crate::exit::Hinted;

#[derive(Debug, clap::Args)]
pub struct ContextArgs {
    /// The task, in words (identifiers, file names and error text help).
    pub task: String,
    /// How many files to show.
    #[arg(long, default_value_t = 10, value_parser = crate::flags::count::<10_000>)]
    pub top: usize,
    /// A file holding failing test or compiler output (paths and line numbers in it rank first).
    #[arg(long, value_name = "FILE")]
    pub failure: Option<std::path::PathBuf>,
    /// Files you know matter (repeatable).
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<String>,
    /// Print JSON instead of text (each file's kind and the signals behind its score included).
    #[arg(long)]
    pub json: bool,
    /// Explain each rank: the file's kind, and every signal behind its score in words.
    #[arg(long, conflicts_with = "json")]
    pub explain: bool,
}

pub fn run(args: ContextArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let repo = Repository::discover(&cwd)
        .map_err(|error| Hinted::new(error, ["run hone context inside a git repository"]))?;
    let failure_output = match &args.failure {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
            Hinted::new(
                anyhow::anyhow!("cannot read {}: {error}", path.display()),
                ["pass a file holding the test output"],
            )
        })?),
        None => None,
    };
    let query = ContextQuery {
        task: args.task.clone(),
        failure_output,
        named_files: args.files.clone(),
        top: args.top,
    };
    let ranking = hone_tools::select_context(&repo, &query)?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&ranking)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.explain {
        let mut terms: Vec<&hone_tools::context::QueryTerm> = ranking.query_terms.iter().collect();
        terms.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        writeln!(
            stdout,
            "a {} task; heaviest terms: {}",
            ranking.focus.label(),
            terms
                .iter()
                .take(12)
                .map(
                    |term| format!("{} {:.1} ({:?})", term.term, term.weight, term.from)
                        .to_lowercase()
                )
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    if ranking.files.is_empty() {
        writeln!(
            stdout,
            "no file matches the task ({} files considered)",
            ranking.files_considered
        )?;
    }
    for (rank, file) in ranking.files.iter().enumerate() {
        writeln!(
            stdout,
            "{:>2}. {:<50} {:>7.2}  {}",
            rank + 1,
            file.path,
            file.score,
            describe(&file.reasons)
        )?;
        if args.explain {
            writeln!(stdout, "      kind: {}", file.class.label())?;
            for signal in &file.signals {
                writeln!(
                    stdout,
                    "      {:>6.2} {:<7} {}",
                    signal.value, signal.name, signal.detail
                )?;
            }
        }
        for region in &file.regions {
            writeln!(
                stdout,
                "      lines {}-{} ({:.2}): {}",
                region.start_line, region.end_line, region.score, region.name
            )?;
        }
    }
    writeln!(
        stdout,
        "({} files considered in {:.0} ms)",
        ranking.files_considered,
        ranking.elapsed.as_secs_f64() * 1000.0
    )?;
    Ok(ExitCode::SUCCESS)
}

fn describe(reasons: &[Reason]) -> String {
    reasons
        .iter()
        .map(|reason| match reason {
            Reason::Named => "named in the task".to_string(),
            Reason::InTrace { lines } => format!(
                "in the failure output (line {})",
                lines
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Reason::Terms { terms } => {
                format!(
                    "terms: {}",
                    terms
                        .iter()
                        .map(|(term, count)| format!("{term}×{count}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
            Reason::PathTerms { terms } => format!("path: {}", terms.join(" ")),
            Reason::Misspelled { words } => Misspelling::describe(words),
            Reason::Flagged { findings } => Finding::describe(findings),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
