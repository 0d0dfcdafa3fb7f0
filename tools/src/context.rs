//! Context selection: rank the repository's files, and regions inside them (functions, classes,
//! blocks), by relevance to a task. Signals: BM25 over identifiers (split on camelCase and
//! snake_case) in file contents and paths, paths and line numbers named in stack traces or compiler
//! errors, and files the user named. Each score comes with its reasons.

use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::error::Result;
use crate::repo::{classify, FileContent, FileKind, Repository};

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

/// Counts query terms in a text fast: a word is lowercased and looked up only when its length and
/// first letter could belong to a query term, which skips most words of most files.
struct TermMatcher<'a> {
    index: &'a HashMap<&'a str, usize>,
    first_letters: [bool; 256],
    lengths: u128,
    len: usize,
}

impl<'a> TermMatcher<'a> {
    fn new(index: &'a HashMap<&'a str, usize>) -> Self {
        let mut first_letters = [false; 256];
        let mut lengths = 0u128;
        for term in index.keys() {
            if let Some(&first) = term.as_bytes().first() {
                first_letters[usize::from(first)] = true;
            }
            lengths |= 1u128 << term.len().min(127);
        }
        Self {
            index,
            first_letters,
            lengths,
            len: index.len(),
        }
    }

    fn could_match(&self, word: &[u8]) -> bool {
        !word.is_empty()
            && self.lengths & (1u128 << word.len().min(127)) != 0
            && self.first_letters[usize::from(word[0].to_ascii_lowercase())]
    }

    /// Add the counts of `text`'s query terms to `tf`; returns the number of words in `text`.
    fn count(&self, text: &str, tf: &mut [u32]) -> usize {
        let bytes = text.as_bytes();
        let mut buffer = String::with_capacity(64);
        let mut words = 0;
        let mut i = 0;
        while i < bytes.len() {
            if !bytes[i].is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            let start = i;
            let mut mixed = false;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                mixed |= bytes[i] == b'_'
                    || (bytes[i].is_ascii_uppercase()
                        && i > start
                        && bytes[i - 1].is_ascii_lowercase());
                i += 1;
            }
            let word = text[start..i].trim_matches('_');
            if word.len() < 2 || word.len() > 64 {
                continue;
            }
            words += 1;
            if self.could_match(word.as_bytes()) {
                self.lookup(word, &mut buffer, tf);
            }
            if mixed {
                for_each_part(word, |part| {
                    if self.could_match(part.as_bytes()) {
                        self.lookup(part, &mut buffer, tf);
                    }
                });
            }
        }
        words
    }

    fn lookup(&self, word: &str, buffer: &mut String, tf: &mut [u32]) {
        buffer.clear();
        buffer.push_str(word);
        buffer.make_ascii_lowercase();
        if let Some(&i) = self.index.get(buffer.as_str()) {
            tf[i] += 1;
        }
    }
}

/// The parts of an identifier split on `_` and lower→upper case changes (only when several).
fn for_each_part(word: &str, mut visit: impl FnMut(&str)) {
    let bytes = word.as_bytes();
    let mut part_start = 0;
    for j in 1..=bytes.len() {
        let boundary = j == bytes.len()
            || bytes[j] == b'_'
            || (bytes[j].is_ascii_uppercase() && bytes[j - 1].is_ascii_lowercase());
        if boundary {
            let part = word[part_start..j].trim_matches('_');
            if part.len() >= 2 && part.len() < word.len() {
                visit(part);
            }
            part_start = j;
        }
    }
}

fn push_unique(terms: &mut Vec<String>, term: &str) {
    if !STOPWORDS.contains(&term) && !terms.iter().any(|seen| seen == term) {
        terms.push(term.to_string());
    }
}

fn is_error_line(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    [
        "error",
        "fail",
        "panicked",
        "assert",
        "exception",
        "expected",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "that", "this", "with", "from", "into", "when", "make", "should", "not",
    "are", "was", "fix", "its", "but", "can", "all", "has", "have", "of", "to", "in", "is", "it",
    "an", "on", "be", "or", "if", "so",
];

/// Call `visit` with each lowercase term of `text`: every identifier, and when it has several
/// parts (snake_case, camelCase, kebab-case), each part too.
fn for_each_term(text: &str, mut visit: impl FnMut(&str)) {
    let mut buffer = String::with_capacity(64);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        let word = &text[start..i];
        if word.len() < 2 || word.len() > 64 {
            continue;
        }
        buffer.clear();
        buffer.push_str(word);
        buffer.make_ascii_lowercase();
        visit(buffer.trim_matches('_'));
        // Parts: split on `_` and lower→upper case changes.
        let mut part_start = 0;
        let word_bytes = word.as_bytes();
        let mut parts = 0;
        for j in 1..=word_bytes.len() {
            let boundary = j == word_bytes.len()
                || word_bytes[j] == b'_'
                || (word_bytes[j].is_ascii_uppercase() && word_bytes[j - 1].is_ascii_lowercase());
            if boundary {
                let part = &word[part_start..j].trim_matches('_');
                if part.len() >= 2 && part.len() < word.len() {
                    parts += 1;
                    buffer.clear();
                    buffer.push_str(part);
                    buffer.make_ascii_lowercase();
                    visit(&buffer);
                }
                part_start = j;
            }
        }
        let _ = parts;
    }
}

/// True when a path named somewhere (maybe absolute, maybe with `./`) is the repository `path`.
fn paths_match(named: &str, path: &str) -> bool {
    let named = named.trim_start_matches("./");
    named == path || (named.ends_with(path) && named[..named.len() - path.len()].ends_with('/'))
}

