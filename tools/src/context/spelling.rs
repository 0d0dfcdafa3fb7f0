//! Misspellings, for tasks about typos ("fix typo", "fix some typos (found by codespell)"): such a
//! task rarely says where the typo is, so its words match nothing; the files that hold a word the
//! `typos` project's dictionary knows as a misspelling are where it most likely is.
//!
//! A dictionary hit is only a candidate: code is full of names that look like misspellings
//! (`lits`, `certifi`, `O_WRONLY`). So words in capitals and words glued to digits are skipped, and
//! a candidate spelled the same way more than [`MAX_OCCURRENCES`] times in the repository is taken
//! as deliberate: a typo is an accident, made once or twice, not a name used throughout.
//!
//! A doubled word ("in the the flag map", also across a comment's line break) is the other
//! common slip no dictionary holds; only short function words count, since code repeats names.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Words that make a task about spelling (the task's terms, lowercased).
const SPELLING_WORDS: &[&str] = &[
    "typo",
    "typos",
    "spelling",
    "misspelling",
    "misspellings",
    "misspelled",
    "misspelt",
    "codespell",
    "spellcheck",
    "spellchecker",
];
/// Candidates kept per file (the rest cannot change its rank).
const MAX_PER_FILE: usize = 16;
/// A candidate spelled the same way more often than this in the repository is a name, not a typo.
pub(super) const MAX_OCCURRENCES: usize = 2;
/// Shortest and longest words looked up (short "misspellings" are mostly abbreviations).
const MIN_WORD: usize = 4;
const MAX_WORD: usize = 24;
/// Words that are a slip when doubled (`the the`): code repeats names, not these. None is
/// longer than four letters (the scanner relies on it).
const DOUBLED_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "for", "from", "has", "have", "if",
    "in", "is", "it", "of", "on", "or", "that", "the", "this", "to", "was", "will", "with",
];

/// Whether the task (its lowercased terms) asks to fix spelling.
pub(super) fn is_spelling_task(terms: &[String]) -> bool {
    terms
        .iter()
        .any(|term| SPELLING_WORDS.contains(&term.as_str()))
}

/// The task's terms that the dictionary knows as misspellings ("Fix a typo: verison -> version"):
/// when a task names its typo, only the files holding it are candidates.
pub(super) fn named_misspellings(terms: &[String]) -> Vec<String> {
    terms
        .iter()
        .filter(|term| (MIN_WORD..=MAX_WORD).contains(&term.len()))
        .filter(|term| {
            typos_dict::WORD
                .find(&unicase::UniCase::new(term.as_str()))
                .is_some()
        })
        .cloned()
        .collect()
}

/// Whether the task spells its correction out (`fix typo "used" -> "use"`): then the task's own
/// words find the place, and a dictionary candidate elsewhere is not what it is about.
pub(super) fn spells_out_correction(task: &str) -> bool {
    let word_char = |c: char| c.is_alphanumeric() || c == '_';
    task.lines().any(|line| {
        ["->", "\u{2192}", "=>"].iter().any(|arrow| {
            let pieces: Vec<&str> = line.split(arrow).collect();
            pieces.windows(2).any(|pair| {
                let before = pair[0].trim_end().trim_end_matches(['"', '\'', '`']);
                let after = pair[1].trim_start().trim_start_matches(['"', '\'', '`']);
                before.ends_with(word_char) && after.starts_with(word_char)
            })
        })
    })
}

/// A word of a file that the dictionary knows as a misspelling.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Misspelling {
    /// The word as written.
    pub word: String,
    /// The dictionary's first correction.
    pub correction: String,
    /// 1-based line.
    pub line: usize,
}

impl Misspelling {
    /// `words` for people: `possible misspellings: recieve -> receive (line 2), ...`.
    pub fn describe(words: &[Misspelling]) -> String {
        let listed: Vec<String> = words.iter().map(ToString::to_string).collect();
        format!("possible misspellings: {}", listed.join(", "))
    }
}

impl std::fmt::Display for Misspelling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {} (line {})",
            self.word, self.correction, self.line
        )
    }
}

/// A file's candidate misspellings: in order, at most [`MAX_PER_FILE`] distinct words (each at
/// its first line), and how many times each candidate occurs (lowercased), for the
/// repository-wide count.
#[derive(Debug, Default)]
pub(super) struct Candidates {
    found: Vec<Misspelling>,
    counts: Vec<(String, usize)>,
}

