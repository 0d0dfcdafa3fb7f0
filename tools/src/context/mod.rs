//! Context selection: rank the repository's files, and regions inside them (functions, classes,
//! blocks), by relevance to a task. Signals: BM25 over identifiers (split on camelCase and
//! snake_case) in file contents and paths, paths and line numbers named in stack traces or compiler
//! errors, and files the user named. Each score comes with its reasons.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use crate::error::Result;
use crate::repo::{FileKind, Repository};

mod fixes;
mod graph;
mod history;
mod kinds;
mod lint;
mod locations;
mod parallel;
mod referenced;
mod regions;
mod repo_map;
mod scope;
mod spelling;
mod symbols;
mod task;
mod terms;
mod tested;
mod trace_hits;
mod traces;
mod types;

use fixes::{apply_similar_fixes, SimilarFixes};
use graph::{apply_symbol_graph, top_symbols};
use history::RecentChanges;
pub use lint::Finding;
use lint::{checks_for, Checks};
use parallel::map_in_two_threads;
use referenced::{apply_referenced, ReferencedChanges};
pub use repo_map::repo_map;
use scope::{apply_scope, subject_scope};
pub use spelling::Misspelling;
use spelling::{
    is_spelling_task, likely_typos, named_misspellings, spells_out_correction, Scanner,
};
use symbols::has_grammar;
pub use symbols::{definitions, personalised_pagerank, Definition, FileTags, Tagger};

pub use kinds::{classify_path, task_focus, FileClass, TaskFocus};
use kinds::{package_init, vendored_python_packages, PackageInit};
pub use locations::extract_locations;
use regions::rank_regions;
pub use task::{query_terms, QueryTerm, SegmentKind};
use terms::{for_each_term, TermMatcher};
use tested::apply_tested;
use trace_hits::{weigh_traces, PathResolver};
pub use traces::{parse_traces, Frame, Trace};
pub use types::{ContextQuery, ContextRanking, Location, RankedFile, Reason, Region, Signal};

/// Files over this size are not read for ranking (generated or vendored, rarely the answer).
const MAX_RANKED_FILE_BYTES: u64 = 256 * 1024;
/// A NUL in the first bytes makes a file binary (as `repo::classify` decides).
const BINARY_PROBE_BYTES: usize = 8000;
/// The start of a file that tells its kind (a generated-file marker).
const CLASSIFY_HEAD_BYTES: usize = 600;
/// BM25 parameters (the usual defaults).
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Boosts added to the BM25 score.
const NAMED_BOOST: f64 = 12.0;
/// A path mentioned in the task's prose (not in a trace): strong, but below the raising frame.
const MENTIONED_BOOST: f64 = 5.0;
const TRACE_BOOST: f64 = 10.0;
const PATH_TERM_WEIGHT: f64 = 1.5;
/// Boost per likely typo in a file, for a task about spelling (at most [`MAX_TYPOS_COUNTED`]
/// count), times the file kind's weight.
const TYPO_BOOST: f64 = 4.0;
const MAX_TYPOS_COUNTED: usize = 2;
/// Boost per lint finding in a file, for a task about lint, style or syntax (at most
/// [`MAX_FINDINGS_COUNTED`] count), times the file kind's weight: as for typos.
const LINT_BOOST: f64 = 4.0;
const MAX_FINDINGS_COUNTED: usize = 2;
/// Bytes of code a syntax task parses (tree-sitter reads a few MB/s per core): a repository of
/// half a megabyte of code is parsed whole, a larger one its most recently changed files first
/// (on the 10,000-file tree, 512 KiB costs about 50 ms, 1 MiB about 100 ms, all of it 2.7 s).
const SYNTAX_BUDGET_BYTES: usize = 512 * 1024;

/// Rank the files of `repo` (working tree: tracked + untracked-not-ignored text files) for `query`.
pub fn select_context(repo: &Repository, query: &ContextQuery) -> Result<ContextRanking> {
    let start = Instant::now();
    // The tag queries take tens of milliseconds per language to compile: the main languages'
    // compile while the work tree is listed (one thread) and read.
    let index = repo.index()?;
    let tracked: Vec<String> = index
        .iter()
        .filter_map(|entry| String::from_utf8(entry.path).ok())
        .collect();
    std::thread::scope(|scope| {
        scope.spawn(|| symbols::prepare_main_languages(tracked.iter().map(String::as_str)));
        select_context_in(repo, query, start)
    })
}

