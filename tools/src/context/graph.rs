//! The symbol graph's signals: files defining the task's identifiers, and personalised PageRank
//! from the first-stage ranking to the files whose definitions the best files use.

use std::borrow::Cow;
use std::collections::HashMap;

use super::symbols::{
    has_grammar, personalised_pagerank, prepare, reference_edges, Definition, FileTags, Tagger,
};
use super::terms::for_each_term;
use super::{FileClass, QueryTerm, RankedFile, Signal, WholeText};

/// Files whose first-stage score seeds the graph (and whose references make its edges).
const GRAPH_SEEDS: usize = 30;
/// Largest bonus from the symbol graph (the file that receives the most rank from the seeds).
/// Chosen on flask, click and ripgrep of the benchmark (2.5 against 5 and 0); requests and cobra
/// were held out.
const GRAPH_WEIGHT: f64 = 2.5;
/// The graph's bonus is whole when the best file scores this much before it, and shrinks in
/// proportion below: when the task's words point nowhere in particular (`fix annotation for g
/// object`), the shape of the code alone should not decide the order. Chosen on the benchmark
/// (5 to 10 gave the same top 5, 15 or more lost what it gains).
const GRAPH_FULL_AT: f64 = 10.0;
/// Bonus per task identifier a file defines (times the term's weight).
const DEFINES_WEIGHT: f64 = 2.0;
/// Bytes of code parsed per ranking: the best first-stage files first, then the rest while it
/// lasts (a small repository is parsed whole; a large one keeps its time bounded). Parsing runs at
/// a few MB/s per core; on the benchmark 256 KiB gave the same top 5 as 3 MiB (top 10: 88% against
/// 92%) in two thirds of the time.
const PARSE_BUDGET_BYTES: usize = 256 * 1024;

/// The documents ranked, as the graph reads them: the path and kept text of each (maybe only its
/// head), its size in bytes, and its whole text on demand.
pub(super) struct Texts<'a> {
    pub(super) documents: &'a [(String, String)],
    pub(super) sizes: &'a [usize],
    pub(super) whole_text: &'a WholeText<'a>,
}

impl Texts<'_> {
    /// Document `i`'s whole text: the kept text when it is whole, else read again.
    pub(super) fn text(&self, i: usize) -> Cow<'_, str> {
        let kept = &self.documents[i].1;
        if kept.len() == self.sizes[i] {
            return Cow::Borrowed(kept);
        }
        (self.whole_text)(i).map_or(Cow::Borrowed(kept), Cow::Owned)
    }
}

/// The files to parse: code with a grammar, best first-stage score first, within the budget.
fn parse_candidates(texts: &Texts, classes: &[FileClass], ranked: &[RankedFile]) -> Vec<usize> {
    let Texts {
        documents, sizes, ..
    } = texts;
    let mut order: Vec<usize> = (0..documents.len())
        .filter(|&i| matches!(classes[i], FileClass::Source | FileClass::Test))
        .filter(|&i| has_grammar(&documents[i].0))
        .collect();
    order.sort_by(|&a, &b| {
        ranked[b]
            .score
            .total_cmp(&ranked[a].score)
            .then_with(|| sizes[a].cmp(&sizes[b]))
    });
    let mut used = 0;
    order.retain(|&i| {
        let size = sizes[i];
        let keep = used + size <= PARSE_BUDGET_BYTES;
        if keep {
            used += size;
        }
        keep
    });
    order
}

/// Parse `indices` of the documents with tree-sitter, in two threads.
pub(super) fn parse_files(texts: &Texts, indices: &[usize]) -> HashMap<usize, FileTags> {
    let documents = texts.documents;
    prepare(indices.iter().map(|&i| documents[i].0.as_str()));
    super::map_in_two_threads(indices, Tagger::default, |tagger, &i| {
        (i, tagger.tags(&documents[i].0, &texts.text(i)))
    })
    .into_iter()
    .collect()
}

