//! Reading the task: a report is split into prose, code blocks, error messages, traceback frames
//! and pasted log noise, and each part's terms get a weight. Identifiers (snake_case, camelCase,
//! `backticked`, called with `(`) and error text weigh more than prose words, which weigh more than
//! log noise; a long paste contributes at most a fixed total weight, so a 5,000-line log cannot
//! drown the two sentences that say what is wrong.

use super::scope::subject_scope;
use super::terms::{for_each_term, is_stopword};

/// One part of the task text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    Prose,
    Code,
    Error,
    Trace,
    Log,
}

/// A weighted query term, with the part of the task it came from (the heaviest).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueryTerm {
    pub term: String,
    pub weight: f64,
    pub from: SegmentKind,
}

/// The total term weight one segment may contribute before its terms are scaled down.
const SEGMENT_WEIGHT_CAP: f64 = 24.0;
/// Largest weight of one term.
const TERM_WEIGHT_CAP: f64 = 4.0;

fn base_weight(kind: SegmentKind) -> f64 {
    match kind {
        SegmentKind::Prose => 1.0,
        SegmentKind::Code => 1.0,
        SegmentKind::Error => 2.0,
        SegmentKind::Trace => 0.6,
        SegmentKind::Log => 0.25,
    }
}

/// Split `text` into segments: fenced blocks become code (or a trace / log when they look like
/// one); outside fences, runs of lines are classified one by one.
pub fn segments(text: &str) -> Vec<(SegmentKind, String)> {
    let mut out: Vec<(SegmentKind, String)> = Vec::new();
    let mut push = |kind: SegmentKind, line: &str| match out.last_mut() {
        Some((last, body)) if *last == kind => {
            body.push('\n');
            body.push_str(line);
        }
        _ => out.push((kind, line.to_string())),
    };
    let mut in_fence = false;
    let mut fence: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            if in_fence {
                let kind = fenced_kind(&fence);
                for fenced in &fence {
                    let kind = match line_kind(fenced) {
                        SegmentKind::Error | SegmentKind::Trace => line_kind(fenced),
                        _ => kind,
                    };
                    push(kind, fenced);
                }
                fence.clear();
            }
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            fence.push(line);
        } else {
            push(line_kind(line), line);
        }
    }
    // An unclosed fence: treat the rest as a block anyway.
    let kind = fenced_kind(&fence);
    for fenced in &fence {
        push(kind, fenced);
    }
    out
}

fn fenced_kind(lines: &[&str]) -> SegmentKind {
    let noisy = lines
        .iter()
        .filter(|line| line_kind(line) == SegmentKind::Log)
        .count();
    // A terminal session (`$ command` and what it printed) shows how to reproduce, not the code.
    let session = lines.iter().any(|line| line.trim_start().starts_with("$ "));
    if session || lines.len() >= 4 && noisy * 2 >= lines.len() {
        SegmentKind::Log
    } else {
        SegmentKind::Code
    }
}

/// The kind of one unfenced line.
fn line_kind(line: &str) -> SegmentKind {
    let trimmed = line.trim();
    if trimmed.starts_with("File \"")
        || trimmed.starts_with("at ") && (trimmed.contains(':') || trimmed.contains('('))
        || trimmed.starts_with("Traceback (most recent call last)")
        || trimmed.starts_with("goroutine ")
        || trimmed.starts_with("stack backtrace:")
        || (trimmed.len() > 3
            && trimmed.as_bytes()[0].is_ascii_digit()
            && trimmed.contains(": ")
            && trimmed.contains("::"))
        || (trimmed.starts_with('/') && trimmed.contains(".go:"))
    {
        return SegmentKind::Trace;
    }
    if is_error_message(trimmed) {
        return SegmentKind::Error;
    }
    if is_log_line(trimmed) {
        return SegmentKind::Log;
    }
    SegmentKind::Prose
}

