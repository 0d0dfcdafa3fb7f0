//! The public types of context ranking: the query, the ranked files and regions, and the signals
//! and reasons behind each rank (what `hone context --json` / `--explain` print).

use std::time::Duration;

use super::{Definition, FileClass, Finding, Misspelling, QueryTerm, TaskFocus};

/// What to rank for.
#[derive(Debug, Clone, Default)]
pub struct ContextQuery {
    /// The task text.
    pub task: String,
    /// Failing test or compiler output, whose paths and line numbers are strong signals.
    pub failure_output: Option<String>,
    /// Files the user named explicitly (repository-relative).
    pub named_files: Vec<String>,
    /// How many files to return (0: 10).
    pub top: usize,
}

/// Why a file or region scored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Reason {
    /// Named by the user (in `named_files` or in the task text).
    Named,
    /// Named in a stack trace or compiler error, at these lines when known.
    InTrace { lines: Vec<usize> },
    /// Query terms in the content, with their counts.
    Terms { terms: Vec<(String, usize)> },
    /// Query terms in the path.
    PathTerms { terms: Vec<String> },
    /// Words the spelling dictionary knows as misspellings (for a task about typos).
    Misspelled { words: Vec<Misspelling> },
    /// What a linter or parser would report (for a task about lint, style or syntax).
    Flagged { findings: Vec<Finding> },
}

/// A region of a file: 1-based inclusive lines.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Region {
    pub start_line: usize,
    pub end_line: usize,
    /// The region's header line, trimmed (e.g. `fn parse(input: &str) -> Result<Ast> {`).
    pub name: String,
    pub score: f64,
    pub reasons: Vec<Reason>,
}

/// One ranked file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RankedFile {
    pub path: String,
    pub score: f64,
    pub reasons: Vec<Reason>,
    /// Best regions first (at most 3).
    pub regions: Vec<Region>,
    /// What kind of file it is (source, test, docs, ...).
    pub class: FileClass,
    /// The signals behind the score, for people (`--explain`) and scripts (`--json`).
    pub signals: Vec<Signal>,
    /// The file's most relevant definitions (for the repo map), best first.
    pub symbols: Vec<Definition>,
}

/// One signal behind a file's score: its name, what it added, and why in words.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Signal {
    pub name: &'static str,
    pub value: f64,
    pub detail: String,
}

impl Signal {
    pub(super) fn new(name: &'static str, value: f64, detail: String) -> Self {
        Self {
            name,
            value,
            detail,
        }
    }
}

/// The ranking.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContextRanking {
    pub files: Vec<RankedFile>,
    /// Text files considered.
    pub files_considered: usize,
    #[serde(with = "millis")]
    pub elapsed: Duration,
    /// Whether the task is about code or prose (which kinds of files rank first).
    pub focus: TaskFocus,
    /// The task's terms with their weights, as read from its prose, code, errors and logs.
    pub query_terms: Vec<QueryTerm>,
}

mod millis {
    pub fn serialize<S: serde::Serializer>(
        duration: &std::time::Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64() * 1000.0)
    }
}

/// A path (and line) named in a stack trace, compiler error or task text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: String,
    pub line: Option<usize>,
}