fn select_context_in(
    repo: &Repository,
    query: &ContextQuery,
    start: Instant,
) -> Result<ContextRanking> {
    let files = repo.list_files()?;
    let root = repo.root();
    let candidates: Vec<&str> = files
        .iter()
        .filter(|file| matches!(file.kind, FileKind::Regular | FileKind::Executable))
        .map(|file| file.path.as_str())
        .collect();
    let query_terms = query_terms(&query.task, query.failure_output.as_deref());
    let terms: Vec<&str> = query_terms.iter().map(|term| term.term.as_str()).collect();
    let matcher = TermMatcher::new(&terms);
    // The focus as `rank_counted` reads it (a named file's kind does not depend on its text).
    let names_prose = query
        .named_files
        .iter()
        .any(|name| classify_path(name.trim_start_matches("./"), "") == FileClass::Docs);
    let terms_owned: Vec<String> = terms.iter().map(|term| term.to_string()).collect();
    let focus = task_focus(&terms_owned, names_prose);
    let spelling = is_spelling_task(&terms_owned);
    let checks = checks_for(&terms_owned, &query.task);
    // Each file is counted as soon as it is read, in a buffer each thread reuses, while its text
    // is still in the cache. Only the head of each file is kept (its kind): keeping every source
    // file whole cost more in copies and page faults than reading again the few hundred
    // kilobytes the symbol graph parses and the regions of the files shown.
    let read: Vec<Option<(String, String, TermCounts)>> =
        map_in_two_threads(&candidates, Default::default, |(buffer, scanner), path| {
            if !worth_reading(path, query, focus) {
                return None;
            }
            let text = read_text_into(root, path, buffer)?;
            let counts = TermCounts::of(
                &matcher,
                path,
                text,
                spelling.then_some(scanner),
                checks.while_reading(),
            );
            let head = &text[..floor_boundary(text, CLASSIFY_HEAD_BYTES)];
            Some((path.to_string(), head.to_string(), counts))
        });
    let mut documents = Vec::with_capacity(read.len());
    let mut counted = Vec::with_capacity(read.len());
    for (path, text, counts) in read.into_iter().flatten() {
        documents.push((path, text));
        counted.push(counts);
    }
    let whole_text = |index: usize| -> Option<String> {
        read_text_into(root, &documents[index].0, &mut Vec::new()).map(str::to_string)
    };
    let history = History {
        recent: RecentChanges::read(repo.git()),
        fixes: SimilarFixes::read(repo.git(), &query.task),
        referenced: ReferencedChanges::read(repo.git(), &query.task),
    };
    let mut ranking = rank_counted(
        &documents,
        counted,
        query_terms,
        query,
        &history,
        &whole_text,
    );
    ranking.elapsed = start.elapsed();
    Ok(ranking)
}

/// Whether ranking reads `path`: data and generated files (CSV, lock files, `vendor/`, test data;
/// known from the path alone) weigh a tenth or less of source and never rank for a code task, so
/// they are read only when the user, the task or the failure output names them; so are prose and
/// issue templates for a code task (`focus`), where they weigh an eighth or less.
fn worth_reading(path: &str, query: &ContextQuery, focus: TaskFocus) -> bool {
    let skipped = match classify_path(path, "") {
        FileClass::Data | FileClass::Generated => true,
        FileClass::Docs | FileClass::Template => focus == TaskFocus::Code,
        FileClass::Source | FileClass::Test | FileClass::Config => false,
    };
    if !skipped {
        return true;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    query
        .named_files
        .iter()
        .any(|named| paths_match(named, path))
        || query.task.contains(name)
        || query
            .failure_output
            .as_deref()
            .is_some_and(|output| output.contains(name))
}

/// The text of the file at `path`, read into `buffer`, unless it is unreadable, too large, binary
/// or not UTF-8.
fn read_text_into<'b>(root: &Path, path: &str, buffer: &'b mut Vec<u8>) -> Option<&'b str> {
    use std::io::Read;
    // One open and bounded reads, no separate stat: this runs 10,000 times per ranking. The
    // first read is the binary probe, so an image costs 8 kB, not the whole file.
    let mut file = std::fs::File::open(root.join(path)).ok()?;
    buffer.clear();
    (&mut file)
        .take(BINARY_PROBE_BYTES as u64)
        .read_to_end(buffer)
        .ok()?;
    if buffer.contains(&0) {
        return None;
    }
    if buffer.len() == BINARY_PROBE_BYTES
        && (file
            .take(MAX_RANKED_FILE_BYTES + 1 - BINARY_PROBE_BYTES as u64)
            .read_to_end(buffer)
            .is_err()
            || buffer.len() as u64 > MAX_RANKED_FILE_BYTES)
    {
        return None;
    }
    std::str::from_utf8(buffer).ok()
}

/// How often each query term occurs in one document, the document's length in words, its size in
/// bytes, for a task about spelling its candidate misspellings with their counts, for a task
/// about lint its findings, and for a Python `__init__.py` what it declares (vendored packages).
struct TermCounts {
    tf: Vec<u32>,
    length: usize,
    bytes: usize,
    misspellings: spelling::Candidates,
    findings: Vec<Finding>,
    package_init: Option<PackageInit>,
}

impl TermCounts {
    /// Counts for `text`, the text of `path`; its candidate misspellings too when a `spelling`
    /// scanner is given, and its findings when the task asks for `checks`.
    fn of(
        matcher: &TermMatcher,
        path: &str,
        text: &str,
        spelling: Option<&mut Scanner>,
        checks: Checks,
    ) -> Self {
        let mut tf = vec![0u32; matcher.len];
        let length = matcher.count(text, &mut tf);
        Self {
            tf,
            length,
            bytes: text.len(),
            misspellings: spelling
                .map(|scanner| scanner.scan(text))
                .unwrap_or_default(),
            findings: lint::check(path, text, checks),
            package_init: (path == "__init__.py" || path.ends_with("/__init__.py"))
                .then(|| package_init(text)),
        }
    }
}

