//! Terms: identifiers and their camelCase / snake_case parts, lowercased; a fast counter of query
//! terms in file text; the stopword list.

/// The filter slot of a word: its first two bytes with case folded (`& 31` maps `a` and `A`
/// alike; digits share slots with letters, which only lets a few more words through).
fn filter_slot(word: &[u8]) -> usize {
    usize::from(word[0] & 31) << 5 | usize::from(word[1] & 31)
}

/// FxHash's step over the lowercased bytes (the terms are few and short: no need for SipHash's
/// resistance to chosen keys).
fn folded_hash(word: &[u8]) -> u64 {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut hash = word.len() as u64;
    for &byte in word {
        hash = (hash.rotate_left(5) ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(SEED);
    }
    hash
}

/// Counts query terms in a text fast, in one pass: a word (or identifier part) is looked up only
/// when its first two letters and length could belong to a query term, which skips most words of
/// most files; the lookup hashes the word lowercased in place, without copying it.
pub(super) struct TermMatcher<'a> {
    /// For each filter slot, the lengths (bit `len - 1`) of the terms starting there.
    lengths: Box<[u64; 1024]>,
    /// Open addressing on `folded_hash`: (term, its index), a power of two long.
    table: Vec<Option<(&'a str, usize)>>,
    pub(super) len: usize,
}

impl<'a> TermMatcher<'a> {
    /// A matcher for `terms` (lowercase, distinct); counts go to each term's position.
    pub(super) fn new(terms: &[&'a str]) -> Self {
        let mut lengths = Box::new([0u64; 1024]);
        let mut table = vec![None; (terms.len() * 4).next_power_of_two().max(16)];
        let mask = table.len() - 1;
        for (i, &term) in terms.iter().enumerate() {
            let bytes = term.as_bytes();
            // Words are 2 to 64 bytes of ASCII letters, digits and `_`: nothing else can match.
            if bytes.len() < 2
                || bytes.len() > 64
                || !bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'_')
            {
                continue;
            }
            lengths[filter_slot(bytes)] |= 1 << (bytes.len() - 1);
            let mut slot = folded_hash(bytes) as usize & mask;
            while table[slot].is_some() {
                slot = (slot + 1) & mask;
            }
            table[slot] = Some((term, i));
        }
        Self {
            lengths,
            table,
            len: terms.len(),
        }
    }

    /// Count `word` (2 to 64 bytes) when it is a query term. The filter is inlined in the scan;
    /// the probe, for the few words that pass, is not.
    #[inline(always)]
    fn lookup(&self, word: &[u8], tf: &mut [u32]) {
        if self.lengths[filter_slot(word)] & (1 << (word.len() - 1)) != 0 {
            self.probe(word, tf);
        }
    }

    #[inline(never)]
    fn probe(&self, word: &[u8], tf: &mut [u32]) {
        let mask = self.table.len() - 1;
        let mut slot = folded_hash(word) as usize & mask;
        while let Some((term, i)) = self.table[slot] {
            // A term matches its word lowercased (a term with capitals matches nothing).
            if term.len() == word.len()
                && term
                    .bytes()
                    .zip(word)
                    .all(|(expected, &byte)| byte.to_ascii_lowercase() == expected)
            {
                tf[i] += 1;
                return;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Add the counts of `text`'s query terms to `tf`; returns the number of words in `text`.
    /// A word is a run of letters, digits and `_` starting with a letter or digit, trailing `_`
    /// dropped, 2 to 64 bytes long; an identifier's parts (split on `_` and lower→upper changes)
    /// count too, when there are several.
    pub(super) fn count(&self, text: &str, tf: &mut [u32]) -> usize {
        let bytes = text.as_bytes();
        let masks = ByteMasks::of(bytes);
        let mut words = 0;
        let mut from = 0;
        // Branches per word, not per byte: the masks say where words start and end.
        while let Some(start) = next_set(&masks.alphanumeric, from) {
            let run_end = next_set_inverted(&masks.word, start).min(bytes.len());
            from = run_end;
            let mut end = run_end;
            while bytes[end - 1] == b'_' {
                end -= 1;
            }
            let word = &bytes[start..end];
            if word.len() < 2 || word.len() > 64 {
                continue;
            }
            words += 1;
            self.lookup(word, tf);
            if any_set(&masks.mixed, start, end) {
                self.count_parts(bytes, &masks.mixed, start, end, tf);
            }
        }
        words
    }

    /// Count the parts of the identifier `bytes[start..end]` split on `_` and lower→upper changes
    /// (leading `_` of a part dropped), those of 2 bytes or more and shorter than the word. The
    /// boundaries are the word's bits in `mixed`, found a block at a time, not byte by byte.
    fn count_parts(&self, bytes: &[u8], mixed: &[u64], start: usize, end: usize, tf: &mut [u32]) {
        let length = end - start;
        let mut part_start = start;
        let mut from = start + 1;
        loop {
            let boundary = next_set_before(mixed, from, end).unwrap_or(end);
            let mut part = &bytes[part_start..boundary];
            while let [b'_', rest @ ..] = part {
                part = rest;
            }
            if part.len() >= 2 && part.len() < length {
                self.lookup(part, tf);
            }
            if boundary == end {
                return;
            }
            part_start = boundary;
            from = boundary + 1;
        }
    }
}

/// One bit per byte of a text (bit `k` of element `j` is byte `64 j + k`): letters and digits,
/// word bytes (those and `_`), and where an identifier has parts (`_`, or a capital after a small
/// letter). Built eight bytes at a time with SWAR arithmetic.
struct ByteMasks {
    alphanumeric: Vec<u64>,
    word: Vec<u64>,
    mixed: Vec<u64>,
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `low` (bytes below 0x80) set when the byte is in `lo..=hi`.
fn bytes_in_range(low: u64, lo: u8, hi: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Per byte, `0x80 | x` minus `lo` keeps its high bit iff x >= lo, and `0x80 | hi` minus x
    // keeps it iff x <= hi; neither borrows from the next byte.
    ((low | HIGH_BITS) - ONES * u64::from(lo))
        & (((ONES * u64::from(hi)) | HIGH_BITS) - low)
        & HIGH_BITS
}

/// The high bits of the eight bytes of `flags` as the low eight bits (byte `i` to bit `i`).
fn pack_high_bits(flags: u64) -> u64 {
    (((flags & HIGH_BITS) >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

impl ByteMasks {
    fn of(bytes: &[u8]) -> Self {
        let blocks = bytes.len().div_ceil(64);
        let mut masks = Self {
            alphanumeric: Vec::with_capacity(blocks),
            word: Vec::with_capacity(blocks),
            mixed: Vec::with_capacity(blocks),
        };
        let mut previous_lower = 0;
        // The last block is padded with zeros (not word bytes); the others are read in place, in
        // fixed eight-byte loads (a copy of a chunk of unknown length was a call to memcpy per
        // eight bytes).
        let mut padded = [0u8; 64];
        for block in bytes.chunks(64) {
            let block = if block.len() == 64 {
                block
            } else {
                padded[..block.len()].copy_from_slice(block);
                &padded[..]
            };
            let (mut alphanumeric, mut word, mut underscore, mut upper, mut lower) =
                (0u64, 0u64, 0u64, 0u64, 0u64);
            for (i, chunk) in block.chunks_exact(8).enumerate() {
                let Ok(eight) = <[u8; 8]>::try_from(chunk) else {
                    continue;
                };
                let x = u64::from_le_bytes(eight);
                // Bytes from 0x80 up (UTF-8 beyond ASCII) are never word bytes.
                let ascii = !x & HIGH_BITS;
                let low = x & !HIGH_BITS;
                let small = bytes_in_range(low, b'a', b'z') & ascii;
                let capital = bytes_in_range(low, b'A', b'Z') & ascii;
                let digit = bytes_in_range(low, b'0', b'9') & ascii;
                let score = bytes_in_range(low, b'_', b'_') & ascii;
                let shift = 8 * i;
                alphanumeric |= pack_high_bits(small | capital | digit) << shift;
                word |= pack_high_bits(small | capital | digit | score) << shift;
                underscore |= pack_high_bits(score) << shift;
                upper |= pack_high_bits(capital) << shift;
                lower |= pack_high_bits(small) << shift;
            }
            masks.alphanumeric.push(alphanumeric);
            masks.word.push(word);
            masks
                .mixed
                .push(underscore | (upper & (lower << 1 | previous_lower)));
            previous_lower = lower >> 63;
        }
        masks
    }
}

/// The first position at or after `from` whose bit is set in `masks`.
fn next_set(masks: &[u64], from: usize) -> Option<usize> {
    let mut block = from / 64;
    let mut bits = masks.get(block)? & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            return Some(block * 64 + bits.trailing_zeros() as usize);
        }
        block += 1;
        bits = *masks.get(block)?;
    }
}

/// The first position in `from..end` whose bit is set in `masks`.
fn next_set_before(masks: &[u64], from: usize, end: usize) -> Option<usize> {
    if from >= end {
        return None;
    }
    let last = (end - 1) / 64;
    let mut block = from / 64;
    let mut bits = masks.get(block)? & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            let position = block * 64 + bits.trailing_zeros() as usize;
            return (position < end).then_some(position);
        }
        block += 1;
        if block > last {
            return None;
        }
        bits = *masks.get(block)?;
    }
}

/// The first position at or after `from` whose bit is clear in `masks` (past the end: the end of
/// the last block).
fn next_set_inverted(masks: &[u64], from: usize) -> usize {
    let mut block = from / 64;
    let Some(first) = masks.get(block) else {
        return from;
    };
    let mut bits = !first & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            return block * 64 + bits.trailing_zeros() as usize;
        }
        block += 1;
        match masks.get(block) {
            Some(mask) => bits = !mask,
            None => return block * 64,
        }
    }
}

/// Whether any bit of `start..end` is set in `masks`.
fn any_set(masks: &[u64], start: usize, end: usize) -> bool {
    let (first, last) = (start / 64, (end - 1) / 64);
    if first == last {
        // Most words lie in one block.
        let bits = masks.get(first).copied().unwrap_or(0);
        return bits & (u64::MAX << (start % 64)) & (u64::MAX >> (63 - (end - 1) % 64)) != 0;
    }
    (start / 64..end.div_ceil(64)).any(|block| {
        let mut bits = masks.get(block).copied().unwrap_or(0);
        if block == start / 64 {
            bits &= u64::MAX << (start % 64);
        }
        if block == (end - 1) / 64 {
            bits &= u64::MAX >> (63 - (end - 1) % 64);
        }
        bits != 0
    })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// The counter's definition written plainly: words, their parts, a map lookup each.
    fn count_plainly(terms: &HashMap<&str, usize>, text: &str) -> (Vec<u32>, usize) {
        let mut tf = vec![0u32; terms.len()];
        let mut words = 0;
        let visit = |word: &str, tf: &mut Vec<u32>| {
            if let Some(&i) = terms.get(word.to_ascii_lowercase().as_str()) {
                tf[i] += 1;
            }
        };
        let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut rest = text;
        while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric()) {
            let run_end = rest[start..]
                .find(|c: char| !is_word(c))
                .map_or(rest.len(), |end| start + end);
            let word = rest[start..run_end].trim_end_matches('_');
            rest = &rest[run_end..];
            if word.len() < 2 || word.len() > 64 {
                continue;
            }
            words += 1;
            visit(word, &mut tf);
            let bytes = word.as_bytes();
            let mut part_start = 0;
            for j in 1..=bytes.len() {
                if j == bytes.len()
                    || bytes[j] == b'_'
                    || (bytes[j].is_ascii_uppercase() && bytes[j - 1].is_ascii_lowercase())
                {
                    let part = word[part_start..j].trim_matches('_');
                    if part.len() >= 2 && part.len() < word.len() {
                        visit(part, &mut tf);
                    }
                    part_start = j;
                }
            }
        }
        (tf, words)
    }

    fn index<'a>(terms: &[&'a str]) -> HashMap<&'a str, usize> {
        terms
            .iter()
            .enumerate()
            .map(|(i, term)| (*term, i))
            .collect()
    }

    fn matcher<'a>(terms: &[&'a str]) -> TermMatcher<'a> {
        TermMatcher::new(terms)
    }

    #[test]
    fn counts_words_parts_and_case_folded_terms() {
        let list = ["parse", "header", "parse_header", "http", "x9", "__init__"];
        let (terms, matcher) = (index(&list), matcher(&list));
        let mut tf = vec![0; matcher.len];
        let words = matcher.count(
            "fn parse_header(h: &str) { parseHeader(HTTP); Parse; _x9_ __init__ é parse_ }",
            &mut tf,
        );
        // parse_header: itself and two parts; parseHeader: two parts; Parse and `parse_`.
        assert_eq!(tf, [4, 2, 1, 1, 1, 0]);
        // fn parse_header str parseHeader HTTP Parse x9 init parse (the 1-byte `h` is no word).
        assert_eq!(words, 9);
        assert_eq!(
            (tf.clone(), words),
            count_plainly(
                &terms,
                "fn parse_header(h: &str) { parseHeader(HTTP); Parse; _x9_ __init__ é parse_ }"
            )
        );
    }

    proptest! {
        #[test]
        fn the_fast_counter_counts_as_the_plain_definition(
            // Short words and separators, and long runs across the counter's 64-byte blocks.
            text in "[aAbBzZ09_ .\\n(é]{0,200}|([aAbB_zZ09]{0,90}[ .é]){0,8}",
        ) {
            let list = ["ab", "ba", "a_b", "abz", "zz", "b0", "a9b", "aab", "ab_ab"];
            let (terms, matcher) = (index(&list), matcher(&list));
            let mut tf = vec![0; matcher.len];
            let words = matcher.count(&text, &mut tf);
            prop_assert_eq!((tf, words), count_plainly(&terms, &text));
        }
    }
}