static REGION_START: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(?:(?:pub(?:\([^)]*\))?|export|default|async|static|unsafe|public|private|protected|abstract|final|override)\s+)*(?:fn|struct|enum|impl|trait|mod|class|def|func|function|interface|type|macro_rules!)\b|^\s*(?:const|let|var)\s+\w+\s*=\s*(?:async\s*)?(?:\([^)]*\)|\w+)\s*=>",
    )
    .ok()
});

/// Split `text` into regions (definitions: functions, classes, impls, ...) and score them.
fn rank_regions(
    text: &str,
    term_index: &HashMap<&str, usize>,
    idf: &[f64],
    trace_lines: &[usize],
) -> Vec<Region> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(pattern) = REGION_START.as_ref() else {
        return Vec::new();
    };
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| pattern.is_match(lines[i]))
        .collect();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let indent = indentation(lines[start]);
        let end = starts[k + 1..]
            .iter()
            .copied()
            .find(|&next| indentation(lines[next]) <= indent)
            .unwrap_or(lines.len());
        let mut end = end;
        while end > start + 1 && lines[end - 1].trim().is_empty() {
            end -= 1;
        }
        spans.push((start, end));
    }
    if spans.is_empty() {
        spans = (0..lines.len())
            .step_by(40)
            .map(|start| (start, (start + 40).min(lines.len())))
            .collect();
    }
    let mut regions: Vec<Region> = spans
        .into_iter()
        .filter_map(|(start, end)| {
            let mut tf = vec![0u32; idf.len()];
            for line in &lines[start..end] {
                for_each_term(line, |term| {
                    if let Some(&i) = term_index.get(term) {
                        tf[i] += 1;
                    }
                });
            }
            let mut score = 0.0;
            let mut matched = Vec::new();
            for (i, &count) in tf.iter().enumerate() {
                if count > 0 {
                    let count = f64::from(count);
                    score += idf[i] * count * (K1 + 1.0) / (count + K1);
                    matched.push((String::new(), count as usize, i));
                }
            }
            let mut reasons = Vec::new();
            let hits: Vec<usize> = trace_lines
                .iter()
                .copied()
                .filter(|&line| line > start && line <= end)
                .collect();
            if !hits.is_empty() {
                score += TRACE_BOOST;
                reasons.push(Reason::InTrace { lines: hits });
            }
            if !matched.is_empty() {
                let terms = term_index
                    .iter()
                    .filter(|(_, &i)| tf[i] > 0)
                    .map(|(term, &i)| (term.to_string(), tf[i] as usize))
                    .collect();
                reasons.push(Reason::Terms { terms });
            }
            (score > 0.0).then(|| Region {
                start_line: start + 1,
                end_line: end,
                name: lines[start].trim().chars().take(100).collect(),
                score,
                reasons,
            })
        })
        .collect();
    // Best first; among equal scores the smaller region (a method rather than its whole impl).
    regions.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((a.end_line - a.start_line).cmp(&(b.end_line - b.start_line)))
            .then(a.start_line.cmp(&b.start_line))
    });
    let mut picked: Vec<Region> = Vec::new();
    for region in regions {
        let overlaps = picked
            .iter()
            .any(|seen| region.start_line <= seen.end_line && seen.start_line <= region.end_line);
        if !overlaps {
            picked.push(region);
        }
        if picked.len() == 3 {
            break;
        }
    }
    let mut regions = picked;
    for region in &mut regions {
        for reason in &mut region.reasons {
            if let Reason::Terms { terms } = reason {
                terms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            }
        }
    }
    regions
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

static PYTHON_FRAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"File "([^"]+)", line (\d+)"#).ok());
static PATH_LINE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"((?:[A-Za-z]:)?[\w.@+/\\-]*[\w-]\.[A-Za-z][A-Za-z0-9]{0,5})(?::(\d+))?(?::\d+)?")
        .ok()
});

/// Paths with optional line numbers found in `text` (Python/Rust/Go/JS/Java traces, `path:line:col`).
pub fn extract_locations(text: &str) -> Vec<Location> {
    let mut found: Vec<Location> = Vec::new();
    let mut push = |path: &str, line: Option<usize>| {
        let path = path.trim_start_matches("./").replace('\\', "/");
        let location = Location { path, line };
        if !found.contains(&location) {
            found.push(location);
        }
    };
    if let Some(pattern) = PYTHON_FRAME.as_ref() {
        for captures in pattern.captures_iter(text) {
            if let (Some(path), Some(line)) = (captures.get(1), captures.get(2)) {
                push(path.as_str(), line.as_str().parse().ok());
            }
        }
    }
    if let Some(pattern) = PATH_LINE.as_ref() {
        for captures in pattern.captures_iter(text) {
            let Some(path) = captures.get(1) else {
                continue;
            };
            let path = path.as_str();
            // `a.b` words (versions, `self.x`, `e.g`) are not paths; require a slash or a line number.
            let line = captures.get(2).and_then(|line| line.as_str().parse().ok());
            if path.contains('/') || line.is_some() || looks_like_file(path) {
                push(path, line);
            }
        }
    }
    found
}

fn looks_like_file(word: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "rs", "py", "go", "js", "ts", "tsx", "jsx", "java", "c", "h", "cc", "cpp", "hpp", "rb",
        "php", "cs", "kt", "swift", "toml", "json", "yaml", "yml", "md", "sh", "mjs", "cjs",
        "scala", "lua", "sql",
    ];
    word.rsplit_once('.')
        .is_some_and(|(stem, extension)| !stem.is_empty() && EXTENSIONS.contains(&extension))
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