/// Rank in-memory documents `(path, content)` for `query` (the core of `select_context`).
pub fn rank_documents(documents: &[(String, String)], query: &ContextQuery) -> ContextRanking {
    let start = Instant::now();
    let query_terms = query_terms(&query.task, query.failure_output.as_deref());
    let terms: Vec<&str> = query_terms.iter().map(|term| term.term.as_str()).collect();
    let matcher = TermMatcher::new(&terms);
    let terms_owned: Vec<String> = terms.iter().map(|term| term.to_string()).collect();
    let spelling = is_spelling_task(&terms_owned);
    let checks = checks_for(&terms_owned, &query.task);
    let counted = map_in_two_threads(documents, Scanner::default, |scanner, (path, text)| {
        TermCounts::of(
            &matcher,
            path,
            text,
            spelling.then_some(scanner),
            checks.while_reading(),
        )
    });
    let history = History::default();
    let mut ranking = rank_counted(documents, counted, query_terms, query, &history, &|_| None);
    ranking.elapsed = start.elapsed();
    ranking
}

/// A document's whole text read again (None when it cannot be read); asked only for documents
/// whose text in `documents` is cut to its head (`graph::Texts::text`).
type WholeText<'a> = dyn Fn(usize) -> Option<String> + Sync + 'a;

/// What the repository's history says: recently changed files, files changed by past commits
/// like the task, and files changed by the commits it refers to (all empty for documents not
/// from a repository).
#[derive(Debug, Default)]
struct History {
    recent: RecentChanges,
    fixes: SimilarFixes,
    referenced: ReferencedChanges,
}

