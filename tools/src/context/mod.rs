//! Context selection: rank the repository's files, and regions inside them (functions, classes,
//! blocks), by relevance to a task. Signals: BM25 over identifiers (split on camelCase and
//! snake_case) in file contents and paths, paths and line numbers named in stack traces or compiler
//! errors, and files the user named. Each score comes with its reasons.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::repo::{classify, FileContent, FileKind, Repository};

mod locations;
mod regions;
mod terms;

pub use locations::extract_locations;
use regions::rank_regions;
use terms::{for_each_term, is_error_line, push_unique, TermMatcher};

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
}

/// The ranking.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContextRanking {
    pub files: Vec<RankedFile>,
    /// Text files considered.
    pub files_considered: usize,
    #[serde(with = "millis")]
    pub elapsed: Duration,
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

/// Files over this size are not read for ranking (generated or vendored, rarely the answer).
const MAX_RANKED_FILE_BYTES: u64 = 256 * 1024;
/// BM25 parameters (the usual defaults).
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Boosts added to the BM25 score.
const NAMED_BOOST: f64 = 12.0;
const TRACE_BOOST: f64 = 8.0;
const PATH_TERM_WEIGHT: f64 = 1.5;

/// Rank the files of `repo` (working tree: tracked + untracked-not-ignored text files) for `query`.
pub fn select_context(repo: &Repository, query: &ContextQuery) -> Result<ContextRanking> {
    let start = Instant::now();
    let files = repo.list_files()?;
    let root = repo.root();
    let candidates: Vec<&str> = files
        .iter()
        .filter(|file| matches!(file.kind, FileKind::Regular | FileKind::Executable))
        .map(|file| file.path.as_str())
        .collect();
    let half = candidates.len().div_ceil(2).max(1);
    let documents: Vec<(String, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = candidates
            .chunks(half)
            .map(|chunk| scope.spawn(move || read_texts(root, chunk)))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap_or_default())
            .collect()
    });
    let mut ranking = rank_documents(&documents, query);
    ranking.elapsed = start.elapsed();
    Ok(ranking)
}

