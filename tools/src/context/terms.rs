//! Terms: identifiers and their camelCase / snake_case parts, lowercased; a fast counter of query
//! terms in file text; the stopword list.

use std::collections::HashMap;

/// Counts query terms in a text fast: a word is lowercased and looked up only when its length and
/// first letter could belong to a query term, which skips most words of most files.
pub(super) struct TermMatcher<'a> {
    index: &'a HashMap<&'a str, usize>,
    first_letters: [bool; 256],
    lengths: u128,
    pub(super) len: usize,
}

impl<'a> TermMatcher<'a> {
    pub(super) fn new(index: &'a HashMap<&'a str, usize>) -> Self {
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
    pub(super) fn count(&self, text: &str, tf: &mut [u32]) -> usize {
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

const STOPWORDS: &[&str] = &[
    "the",
    "and",
    "for",
    "that",
    "this",
    "with",
    "from",
    "into",
    "when",
    "make",
    "should",
    "not",
    "are",
    "was",
    "fix",
    "its",
    "but",
    "can",
    "all",
    "has",
    "have",
    "of",
    "to",
    "in",
    "is",
    "it",
    "an",
    "on",
    "be",
    "or",
    "if",
    "so",
    "as",
    "at",
    "by",
    "we",
    "you",
    "my",
    "me",
    "no",
    "do",
    "does",
    "did",
    "done",
    "would",
    "could",
    "will",
    "there",
    "then",
    "than",
    "them",
    "they",
    "these",
    "those",
    "what",
    "which",
    "who",
    "why",
    "how",
    "where",
    "while",
    "also",
    "just",
    "only",
    "some",
    "any",
    "more",
    "most",
    "other",
    "such",
    "very",
    "been",
    "being",
    "were",
    "here",
    "about",
    "after",
    "before",
    "again",
    "because",
    "like",
    "see",
    "seems",
    "now",
    "want",
    "need",
    "needs",
    "still",
    "both",
    "even",
    "our",
    "your",
    "their",
    "his",
    "her",
    "him",
    "she",
    "he",
    "fixed",
    "fixes",
    "issue",
    "issues",
    "bug",
    "bugs",
    "expected",
    "actual",
    "behavior",
    "behaviour",
    "describe",
    "reproduce",
    "please",
    "thanks",
    "thank",
    "hi",
    "hello",
    "problem",
    "happens",
    "happen",
    "instead",
    "following",
    "below",
    "above",
    "doesn",
    "don",
    "isn",
    "wasn",
    "won",
    "can't",
    "cannot",
    "etc",
    "eg",
    "ie",
    "pr",
    "resolves",
    "correctly",
    "properly",
];

/// Words too common to rank by (English and bug-report boilerplate).
pub(super) fn is_stopword(term: &str) -> bool {
    STOPWORDS.contains(&term)
}

/// Call `visit` with each lowercase term of `text`: every identifier, and when it has several
/// parts (snake_case, camelCase, kebab-case), each part too.
pub(super) fn for_each_term(text: &str, mut visit: impl FnMut(&str)) {
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