/// Rank `documents` given each one's term counts (`counted`, same order) for `query_terms`.
/// `history` is the repository's history (empty for documents not from a repository); a
/// document whose text was cut to its head gives its whole text through `whole_text`.
fn rank_counted(
    documents: &[(String, String)],
    counted: Vec<TermCounts>,
    query_terms: Vec<QueryTerm>,
    query: &ContextQuery,
    history: &History,
    whole_text: &WholeText<'_>,
) -> ContextRanking {
    let start = Instant::now();
    let top = if query.top == 0 { 10 } else { query.top };
    let terms: Vec<String> = query_terms.iter().map(|term| term.term.clone()).collect();
    let weights: Vec<f64> = query_terms.iter().map(|term| term.weight).collect();
    let term_index: HashMap<&str, usize> = terms
        .iter()
        .enumerate()
        .map(|(i, term)| (term.as_str(), i))
        .collect();
    let mut document_frequency = vec![0usize; terms.len()];
    let mut counts: Vec<Vec<u32>> = Vec::with_capacity(documents.len());
    let mut lengths: Vec<usize> = Vec::with_capacity(documents.len());
    let mut sizes: Vec<usize> = Vec::with_capacity(documents.len());
    let mut misspellings = Vec::with_capacity(documents.len());
    let mut findings = Vec::with_capacity(documents.len());
    let mut inits = Vec::new();
    for (index, document_counts) in counted.into_iter().enumerate() {
        let TermCounts {
            tf,
            length,
            bytes,
            misspellings: candidates,
            findings: found,
            package_init,
        } = document_counts;
        findings.push(found);
        if let Some(init) = package_init {
            inits.push((documents[index].0.as_str(), init));
        }
        for (i, count) in tf.iter().enumerate() {
            if *count > 0 {
                document_frequency[i] += 1;
            }
        }
        counts.push(tf);
        lengths.push(length);
        sizes.push(bytes);
        misspellings.push(candidates);
    }
    let n = documents.len() as f64;
    let average_length = (lengths.iter().sum::<usize>() as f64 / n.max(1.0)).max(1.0);
    let idf: Vec<f64> = document_frequency
        .iter()
        .map(|&df| (1.0 + (n - df as f64 + 0.5) / (df as f64 + 0.5)).ln())
        .collect();
    let vendored = vendored_python_packages(&inits);
    let classes: Vec<FileClass> = documents
        .iter()
        .map(|(path, text)| {
            if vendored
                .iter()
                .any(|directory| path.starts_with(directory.as_str()))
            {
                FileClass::Generated
            } else {
                classify_path(path, &text[..floor_boundary(text, CLASSIFY_HEAD_BYTES)])
            }
        })
        .collect();

    // Traces (in the task and in the failure output), resolved to repository files.
    let mut traces = parse_traces(&query.task);
    if let Some(output) = &query.failure_output {
        traces.extend(parse_traces(output));
    }
    let resolver = PathResolver::new(documents);
    let trace_hits = weigh_traces(&traces, &resolver, &classes);
    let trace_paths: Vec<&str> = traces
        .iter()
        .flat_map(|trace| trace.frames.iter().map(|frame| frame.path.as_str()))
        .collect();

    let mut named: Vec<String> = query
        .named_files
        .iter()
        .map(|path| path.trim_start_matches("./").to_string())
        .collect();
    for location in extract_locations(&query.task) {
        if !trace_paths
            .iter()
            .any(|path| path.ends_with(&location.path))
        {
            named.push(location.path);
        }
    }
    let task_words: Vec<&str> = query
        .task
        .split(|c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'' | ',' | '(' | ')'))
        .collect();
    let is_named = |path: &str| {
        let file_name = path.rsplit('/').next().unwrap_or(path);
        named.iter().any(|name| paths_match(name, path))
            || task_words
                .iter()
                .any(|word| *word == file_name && file_name.contains('.'))
    };
    let names_prose = documents.iter().zip(&classes).any(|((path, _), class)| {
        *class == FileClass::Docs && query.named_files.iter().any(|name| paths_match(name, path))
    });
    let focus = task_focus(&terms, names_prose);
    let copied: Vec<bool> = classes
        .iter()
        .map(|class| *class == FileClass::Generated)
        .collect();
    let mut typos = likely_typos(
        misspellings,
        &copied,
        &named_misspellings(&terms),
        spells_out_correction(&query.task),
    );
    // A typo task that names its file (`Fix typo in cobra/cmd/init.go`) looks only there
    // (`named` holds the user's files too). Only asked when there are typos at all.
    if typos.iter().any(|found| !found.is_empty()) {
        let named_documents: Vec<bool> = documents.iter().map(|(path, _)| is_named(path)).collect();
        if named_documents.contains(&true) {
            for (found, named) in typos.iter_mut().zip(&named_documents) {
                if !named {
                    found.clear();
                }
            }
        }
    }

    let mut ranked: Vec<RankedFile> = Vec::new();
    for (index, (path, _)) in documents.iter().enumerate() {
        let class = classes[index];
        let class_weight = class.weight(focus);
        let mut text_score = 0.0;
        let mut reasons = Vec::new();
        let mut signals = Vec::new();
        let mut matched = Vec::new();
        for (i, &tf) in counts[index].iter().enumerate() {
            if tf == 0 {
                continue;
            }
            let tf = f64::from(tf);
            let norm = 1.0 - B + B * lengths[index] as f64 / average_length;
            text_score += weights[i] * idf[i] * tf * (K1 + 1.0) / (tf + K1 * norm);
            matched.push((terms[i].clone(), tf as usize));
        }
        if !matched.is_empty() {
            matched.sort_by_key(|term| std::cmp::Reverse(term.1));
            matched.truncate(8);
            reasons.push(Reason::Terms { terms: matched });
        }
        let mut path_score = 0.0;
        let mut path_terms = Vec::new();
        for_each_term(path, |term| {
            if let Some(&i) = term_index.get(term) {
                if !path_terms.iter().any(|seen: &String| seen == term) {
                    path_score += PATH_TERM_WEIGHT * weights[i] * idf[i];
                    path_terms.push(term.to_string());
                }
            }
        });
        if !path_terms.is_empty() {
            reasons.push(Reason::PathTerms { terms: path_terms });
        }
        let mut score = (text_score + path_score) * class_weight;
        if text_score + path_score > 0.0 {
            signals.push(Signal::new(
                "text",
                score,
                format!(
                    "BM25 {text_score:.2} + path {path_score:.2}, times {class_weight:.2} for a {} file in a {} task",
                    class.label(),
                    focus.label()
                ),
            ));
        }
        if query.named_files.iter().any(|name| paths_match(name, path)) {
            score += NAMED_BOOST;
            reasons.insert(0, Reason::Named);
            signals.push(Signal::new(
                "named",
                NAMED_BOOST,
                "named by the user".into(),
            ));
        } else if is_named(path) {
            score += MENTIONED_BOOST;
            reasons.insert(0, Reason::Named);
            signals.push(Signal::new(
                "named",
                MENTIONED_BOOST,
                "mentioned in the task".into(),
            ));
        }
        if !typos[index].is_empty() {
            let counted = typos[index].len().min(MAX_TYPOS_COUNTED);
            let boost = TYPO_BOOST * counted as f64 * class_weight;
            score += boost;
            signals.push(Signal::new(
                "spelling",
                boost,
                Misspelling::describe(&typos[index]),
            ));
            reasons.push(Reason::Misspelled {
                words: typos[index].clone(),
            });
        }
        if let Some(hit) = trace_hits.get(&index) {
            let boost = TRACE_BOOST * hit.weight;
            score += boost;
            reasons.insert(
                0,
                Reason::InTrace {
                    lines: hit.lines.clone(),
                },
            );
            signals.push(Signal::new("trace", boost, hit.role.to_string()));
        }
        ranked.push(RankedFile {
            path: path.clone(),
            score,
            reasons,
            regions: Vec::new(),
            class,
            signals,
            symbols: Vec::new(),
        });
    }
    let texts = graph::Texts {
        documents,
        sizes: &sizes,
        whole_text,
    };
    // Parse errors, for a syntax task: parsing every file of a large repository would cost
    // seconds, so the files changed most recently (where a slip was just made) and then the best
    // so far are parsed, within a budget.
    if checks_for(&terms, &query.task).syntax {
        let chosen = syntax_candidates(&texts, &classes, &ranked, &history.recent);
        let syntax_only = Checks {
            syntax: true,
            ..Checks::default()
        };
        let found = map_in_two_threads(
            &chosen,
            || (),
            |(), &index| lint::check(&documents[index].0, &texts.text(index), syntax_only),
        );
        for (&index, found) in chosen.iter().zip(found) {
            findings[index].extend(found);
        }
    }
    for (index, file) in ranked.iter_mut().enumerate() {
        flag(file, &findings[index], classes[index].weight(focus));
    }
    let mut parsed = apply_symbol_graph(&texts, &classes, &query_terms, &mut ranked);
    history.recent.apply(&mut ranked, focus);
    apply_similar_fixes(&history.fixes, &mut ranked, focus);
    apply_referenced(&history.referenced, &mut ranked, focus);
    if let Some(scope) = subject_scope(&query.task) {
        apply_scope(&scope, &mut ranked);
    }
    apply_tested(&mut ranked);
    let mut ranked: Vec<(usize, RankedFile)> = ranked
        .into_iter()
        .enumerate()
        .filter(|(_, file)| file.score > 0.0)
        .collect();
    ranked.sort_by(|(_, a), (_, b)| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.path.cmp(&b.path))
    });
    ranked.truncate(top);
    // The files shown that the graph did not parse (docs have no grammar; large repositories
    // parse within a budget): their regions come from the same parse.
    let unparsed: Vec<usize> = ranked
        .iter()
        .map(|(index, _)| *index)
        .filter(|index| !parsed.contains_key(index) && has_grammar(&documents[*index].0))
        .collect();
    parsed.extend(graph::parse_files(&texts, &unparsed));
    let ranked: Vec<RankedFile> = ranked
        .into_iter()
        .map(|(index, mut file)| {
            let found = parsed
                .get(&index)
                .map_or(&[][..], |tags| tags.definitions.as_slice());
            file.symbols = top_symbols(found, &term_index);
            let lines: Vec<usize> = trace_hits
                .get(&index)
                .map(|hit| hit.lines.clone())
                .unwrap_or_default();
            file.regions = rank_regions(
                &texts.text(index),
                found,
                &term_index,
                &idf,
                &lines,
                &typos[index],
                &findings[index],
            );
            file
        })
        .collect();
    ContextRanking {
        files: ranked,
        files_considered: documents.len(),
        elapsed: start.elapsed(),
        focus,
        query_terms,
    }
}