fn read_texts(root: &Path, paths: &[&str]) -> Vec<(String, String)> {
    use std::io::Read;
    let mut documents = Vec::with_capacity(paths.len());
    for path in paths {
        // One open and bounded reads, no separate stat: this loop runs 10,000 times per ranking.
        let Ok(file) = std::fs::File::open(root.join(path)) else {
            continue;
        };
        let mut bytes = Vec::with_capacity(8192);
        if file
            .take(MAX_RANKED_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .is_err()
            || bytes.len() as u64 > MAX_RANKED_FILE_BYTES
        {
            continue;
        }
        if let FileContent::Text(text) = classify(bytes) {
            documents.push((path.to_string(), text));
        }
    }
    documents
}

/// Rank in-memory documents `(path, content)` for `query` (the core of `select_context`).
pub fn rank_documents(documents: &[(String, String)], query: &ContextQuery) -> ContextRanking {
    let start = Instant::now();
    let top = if query.top == 0 { 10 } else { query.top };
    let mut terms: Vec<String> = Vec::new();
    for_each_term(&query.task, |term| push_unique(&mut terms, term));
    if let Some(output) = &query.failure_output {
        for line in output.lines().filter(|line| is_error_line(line)) {
            for_each_term(line, |term| push_unique(&mut terms, term));
        }
    }
    let term_index: HashMap<&str, usize> = terms
        .iter()
        .enumerate()
        .map(|(i, term)| (term.as_str(), i))
        .collect();
    let matcher = TermMatcher::new(&term_index);
    // Term counts per document, only for query terms (one pass over each file, two threads).
    let half = documents.len().div_ceil(2).max(1);
    let counted: Vec<(Vec<u32>, usize)> = std::thread::scope(|scope| {
        let matcher = &matcher;
        let handles: Vec<_> = documents
            .chunks(half)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(_, text)| {
                            let mut tf = vec![0u32; matcher.len];
                            let length = matcher.count(text, &mut tf);
                            (tf, length)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap_or_default())
            .collect()
    });
    let mut document_frequency = vec![0usize; terms.len()];
    let mut counts: Vec<Vec<u32>> = Vec::with_capacity(documents.len());
    let mut lengths: Vec<usize> = Vec::with_capacity(documents.len());
    for (tf, length) in counted {
        for (i, count) in tf.iter().enumerate() {
            if *count > 0 {
                document_frequency[i] += 1;
            }
        }
        counts.push(tf);
        lengths.push(length);
    }
    let n = documents.len() as f64;
    let average_length = (lengths.iter().sum::<usize>() as f64 / n.max(1.0)).max(1.0);
    let idf: Vec<f64> = document_frequency
        .iter()
        .map(|&df| (1.0 + (n - df as f64 + 0.5) / (df as f64 + 0.5)).ln())
        .collect();
    let mut named: Vec<String> = query
        .named_files
        .iter()
        .map(|path| path.trim_start_matches("./").to_string())
        .collect();
    for location in extract_locations(&query.task) {
        named.push(location.path);
    }
    let mut trace: Vec<Location> = query
        .failure_output
        .as_deref()
        .map(extract_locations)
        .unwrap_or_default();
    trace.retain(|location| location.line.is_some());
    let task_words: Vec<&str> = query
        .task
        .split(|c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'' | ',' | '(' | ')'))
        .collect();

    let mut ranked: Vec<RankedFile> = Vec::new();
    for (index, (path, _)) in documents.iter().enumerate() {
        let mut score = 0.0;
        let mut reasons = Vec::new();
        let mut matched = Vec::new();
        for (i, &tf) in counts[index].iter().enumerate() {
            if tf == 0 {
                continue;
            }
            let tf = f64::from(tf);
            let norm = 1.0 - B + B * lengths[index] as f64 / average_length;
            score += idf[i] * tf * (K1 + 1.0) / (tf + K1 * norm);
            matched.push((terms[i].clone(), tf as usize));
        }
        if !matched.is_empty() {
            matched.sort_by_key(|term| std::cmp::Reverse(term.1));
            matched.truncate(8);
            reasons.push(Reason::Terms { terms: matched });
        }
        let mut path_terms = Vec::new();
        for_each_term(path, |term| {
            if let Some(&i) = term_index.get(term) {
                if !path_terms.iter().any(|seen: &String| seen == term) {
                    score += PATH_TERM_WEIGHT * idf[i];
                    path_terms.push(term.to_string());
                }
            }
        });
        if !path_terms.is_empty() {
            reasons.push(Reason::PathTerms { terms: path_terms });
        }
        let file_name = path.rsplit('/').next().unwrap_or(path);
        if named.iter().any(|name| paths_match(name, path))
            || task_words
                .iter()
                .any(|word| *word == file_name && file_name.contains('.'))
        {
            score += NAMED_BOOST;
            reasons.insert(0, Reason::Named);
        }
        let lines: Vec<usize> = trace
            .iter()
            .filter(|location| paths_match(&location.path, path))
            .filter_map(|location| location.line)
            .collect();
        if !lines.is_empty() {
            score += TRACE_BOOST + (lines.len() as f64).ln_1p();
            reasons.insert(0, Reason::InTrace { lines });
        }
        if score > 0.0 {
            ranked.push(RankedFile {
                path: path.clone(),
                score,
                reasons,
                regions: Vec::new(),
            });
        }
    }
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.path.cmp(&b.path))
    });
    ranked.truncate(top);
    let by_path: HashMap<&str, &str> = documents
        .iter()
        .map(|(path, text)| (path.as_str(), text.as_str()))
        .collect();
    for file in &mut ranked {
        if let Some(text) = by_path.get(file.path.as_str()) {
            let lines: Vec<usize> = trace
                .iter()
                .filter(|location| paths_match(&location.path, &file.path))
                .filter_map(|location| location.line)
                .collect();
            file.regions = rank_regions(text, &term_index, &idf, &lines);
        }
    }
    ContextRanking {
        files: ranked,
        files_considered: documents.len(),
        elapsed: start.elapsed(),
    }
}