/// Finds candidate misspellings, remembering each distinct word's dictionary answer: a repository
/// of 10,000 files has millions of words but only some 15,000 distinct ones, and a hash of a short
/// word is several times cheaper than the dictionary's lookup. The answers are kept by the word's
/// 64-bit hash alone (two of 15,000 words sharing one is a one-in-10¹¹ event, and would only move
/// a hint). One per thread.
#[derive(Debug, Default)]
pub(super) struct Scanner {
    /// Hash of the lowercased word -> its first correction, if the dictionary knows it.
    known: HashMap<u64, Option<&'static str>, BuildHasherDefault<KeyIsHash>>,
}

impl Scanner {
    /// The candidate misspellings of `text`.
    pub(super) fn scan(&mut self, text: &str) -> Candidates {
        let mut found: Vec<Misspelling> = Vec::new();
        let mut counts: Vec<(String, usize)> = Vec::new();
        let bytes = text.as_bytes();
        // Lines are counted up to a candidate only when there is one (candidates are rare).
        let (mut line, mut counted_to) = (1, 0);
        let mut record =
            |word: String, correction: &str, at: usize, found: &mut Vec<Misspelling>| {
                let lower = word.to_ascii_lowercase();
                match counts.iter_mut().find(|(seen, _)| *seen == lower) {
                    Some((_, count)) => *count += 1,
                    None => {
                        if found.len() < MAX_PER_FILE {
                            line += bytes[counted_to..at]
                                .iter()
                                .filter(|&&byte| byte == b'\n')
                                .count();
                            counted_to = at;
                            found.push(Misspelling {
                                word,
                                correction: correction.to_string(),
                                line,
                            });
                        }
                        counts.push((lower, 1));
                    }
                }
            };
        // The word before, for doubled words.
        let mut previous: Option<(usize, usize)> = None;
        let mut i = 0;
        while i < bytes.len() {
            if !bytes[i].is_ascii_alphabetic() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            if let Some((before_start, before_end)) = previous.replace((start, i)) {
                let (before, word) = (&text[before_start..before_end], &text[start..i]);
                let part_of_name = |at: Option<&u8>| {
                    at.is_some_and(|&byte| byte == b'_' || byte == b'.' || byte.is_ascii_digit())
                };
                // Most pairs differ in length: the cheap test first (this runs on every word).
                if before.len() == word.len()
                    && word.len() <= 4
                    && !part_of_name(before_start.checked_sub(1).map(|at| &bytes[at]))
                    && !part_of_name(bytes.get(i))
                    && is_doubled(before, word, &bytes[before_end..start])
                {
                    let doubled = format!("{before} {word}");
                    record(doubled, word, start, &mut found);
                }
            }
            // Letters glued to digits are hashes, versions or encoded data, not words.
            let glued = (start > 0 && bytes[start - 1].is_ascii_digit())
                || (i < bytes.len() && bytes[i].is_ascii_digit());
            if glued || i - start < MIN_WORD {
                continue;
            }
            // A contraction is looked up whole (`coudln't` as `coudlnt`).
            let apostrophe = [&b"'"[..], "\u{2019}".as_bytes()]
                .into_iter()
                .find(|mark| bytes[i..].starts_with(mark))
                .map_or(0, <[u8]>::len);
            let after = i + apostrophe;
            if apostrophe > 0
                && bytes.get(after) == Some(&b't')
                && !bytes.get(after + 1).is_some_and(u8::is_ascii_alphanumeric)
            {
                let joined = format!("{}t", &text[start..i]);
                if let Some(correction) = self.correction(&joined) {
                    let written = text[start..=after].to_string();
                    record(written, correction, start, &mut found);
                    continue;
                }
            }
            for part in camel_parts(&text[start..i]) {
                if part.len() < MIN_WORD
                    || part.len() > MAX_WORD
                    || part.bytes().all(|b| b.is_ascii_uppercase())
                {
                    continue;
                }
                let Some(correction) = self.correction(part) else {
                    continue;
                };
                record(part.to_string(), correction, start, &mut found);
            }
        }
        Candidates { found, counts }
    }

    /// The dictionary's first correction of `word` (ASCII letters), if it is a misspelling.
    fn correction(&mut self, word: &str) -> Option<&'static str> {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        // Eight letters at a time, lowercased by setting bit 5 of each (ASCII letters only).
        let mut hash = word.len() as u64;
        for chunk in word.as_bytes().chunks(8) {
            let mut eight = [0u8; 8];
            eight[..chunk.len()].copy_from_slice(chunk);
            let lower = u64::from_le_bytes(eight) | 0x2020_2020_2020_2020;
            hash = (hash.rotate_left(5) ^ lower).wrapping_mul(SEED);
        }
        *self.known.entry(hash).or_insert_with(|| {
            typos_dict::WORD
                .find(&unicase::UniCase::new(word))
                .map(|corrections| corrections.first().copied().unwrap_or_default())
        })
    }
}