/// `ValueError: ...`, `error[E0308]: ...`, `thread 'main' panicked at ...`, `panic: ...`,
/// `Exception in thread ...`, `TypeError: x is not a function`.
pub(super) fn is_error_message(line: &str) -> bool {
    let head = line.split(':').next().unwrap_or("");
    let head_word = head.rsplit('.').next().unwrap_or(head);
    (line.contains(':')
        && !head_word.is_empty()
        && !head_word.contains(' ')
        && (head_word.ends_with("Error")
            || head_word.ends_with("Exception")
            || head_word.ends_with("Warning")
            || head_word == "panic"
            || head_word == "fatal error"
            || head_word.starts_with("error[")
            || head_word == "error"))
        || line.contains("panicked at")
        || line.starts_with("Exception in thread")
        || line.starts_with("Caused by:")
}

/// Timestamps, log levels, hex dumps, long runs of numbers: pasted output rather than words.
fn is_log_line(line: &str) -> bool {
    if line.is_empty() {
        return false;
    }
    let bytes = line.as_bytes();
    let starts_with_date = bytes.len() >= 10
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && matches!(bytes[4], b'-' | b'/');
    let starts_with_time = bytes.len() >= 8
        && bytes[..2].iter().all(u8::is_ascii_digit)
        && bytes[2] == b':'
        && bytes[3..5].iter().all(u8::is_ascii_digit);
    let level = [
        "[INFO", "[DEBUG", "[WARN", "[TRACE", "INFO ", "DEBUG ", "TRACE ", "WARN ",
    ]
    .iter()
    .any(|level| line.starts_with(level) || line.contains(&format!(" {level}")));
    let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
    let letters = bytes.iter().filter(|b| b.is_ascii_alphabetic()).count();
    starts_with_date
        || starts_with_time
        || level
        || (line.len() > 20 && digits > letters)
        || line.starts_with("    at ") && line.contains("node:internal")
}

/// The words a trace prints around its frames.
const TRACE_WORDS: &[&str] = &[
    "file",
    "line",
    "traceback",
    "most",
    "recent",
    "call",
    "last",
    "at",
    "in",
    "stack",
    "backtrace",
    "goroutine",
    "running",
    "module",
    "thread",
];

fn looks_like_file_name(word: &str) -> bool {
    let word = word.trim_end_matches(|c: char| c.is_ascii_digit() || c == ':' || c == ')');
    word.rsplit_once('.').is_some_and(|(stem, extension)| {
        !stem.is_empty()
            && matches!(
                extension,
                "py" | "rs"
                    | "go"
                    | "js"
                    | "ts"
                    | "java"
                    | "kt"
                    | "c"
                    | "cc"
                    | "cpp"
                    | "h"
                    | "rb"
                    | "mjs"
                    | "cjs"
                    | "tsx"
                    | "jsx"
                    | "scala"
            )
    })
}

/// True when `word` looks like code: snake_case, camelCase, dotted, or a call.
fn is_identifier_like(word: &str) -> bool {
    let bytes = word.as_bytes();
    word.contains('_')
        || word.contains('.') && word.split('.').all(|part| !part.is_empty())
        || bytes
            .windows(2)
            .any(|pair| pair[0].is_ascii_lowercase() && pair[1].is_ascii_uppercase())
        || bytes.len() > 1
            && bytes[0].is_ascii_uppercase()
            && bytes[1..].iter().any(u8::is_ascii_uppercase)
            && bytes[1..].iter().any(u8::is_ascii_lowercase)
}