/// The symbol graph's two signals, added to `ranked` (one entry per document, same order):
/// files defining an identifier of the task, and personalised PageRank flowing from the
/// first-stage ranking to the files whose definitions the best files use. Returns the parsed
/// files' tags.
pub(super) fn apply_symbol_graph(
    texts: &Texts,
    classes: &[FileClass],
    query_terms: &[QueryTerm],
    ranked: &mut [RankedFile],
) -> HashMap<usize, FileTags> {
    let documents = texts.documents;
    let candidates = parse_candidates(texts, classes, ranked);
    let parsed = parse_files(texts, &candidates);
    let mut defined: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut defined_lower: HashMap<String, Vec<usize>> = HashMap::new();
    for (&index, tags) in &parsed {
        if classes[index] != FileClass::Source {
            continue;
        }
        for definition in &tags.definitions {
            let entry = defined.entry(definition.name.as_str()).or_default();
            if !entry.contains(&index) {
                entry.push(index);
            }
            // A private name (`_pipepager`) is what a task calls it without its underscore too
            // (the task's terms are split on `_`); a dunder (`__init__`) is no one's own name.
            let mut record = |name: String| {
                let entry = defined_lower.entry(name).or_default();
                if !entry.contains(&index) {
                    entry.push(index);
                }
            };
            let lower = definition.name.to_ascii_lowercase();
            let public = lower.trim_start_matches('_');
            if public.len() < lower.len() && !lower.ends_with("__") {
                record(public.to_string());
            }
            record(lower);
        }
    }
    // Files defining what the task names.
    for term in query_terms.iter().filter(|term| term.term.len() >= 4) {
        let Some(definers) = defined_lower.get(&term.term) else {
            continue;
        };
        if definers.len() > 5 {
            continue;
        }
        let bonus = DEFINES_WEIGHT * term.weight / definers.len() as f64;
        for &index in definers {
            let file = &mut ranked[index];
            file.score += bonus;
            file.signals.push(Signal::new(
                "defines",
                bonus,
                format!("defines `{}`, named in the task", term.term),
            ));
        }
    }
    // Seeds: the best files so far.
    let mut order: Vec<usize> = (0..ranked.len())
        .filter(|&i| ranked[i].score > 0.0)
        .collect();
    order.sort_by(|&a, &b| ranked[b].score.total_cmp(&ranked[a].score));
    order.truncate(GRAPH_SEEDS);
    let mut seeds = vec![0.0; ranked.len()];
    for &index in &order {
        seeds[index] = ranked[index].score;
    }
    // Only code refers: a changelog naming a function is not a call.
    let referrers: Vec<(usize, &[(String, usize)])> = order
        .iter()
        .filter(|&&index| matches!(classes[index], FileClass::Source | FileClass::Test))
        .filter_map(|&index| {
            parsed
                .get(&index)
                .map(|tags| (index, tags.references.as_slice()))
        })
        .collect();
    let edges = reference_edges(&referrers, &defined);
    if edges.is_empty() {
        return parsed;
    }
    let rank = personalised_pagerank(ranked.len(), &edges, &seeds);
    // What a file receives through links: not its restart share, nor the share of the rank of
    // files without links that PageRank hands back to every seed (a seed that uses nothing, a
    // changelog, would otherwise gain in proportion to its own score).
    let mut out_weight = vec![0.0; ranked.len()];
    for &(from, _, weight) in &edges {
        out_weight[from] += weight;
    }
    let mut flow = vec![0.0; ranked.len()];
    for &(from, to, weight) in &edges {
        flow[to] += rank[from] * weight / out_weight[from];
    }
    let most = flow.iter().copied().fold(0.0, f64::max);
    if most <= 0.0 {
        return parsed;
    }
    let best = order.first().map_or(0.0, |&index| ranked[index].score);
    let strength = (best / GRAPH_FULL_AT).min(1.0);
    for (index, value) in flow.iter().enumerate() {
        let bonus = GRAPH_WEIGHT * strength * value / most;
        if bonus < 0.05 {
            continue;
        }
        let file = &mut ranked[index];
        file.score += bonus;
        let users: Vec<&str> = edges
            .iter()
            .filter(|(_, to, _)| *to == index)
            .map(|(from, _, _)| documents[*from].0.as_str())
            .take(3)
            .collect();
        file.signals.push(Signal::new(
            "graph",
            bonus,
            format!("its definitions are used by {}", users.join(", ")),
        ));
    }
    parsed
}

/// A file's definitions for the repo map: those matching the task's terms first, then in order.
pub(super) fn top_symbols(
    found: &[Definition],
    term_index: &HashMap<&str, usize>,
) -> Vec<Definition> {
    let mut scored: Vec<(usize, &Definition)> = found
        .iter()
        .map(|definition| {
            let mut hits = 0;
            for_each_term(&definition.name, |term| {
                if term_index.contains_key(term) {
                    hits += 1;
                }
            });
            (hits, definition)
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.line.cmp(&b.1.line)));
    scored
        .into_iter()
        .take(16)
        .map(|(_, definition)| definition.clone())
        .collect()
}