/// Whether `word` repeats `before` by mistake: a function word (`the the`, `The the`) with only
/// spaces between them, or a line break and the next line's comment marker (`the\n/// the`).
fn is_doubled(before: &str, word: &str, between: &[u8]) -> bool {
    let lowercase = word.bytes().all(|byte| byte.is_ascii_lowercase());
    if !lowercase || !before.eq_ignore_ascii_case(word) || !DOUBLED_WORDS.contains(&word) {
        return false;
    }
    match between.iter().position(|&byte| byte == b'\n') {
        None => !between.is_empty() && between.iter().all(|&byte| byte == b' '),
        Some(at) => {
            let (end, next) = (&between[..at], &between[at + 1..]);
            end.iter().all(|&byte| byte == b' ' || byte == b'\r')
                && next
                    .iter()
                    .all(|&byte| matches!(byte, b' ' | b'\t' | b'/' | b'#' | b'*'))
        }
    }
}

/// The keys of [`Scanner::known`] are hashes already: used as they are.
#[derive(Debug, Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The camelCase parts of a run of ASCII letters (`parseHTTPHeader` → `parse`, `HTTPHeader`).
fn camel_parts(word: &str) -> impl Iterator<Item = &str> {
    let bytes = word.as_bytes();
    let mut start = 0;
    let mut at = 1;
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        while at < bytes.len() {
            let boundary = bytes[at].is_ascii_uppercase() && bytes[at - 1].is_ascii_lowercase();
            at += 1;
            if boundary {
                let part = &word[start..at - 1];
                start = at - 1;
                return Some(part);
            }
        }
        let part = &word[start..];
        start = bytes.len();
        Some(part)
    })
}