/// Add the lint signal to `file` for its `findings` (a task about lint, style or syntax).
fn flag(file: &mut RankedFile, findings: &[Finding], class_weight: f64) {
    if findings.is_empty() {
        return;
    }
    let counted = findings.len().min(MAX_FINDINGS_COUNTED);
    let boost = LINT_BOOST * counted as f64 * class_weight;
    file.score += boost;
    file.signals
        .push(Signal::new("lint", boost, Finding::describe(findings)));
    file.reasons.push(Reason::Flagged {
        findings: findings.to_vec(),
    });
}

/// The files a syntax task parses: code with a grammar, the most recently changed first, then the
/// best so far, within [`SYNTAX_BUDGET_BYTES`] (a small repository is parsed whole).
fn syntax_candidates(
    texts: &graph::Texts,
    classes: &[FileClass],
    ranked: &[RankedFile],
    recent: &RecentChanges,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..texts.documents.len())
        .filter(|&i| matches!(classes[i], FileClass::Source | FileClass::Test))
        .filter(|&i| has_grammar(&texts.documents[i].0))
        .collect();
    order.sort_by(|&a, &b| {
        let recency = |i: usize| recent.recency(&texts.documents[i].0);
        recency(b)
            .total_cmp(&recency(a))
            .then_with(|| ranked[b].score.total_cmp(&ranked[a].score))
            .then_with(|| texts.sizes[a].cmp(&texts.sizes[b]))
    });
    let mut used = 0;
    order.retain(|&i| {
        let keep = used + texts.sizes[i] <= SYNTAX_BUDGET_BYTES;
        if keep {
            used += texts.sizes[i];
        }
        keep
    });
    order
}