/// Weighted query terms of `task` (and of the failure output, read as error text and traces).
pub fn query_terms(task: &str, failure_output: Option<&str>) -> Vec<QueryTerm> {
    let mut terms: Vec<QueryTerm> = Vec::new();
    let mut parts = segments(task);
    if let Some(output) = failure_output {
        for (kind, text) in segments(output) {
            // Failure output is pasted by the tool, not by a person: only its errors and traces
            // count, the rest is log.
            let kind = match kind {
                SegmentKind::Error | SegmentKind::Trace => kind,
                _ => SegmentKind::Log,
            };
            parts.push((kind, text));
        }
    }
    // A conventional subject prefix (`searcher: fix ...`, `fix(bash): ...`) names the component.
    if let Some(scope) = subject_scope(task) {
        parts.push((SegmentKind::Code, scope.replace(['/', '-'], " ")));
    }
    // All pasted output shares one cap: twenty pasted sessions are no more telling than one.
    let (logs, mut parts): (Vec<_>, Vec<_>) = parts
        .into_iter()
        .partition(|(kind, _)| *kind == SegmentKind::Log);
    if !logs.is_empty() {
        let log: Vec<String> = logs.into_iter().map(|(_, text)| text).collect();
        parts.push((SegmentKind::Log, log.join("\n")));
    }
    for (kind, text) in &parts {
        let mut local: Vec<(String, f64, usize)> = Vec::new();
        let mut add = |term: &str, weight: f64| {
            if is_stopword(term) || term.len() < 2 || term.bytes().all(|b| b.is_ascii_digit()) {
                return;
            }
            match local.iter_mut().find(|(seen, _, _)| seen == term) {
                Some((_, best, count)) => {
                    *best = best.max(weight);
                    *count += 1;
                }
                None => local.push((term.to_string(), weight, 1)),
            }
        };
        let base = base_weight(*kind);
        let words = text
            .split(|c: char| {
                c.is_whitespace()
                    || matches!(
                        c,
                        '"' | '\'' | ',' | ';' | '[' | ']' | '{' | '}' | '<' | '>' | '='
                    )
            })
            // Calls joined by a slash (`_pipepager()/_tempfilepager()`) are two names, not a path.
            .flat_map(|word| {
                let calls = word.contains('/') && word.contains("()");
                word.split(move |c: char| calls && c == '/')
            });
        for word in words {
            // Paths in traces and logs are read as locations (traces.rs), not as words: their
            // `src`, `lib` and `py` parts match every file.
            if matches!(kind, SegmentKind::Trace | SegmentKind::Log)
                && (word.contains('/') || word.contains('\\') || looks_like_file_name(word))
            {
                continue;
            }
            // Elsewhere a path counts by its file name: its directories match too many files.
            let word = match word.rsplit_once(['/', '\\']) {
                Some((_, name)) if !name.is_empty() => name,
                _ => word,
            };
            // A file name counts by its stem: `py` or `rs` would match every file.
            let word = if looks_like_file_name(word) {
                word.rsplit_once('.').map_or(word, |(stem, _)| stem)
            } else {
                word
            };
            if *kind == SegmentKind::Trace
                && TRACE_WORDS.contains(&word.to_ascii_lowercase().as_str())
            {
                continue;
            }
            // Backticks, a call's `(` or a long option's `--` mark a name from the code.
            let code_quoted = word.contains('`') || word.contains('(') || word.starts_with("--");
            let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
            let word = word.split('(').next().unwrap_or(word);
            if word.is_empty() {
                continue;
            }
            let identifier = code_quoted || is_identifier_like(word);
            let boost = if identifier && *kind != SegmentKind::Log {
                2.0
            } else {
                1.0
            };
            // A kebab-case name (`--after-context`, `max-line-length`) is snake_case in code.
            if word.contains('-')
                && word
                    .split('-')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
            {
                add(&word.replace('-', "_").to_ascii_lowercase(), base * boost);
            }
            let mut first = true;
            for_each_term(word, |term| {
                // The whole identifier counts fully; its parts a little less.
                let weight = if first {
                    base * boost
                } else {
                    base * boost.min(1.5) * 0.7
                };
                first = false;
                add(term, weight);
            });
        }
        // Repeats add a little, with diminishing returns: a word said three times matters more
        // than once, a word printed 300 times by a logger not 300 times more.
        let local: Vec<(String, f64)> = local
            .into_iter()
            .map(|(term, weight, count)| (term, weight * (1.0 + 0.5 * (count as f64).ln())))
            .collect();
        let total: f64 = local.iter().map(|(_, weight)| weight).sum();
        let scale = if total > SEGMENT_WEIGHT_CAP {
            SEGMENT_WEIGHT_CAP / total
        } else {
            1.0
        };
        // Prose is never scaled below half: it is what a person wrote about the problem.
        let scale = if *kind == SegmentKind::Prose {
            scale.max(0.5)
        } else {
            scale
        };
        for (term, weight) in local {
            let weight = weight * scale;
            match terms.iter_mut().find(|seen| seen.term == term) {
                Some(seen) => {
                    if weight > seen.weight {
                        seen.from = *kind;
                    }
                    seen.weight = (seen.weight.max(weight) + 0.25 * seen.weight.min(weight))
                        .min(TERM_WEIGHT_CAP);
                }
                None => terms.push(QueryTerm {
                    term,
                    weight: weight.min(TERM_WEIGHT_CAP),
                    from: *kind,
                }),
            }
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn weight(terms: &[QueryTerm], term: &str) -> f64 {
        terms
            .iter()
            .find(|seen| seen.term == term)
            .map_or(0.0, |seen| seen.weight)
    }

    #[test]
    fn reports_split_into_prose_code_errors_traces_and_logs() {
        let task = "Saving fails with `save_session`.\n\nTraceback (most recent call last):\n  File \"app.py\", line 3, in run\nKeyError: 'token'\n2024-01-02 10:00:01 INFO started worker 1234\n```python\nsave_session(s)\n```\n";
        let kinds: Vec<SegmentKind> = segments(task).into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(
            kinds,
            [
                SegmentKind::Prose,
                SegmentKind::Trace,
                SegmentKind::Error,
                SegmentKind::Log,
                SegmentKind::Code
            ]
        );
    }

    #[test]
    fn identifiers_and_errors_outweigh_prose_and_logs() {
        let mut log = String::new();
        for i in 0..300 {
            log.push_str(&format!(
                "2024-01-02 10:00:{i:02} DEBUG worker{i} heartbeat tick{i} ok\n"
            ));
        }
        let task =
            format!("The cache is wrong after reload_config runs.\nValueError: stale entry\n{log}");
        let terms = query_terms(&task, None);
        assert!(weight(&terms, "reload_config") > weight(&terms, "cache"));
        assert!(weight(&terms, "stale") > weight(&terms, "cache"));
        assert!(weight(&terms, "cache") > 5.0 * weight(&terms, "heartbeat"));
        // The whole log together weighs no more than the cap.
        let log_total: f64 = terms
            .iter()
            .filter(|term| term.from == SegmentKind::Log)
            .map(|term| term.weight)
            .sum();
        assert!(log_total <= SEGMENT_WEIGHT_CAP + 1e-9, "{log_total}");
    }

    #[test]
    fn shell_sessions_are_log_and_long_options_name_their_snake_case_field() {
        let mut task = String::from("searcher: slow with `-A/--after-context`\n\n");
        for run in 0..10 {
            task.push_str(&format!(
                "Run {run}:\n\n```\n$ cat bigger.txt | (time rg ZQZQ -A{run}99) | wc -l\n\nreal    2.3{run}\nuser    0.6\n```\n\n"
            ));
        }
        let kinds: Vec<SegmentKind> = segments(&task).into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(
            kinds[..4],
            [
                SegmentKind::Prose,
                SegmentKind::Log,
                SegmentKind::Prose,
                SegmentKind::Log
            ]
        );
        let terms = query_terms(&task, None);
        // `--after-context` is `after_context` in the code, weighed as a quoted name.
        assert!(weight(&terms, "after_context") >= 2.0, "{terms:?}");
        assert!(weight(&terms, "after_context") > weight(&terms, "after"));
        let bigger = terms.iter().find(|term| term.term == "bigger").unwrap();
        assert_eq!(bigger.from, SegmentKind::Log);
        assert!(bigger.weight < 0.6 * weight(&terms, "slow"), "{terms:?}");
        // Ten pasted sessions together weigh no more than the cap of one.
        let log_total: f64 = terms
            .iter()
            .filter(|term| term.from == SegmentKind::Log)
            .map(|term| term.weight)
            .sum();
        assert!(log_total <= SEGMENT_WEIGHT_CAP + 1e-9, "{log_total}");
        // Prose with a hyphen is still prose.
        let terms = query_terms("a well-known bug", None);
        assert!(weight(&terms, "well_known") <= 1.0);
    }

    #[test]
    fn calls_joined_by_a_slash_are_names_and_a_path_counts_by_its_file_name() {
        let terms = query_terms("Fix _pipepager()/_tempfilepager() with symlinks", None);
        assert!(weight(&terms, "pipepager") >= 2.0, "{terms:?}");
        assert!(weight(&terms, "tempfilepager") >= 2.0, "{terms:?}");
        let terms = query_terms("crash in src/click/termui.py", None);
        assert!(weight(&terms, "termui") > 0.0, "{terms:?}");
        assert_eq!(weight(&terms, "click"), 0.0, "{terms:?}");
    }
}