/// True when a path named somewhere (maybe absolute, maybe with `./`) is the repository `path`.
fn paths_match(named: &str, path: &str) -> bool {
    let named = named.trim_start_matches("./");
    named == path || (named.ends_with(path) && named[..named.len() - path.len()].ends_with('/'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn docs() -> Vec<(String, String)> {
        vec![
            (
                "src/parser.rs".into(),
                "pub fn parse_header(input: &str) -> Header {\n    todo!()\n}\n\nfn helper() {}\n"
                    .into(),
            ),
            (
                "src/render.rs".into(),
                "pub fn render(page: &Page) -> String {\n    page.title.clone()\n}\n".into(),
            ),
            (
                "tests/test_calc.py".into(),
                "import calc\n\ndef test_add():\n    assert calc.add(1, 2) == 3\n".into(),
            ),
            (
                "calc.py".into(),
                "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n".into(),
            ),
        ]
    }

    #[test]
    fn identifiers_and_paths_rank_the_right_file() {
        let query = ContextQuery {
            task: "parse the header with parseHeader".into(),
            top: 2,
            ..Default::default()
        };
        let ranking = rank_documents(&docs(), &query);
        assert_eq!(ranking.files[0].path, "src/parser.rs");
        assert_eq!(ranking.files[0].regions[0].start_line, 1);
        assert!(ranking.files[0].regions[0]
            .name
            .starts_with("pub fn parse_header"));
    }

    #[test]
    fn stack_trace_lines_pick_file_and_region() {
        let output = "Traceback (most recent call last):\n  File \"/tmp/x/tests/test_calc.py\", line 4, in test_add\n  File \"/tmp/x/calc.py\", line 2, in add\nAssertionError: -1 != 3\n";
        let query = ContextQuery {
            task: "make the failing test pass".into(),
            failure_output: Some(output.into()),
            ..Default::default()
        };
        let ranking = rank_documents(&docs(), &query);
        let calc = ranking
            .files
            .iter()
            .find(|file| file.path == "calc.py")
            .unwrap();
        assert!(matches!(&calc.reasons[0], Reason::InTrace { lines } if lines == &[2]));
        assert_eq!(
            (calc.regions[0].start_line, calc.regions[0].end_line),
            (1, 2)
        );
    }

    #[test]
    fn named_files_are_boosted() {
        let query = ContextQuery {
            task: "update render.rs to escape titles".into(),
            ..Default::default()
        };
        let ranking = rank_documents(&docs(), &query);
        assert_eq!(ranking.files[0].path, "src/render.rs");
        assert_eq!(ranking.files[0].reasons[0], Reason::Named);
    }

    #[test]
    fn locations_from_compilers_and_runtimes() {
        let text = "error[E0308]: mismatched types\n --> src/lib.rs:10:5\n    at Object.<anonymous> (/home/u/app/src/sum.test.js:4:3)\ncalc_test.go:8: got 3\nsee README.md and version 1.2";
        let locations = extract_locations(text);
        assert!(locations.contains(&Location {
            path: "src/lib.rs".into(),
            line: Some(10)
        }));
        assert!(locations.contains(&Location {
            path: "/home/u/app/src/sum.test.js".into(),
            line: Some(4)
        }));
        assert!(locations.contains(&Location {
            path: "calc_test.go".into(),
            line: Some(8)
        }));
        assert!(locations.contains(&Location {
            path: "README.md".into(),
            line: None
        }));
        assert!(!locations.iter().any(|location| location.path == "1.2"));
    }
}