/// The largest char boundary of `text` at or below `at`.
fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
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

    /// Documents `(path, text)` as `rank_documents` takes them.
    fn owned(documents: &[(&str, &str)]) -> Vec<(String, String)> {
        documents
            .iter()
            .map(|(path, text)| (path.to_string(), text.to_string()))
            .collect()
    }

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

    /// `line` of `file` is inside one of its regions.
    fn assert_line_in_a_region(file: &RankedFile, line: usize) {
        assert!(
            file.regions
                .iter()
                .any(|region| region.start_line <= line && line <= region.end_line),
            "{:?}",
            file.regions
        );
    }

    /// No ranked file has a reason that `is` tells.
    fn no_reason(ranking: &ContextRanking, is: impl Fn(&Reason) -> bool) -> bool {
        ranking
            .files
            .iter()
            .all(|file| !file.reasons.iter().any(&is))
    }

    #[test]
    fn the_code_a_ranked_test_tests_shares_in_its_score() {
        let documents = owned(&[
            ("tests/test_cookies.py", "def test_expired_cookie_is_dropped_from_the_jar():\n    jar = make_jar()\n    assert expired(jar)\n"),
            ("src/cookies.py", "def make_jar():\n    return {}\n"),
            ("src/sessions.py", "def session():\n    return None\n"),
            ("src/adapters.py", "def send(request):\n    return request\n"),
        ]);
        let ranking = rank_documents(
            &documents,
            &ContextQuery {
                task: "An expired cookie stays in the jar".into(),
                ..Default::default()
            },
        );
        let cookies = ranking
            .files
            .iter()
            .find(|file| file.path == "src/cookies.py")
            .unwrap();
        let tested = cookies
            .signals
            .iter()
            .find(|signal| signal.name == "tested")
            .unwrap();
        assert!(
            tested.detail.contains("tests/test_cookies.py"),
            "{}",
            tested.detail
        );
        assert!(ranking
            .files
            .iter()
            .all(|file| file.path != "src/sessions.py"));
    }

    #[test]
    fn a_task_about_lint_finds_the_file_a_linter_would_flag_and_its_line() {
        let clean = "import re\n\n\ndef parse(text):\n    return re.split(r\"\\s+\", text)\n";
        let flagged =
            "\"\"\"Status codes.\"\"\"\n\nWORD = \"\\w+\"\n\n\ndef codes():\n    return WORD\n";
        let documents: Vec<(String, String)> = vec![
            ("pkg/parse.py".into(), clean.into()),
            ("pkg/status_codes.py".into(), flagged.into()),
            (
                "pkg/escape_words.py".into(),
                clean.replace("parse", "escape_sequence"),
            ),
        ];
        let query = ContextQuery {
            task: "Fix an invalid escape sequence".into(),
            top: 3,
            ..Default::default()
        };
        let ranking = rank_documents(&documents, &query);
        let first = &ranking.files[0];
        assert_eq!(first.path, "pkg/status_codes.py", "{ranking:#?}");
        assert!(first.reasons.iter().any(|reason| matches!(
            reason,
            Reason::Flagged { findings } if findings[0].code == "W605" && findings[0].line == 3
        )));
        assert!(first.signals.iter().any(|signal| signal.name == "lint"));
        assert_line_in_a_region(first, 3);
        // A task about behaviour runs no checks.
        let query = ContextQuery {
            task: "codes returns the wrong words".into(),
            top: 3,
            ..Default::default()
        };
        let ranking = rank_documents(&documents, &query);
        assert!(no_reason(&ranking, |reason| matches!(
            reason,
            Reason::Flagged { .. }
        )));
    }

    #[test]
    fn a_task_about_typos_finds_the_file_with_the_misspelling_and_its_region() {
        let mut documents = docs();
        documents.push((
            "src/walk.rs".into(),
            "pub fn walk() {}\n\n/// Apply the fileters to each entry.\npub fn filter(entry: &str) -> bool {\n    !entry.is_empty()\n}\n"
                .into(),
        ));
        let query = ContextQuery {
            task: "doc: fix typo\n\nPR #2313".into(),
            top: 3,
            ..Default::default()
        };
        let ranking = rank_documents(&documents, &query);
        let first = &ranking.files[0];
        assert_eq!(first.path, "src/walk.rs");
        assert!(first.reasons.iter().any(|reason| matches!(
            reason,
            Reason::Misspelled { words } if words[0].word == "fileters" && words[0].line == 3
        )));
        assert_line_in_a_region(first, 3);
        // The same words in a task about behaviour look for nothing of the kind.
        let query = ContextQuery {
            task: "walk skips entries it should keep".into(),
            top: 3,
            ..Default::default()
        };
        let ranking = rank_documents(&documents, &query);
        assert!(no_reason(&ranking, |reason| matches!(
            reason,
            Reason::Misspelled { .. }
        )));
    }

    #[test]
    fn a_typo_task_that_names_its_file_looks_only_there() {
        let mut documents = docs();
        documents.push((
            "README.md".into(),
            "# calc\n\nAdds and substracts numbers.\n".into(),
        ));
        documents.push((
            "src/walk.rs".into(),
            "/// Apply the fileters to each entry.\npub fn filter(entry: &str) -> bool {\n    true\n}\n"
                .into(),
        ));
        let query = ContextQuery {
            task: "Fix typo in src/walk.rs".into(),
            top: 5,
            ..Default::default()
        };
        let ranking = rank_documents(&documents, &query);
        assert_eq!(ranking.files[0].path, "src/walk.rs");
        let flagged: Vec<&str> = ranking
            .files
            .iter()
            .filter(|file| {
                file.reasons
                    .iter()
                    .any(|reason| matches!(reason, Reason::Misspelled { .. }))
            })
            .map(|file| file.path.as_str())
            .collect();
        assert_eq!(flagged, ["src/walk.rs"]);
    }

    #[test]
    fn a_private_name_the_task_calls_without_its_underscore_is_still_defined_there() {
        let documents = vec![
            (
                "src/pager/_impl.py".to_string(),
                "def _pipepager(generator, cmd):\n    return run(cmd)\n".to_string(),
            ),
            (
                "src/pager/api.py".to_string(),
                "from ._impl import _pipepager\n\ndef page(text):\n    return _pipepager(text, 'less')\n"
                    .to_string(),
            ),
        ];
        let query = ContextQuery {
            task: "Fix _pipepager()/_tempfilepager() with multi-call binaries".into(),
            top: 2,
            ..Default::default()
        };
        let ranking = rank_documents(&documents, &query);
        assert_eq!(ranking.files[0].path, "src/pager/_impl.py");
        assert!(ranking.files[0]
            .signals
            .iter()
            .any(|signal| signal.name == "defines" && signal.detail.contains("pipepager")));
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

    #[test]
    fn trace_ranks_the_raising_frame_not_the_first_or_last_path() {
        let documents = owned(&[
            (
                "tests/test_views.py",
                "def test_index(client):\n    client.get('/')\n",
            ),
            (
                "src/shop/app.py",
                "def dispatch(request):\n    return view(request)\n",
            ),
            (
                "src/shop/views.py",
                "def index(request):\n    return render(request)\n",
            ),
            (
                "src/shop/render.py",
                "def render(request):\n    return template.fill(request.args)\n",
            ),
            (
                "src/shop/wsgi.py",
                "def serve(app):\n    app.dispatch(None)\n",
            ),
        ]);
        // The first named path is a test, the last a library frame; the raising frame is
        // render.py, in the middle of the named paths.
        let task = "Index page crashes\n\nTraceback (most recent call last):\n  File \"/home/u/shop/tests/test_views.py\", line 2, in test_index\n  File \"/home/u/shop/src/shop/app.py\", line 2, in dispatch\n  File \"/home/u/shop/src/shop/views.py\", line 2, in index\n  File \"/home/u/shop/src/shop/render.py\", line 2, in render\n  File \"/usr/lib/python3.12/string.py\", line 120, in substitute\nKeyError: 'name'\n\nAlso see /home/u/shop/src/shop/wsgi.py\n";
        let ranking = rank_documents(
            &documents,
            &ContextQuery {
                task: task.into(),
                ..Default::default()
            },
        );
        let order: Vec<&str> = ranking
            .files
            .iter()
            .map(|file| file.path.as_str())
            .collect();
        assert_eq!(order[0], "src/shop/render.py", "{ranking:#?}");
        let position = |path: &str| order.iter().position(|seen| *seen == path).unwrap();
        assert!(position("src/shop/views.py") < position("src/shop/app.py"));
        assert!(position("src/shop/app.py") < position("tests/test_views.py"));
        let top = &ranking.files[0];
        assert!(top
            .signals
            .iter()
            .any(|signal| signal.name == "trace" && signal.detail.contains("innermost")));
    }

    #[test]
    fn rust_panic_inside_the_backtrace_ranks_its_frame_first() {
        let documents = owned(&[
            ("src/main.rs", "fn main() { cli::run(); }\n"),
            ("src/cli.rs", "pub fn run() { parse::header(\"\"); }\n"),
            (
                "src/parse.rs",
                "pub fn header(s: &str) -> u8 { s.as_bytes()[0] }\n",
            ),
        ]);
        let output = "thread 'main' panicked at src/parse.rs:1:34:\nindex out of bounds: the len is 0 but the index is 0\nstack backtrace:\n   0: rust_begin_unwind\n             at /rustc/x/library/std/src/panicking.rs:597:5\n   1: app::parse::header\n             at ./src/parse.rs:1:34\n   2: app::cli::run\n             at ./src/cli.rs:1:16\n   3: app::main\n             at ./src/main.rs:1:13\n";
        let ranking = rank_documents(
            &documents,
            &ContextQuery {
                task: "fix the crash".into(),
                failure_output: Some(output.into()),
                ..Default::default()
            },
        );
        let order: Vec<&str> = ranking
            .files
            .iter()
            .map(|file| file.path.as_str())
            .collect();
        assert_eq!(order[0], "src/parse.rs", "{ranking:#?}");
        assert_eq!(order.len(), 3);
    }

    #[test]
    fn source_ranks_above_docs_and_issue_templates_for_a_bug() {
        let documents = owned(&[
            ("docs/sessions.rst", "Sessions\n========\n\nThe session cookie is signed. Session cookie session cookie expires.\n"),
            (".github/ISSUE_TEMPLATE/bug.md", "Describe the bug. Expected behavior. Session cookie.\n"),
            ("src/app/sessions.py", "class SessionInterface:\n    def save_session(self, app, session, response):\n        response.set_cookie(app.session_cookie_name)\n"),
            ("tests/test_sessions.py", "def test_session_cookie(client):\n    assert client.cookie\n"),
        ]);
        let ranking = rank_documents(
            &documents,
            &ContextQuery {
                task: "Session cookie is not set when the session is modified".into(),
                ..Default::default()
            },
        );
        let order: Vec<&str> = ranking
            .files
            .iter()
            .map(|file| file.path.as_str())
            .collect();
        assert_eq!(order[0], "src/app/sessions.py", "{order:?}");
        assert_eq!(order[1], "tests/test_sessions.py", "{order:?}");
        assert_eq!(ranking.files[0].class, FileClass::Source);
        assert_eq!(ranking.focus, TaskFocus::Code);
        // A task about the docs ranks them first.
        let ranking = rank_documents(
            &documents,
            &ContextQuery {
                task: "Fix a typo in the sessions documentation about the cookie".into(),
                ..Default::default()
            },
        );
        assert_eq!(ranking.files[0].path, "docs/sessions.rst");
    }

    #[test]
    fn a_task_naming_only_the_caller_finds_the_callee() {
        let documents = owned(&[
            ("shop/checkout.py", "from shop.pricing import apply_discount_rules\n\ndef checkout_cart(cart):\n    total = apply_discount_rules(cart.items)\n    return total\n"),
            ("shop/pricing.py", "def apply_discount_rules(items):\n    return sum(item.price for item in items) * 0.9\n"),
            ("shop/shipping.py", "def ship(order):\n    return order.address\n"),
            ("shop/users.py", "def login(name):\n    return name\n"),
        ]);
        let ranking = rank_documents(
            &documents,
            &ContextQuery {
                task: "checkout_cart returns the wrong total for carts".into(),
                ..Default::default()
            },
        );
        let order: Vec<&str> = ranking
            .files
            .iter()
            .map(|file| file.path.as_str())
            .collect();
        assert_eq!(order[0], "shop/checkout.py", "{order:?}");
        assert_eq!(order[1], "shop/pricing.py", "{order:?}");
        let callee = &ranking.files[1];
        assert!(callee
            .signals
            .iter()
            .any(|signal| signal.name == "graph" && signal.detail.contains("shop/checkout.py")));
        assert!(!order.contains(&"shop/shipping.py"));
        // The repo map shows the callee's signature.
        let map = repo_map(&ranking.files, 200);
        assert!(map.contains("def apply_discount_rules(items):"), "{map}");
    }

    #[test]
    fn only_files_used_through_links_get_the_graph_bonus() {
        let documents = owned(&[
            ("CHANGES.md", "## 2.1\n\n- checkout_cart totals: checkout_cart now rounds the cart total.\n"),
            ("shop/checkout.py", "from shop.pricing import apply_discount_rules\n\ndef checkout_cart(cart):\n    return apply_discount_rules(cart.items)\n"),
            ("shop/pricing.py", "def apply_discount_rules(items):\n    return sum(item.price for item in items)\n"),
        ]);
        let ranking = rank_documents(
            &documents,
            &ContextQuery {
                task: "checkout_cart rounds the cart total wrong".into(),
                ..Default::default()
            },
        );
        let graph = |path: &str| {
            ranking
                .files
                .iter()
                .find(|file| file.path == path)
                .unwrap()
                .signals
                .iter()
                .any(|signal| signal.name == "graph")
        };
        // The changelog uses nothing and nothing uses it: PageRank hands its rank back to the
        // seeds, which is not a link to it.
        assert!(!graph("CHANGES.md"), "{ranking:#?}");
        assert!(graph("shop/pricing.py"), "{ranking:#?}");
    }

    #[test]
    fn data_files_are_read_only_when_named() {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let files = [
            ("data/points.csv", "x,y\nborder,1\n"),
            ("data/other.csv", "x,y\nborder,2\n"),
            ("plot.py", "def draw_border(points):\n    return points\n"),
        ];
        let mut index = git.index().unwrap();
        for (path, text) in files {
            std::fs::write(dir.path().join(path), text).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        index.write().unwrap();
        let repo = Repository::discover(dir.path()).unwrap();
        let paths = |query: &ContextQuery| -> Vec<String> {
            select_context(&repo, query)
                .unwrap()
                .files
                .into_iter()
                .map(|file| file.path)
                .collect()
        };
        let query = ContextQuery {
            task: "the border is drawn wrong".into(),
            ..Default::default()
        };
        assert_eq!(paths(&query), ["plot.py"]);
        let named_in_task = ContextQuery {
            task: "the border from points.csv is drawn wrong".into(),
            ..Default::default()
        };
        assert_eq!(paths(&named_in_task)[0], "data/points.csv");
        let named_by_user = ContextQuery {
            named_files: vec!["data/other.csv".into()],
            ..query
        };
        assert_eq!(paths(&named_by_user)[0], "data/other.csv");
    }
}