/// Each file's likely typos (`per_file[i]`: file `i`'s candidates and their counts, as
/// [`Scanner::scan`] returns them): the misspellings the task names (`named`, lowercase) wherever
/// they are; none when the task spells out a correction the dictionary does not know
/// (`spelled_out`); otherwise doubled words, and the candidates rare enough in the repository to
/// be accidents. Files marked in `copied` (vendored or generated: another project's spelling)
/// do not count towards how often a spelling occurs.
pub(super) fn likely_typos(
    per_file: Vec<Candidates>,
    copied: &[bool],
    named: &[String],
    spelled_out: bool,
) -> Vec<Vec<Misspelling>> {
    if !named.is_empty() {
        return per_file
            .into_iter()
            .map(|Candidates { found, .. }| {
                found
                    .into_iter()
                    .filter(|found| named.contains(&found.word.to_ascii_lowercase()))
                    .collect()
            })
            .collect();
    }
    if spelled_out {
        return per_file.iter().map(|_| Vec::new()).collect();
    }
    let mut total: HashMap<String, usize> = HashMap::new();
    for (candidates, _) in per_file
        .iter()
        .zip(copied.iter().chain(std::iter::repeat(&false)))
        .filter(|(_, copied)| !**copied)
    {
        for (word, count) in &candidates.counts {
            *total.entry(word.clone()).or_default() += count;
        }
    }
    per_file
        .into_iter()
        .map(|Candidates { found, .. }| {
            found
                .into_iter()
                .filter(|found| {
                    // A doubled word (`the the`) is never a name.
                    found.word.contains(' ')
                        || total
                            .get(&found.word.to_ascii_lowercase())
                            .is_none_or(|&count| count <= MAX_OCCURRENCES)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typos_of(files: &[&str], named: &[String], spelled_out: bool) -> Vec<Vec<Misspelling>> {
        let candidates = files
            .iter()
            .map(|text| Scanner::default().scan(text))
            .collect();
        likely_typos(candidates, &[], named, spelled_out)
    }

    /// Each found word as (word, correction, line).
    fn triples(found: &[Misspelling]) -> Vec<(&str, &str, usize)> {
        found
            .iter()
            .map(|m| (m.word.as_str(), m.correction.as_str(), m.line))
            .collect()
    }

    #[test]
    fn spelling_tasks_are_told_by_their_words() {
        let terms = |text: &str| -> Vec<String> {
            text.split_whitespace().map(str::to_lowercase).collect()
        };
        assert!(is_spelling_task(&terms("doc: fix typo")));
        assert!(is_spelling_task(&terms(
            "Fix some typos found by codespell"
        )));
        assert!(!is_spelling_task(&terms("fix the crash in the parser")));
    }

    #[test]
    fn finds_misspelled_words_in_prose_and_identifier_parts_with_their_lines() {
        let text = "// Parse the header.\n// Returns an argumnet list.\nfn read_fileters(seperateArgs: &str) {}\n";
        let Candidates { found, counts } = Scanner::default().scan(text);
        let words = triples(&found);
        assert_eq!(
            words,
            [
                ("argumnet", "argument", 2),
                ("fileters", "filters", 3),
                ("seperate", "separate", 3)
            ]
        );
        assert_eq!(counts.len(), 3);
    }

    #[test]
    fn a_misspelled_contraction_is_looked_up_whole() {
        let found = Scanner::default()
            .scan("/// The description coudln't be parsed; it doesn't matter.\n")
            .found;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].word, "coudln't");
        assert_eq!(found[0].line, 1);
    }

    #[test]
    fn capitals_hashes_and_short_words_are_not_candidates() {
        // `WRONLY` and `STATI` are constants, `teh` is too short to trust, `e3f4recieve9` is a hash.
        let found = Scanner::default()
            .scan("flags = O_WRONLY | STATI; teh = e3f4recieve9\n")
            .found;
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_spelling_used_throughout_the_repository_is_a_name_not_a_typo() {
        let files = [
            "let lits = literals(); use(lits); drop(lits);",
            "fn strip(lits: &[u8]) {}",
            "// the underyling reader",
        ];
        let typos = typos_of(&files, &[], false);
        assert!(typos[0].is_empty() && typos[1].is_empty(), "{typos:?}");
        assert_eq!(typos[2].len(), 1);
        assert_eq!(typos[2][0].correction, "underlying");
    }

    #[test]
    fn doubled_function_words_are_slips_wherever_they_are_and_names_are_not() {
        // The scanner looks only at pairs of up to four letters.
        assert!(DOUBLED_WORDS.iter().all(|word| word.len() <= 4));
        let text = "/// The info about a flag in the the flag map.\n/// It is a a copy of\n/// to\n/// to the result.\nlet x = is is_set(type Type);\nfn f(that: u8, that_: u8) {}\n";
        let found = Scanner::default().scan(text).found;
        let words = triples(&found);
        assert_eq!(
            words,
            [("the the", "the", 1), ("a a", "a", 2), ("to to", "to", 4)]
        );
        // Doubled words are kept however often they occur (never a name), and copied files
        // (vendored) do not make a spelling common.
        let files = [
            "// the the one; the the two; the the three",
            "// the underyling reader",
            "/* underyling */ /* underyling */",
        ];
        let candidates = files
            .iter()
            .map(|text| Scanner::default().scan(text))
            .collect();
        let typos = likely_typos(candidates, &[false, false, true], &[], false);
        assert_eq!(typos[0].len(), 1);
        assert_eq!(typos[1].len(), 1, "{typos:?}");
    }

    #[test]
    fn a_typo_the_task_names_is_the_only_candidate() {
        let terms: Vec<String> = ["fix", "typo", "verison", "version"]
            .iter()
            .map(|term| term.to_string())
            .collect();
        let named = named_misspellings(&terms);
        assert_eq!(named, ["verison"]);
        let files = [
            "print(verison); print(verison); print(verison)",
            "// the underyling reader",
        ];
        let typos = typos_of(&files, &named, true);
        // Named: kept however often it occurs; the other candidate is not what the task is about.
        assert_eq!(typos[0].len(), 1);
        assert!(typos[1].is_empty());
    }

    #[test]
    fn a_correction_spelled_out_is_told_from_prose() {
        assert!(spells_out_correction("doc: fix typo \"used\" -> \"use\""));
        assert!(spells_out_correction(
            "Fix typos\n\nnonexistant -> nonexistent"
        ));
        assert!(spells_out_correction("fix: `recieve` → `receive`"));
        assert!(!spells_out_correction("doc: fix typo\n\nPR #2313"));
        assert!(!spells_out_correction("fn parse() -> Result<()>: fix typo"));
        let typos = likely_typos(
            vec![Scanner::default().scan("// the underyling reader")],
            &[],
            &[],
            true,
        );
        assert!(typos[0].is_empty());
    }
}
