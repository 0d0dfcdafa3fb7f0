//! Locating a block's old lines in a file under the matching rules, and finding the closest lines
//! when nothing matches; the replacement lines are built by `replacement`.

use super::replacement::{build_replacement, check_edges, FileStyle, IndentMap};
use super::{ClosestMatch, FailureReason, MatchRule};

const RULES: [MatchRule; 4] = [
    MatchRule::Exact,
    MatchRule::TrailingWhitespace,
    MatchRule::Indentation,
    MatchRule::Unicode,
];

/// Lines `start..end` of the file are replaced by `lines`.
#[derive(Debug, Clone)]
pub(super) struct Splice {
    pub start: usize,
    pub end: usize,
    pub lines: Vec<String>,
}

/// Where and how a `Replace` block applies.
#[derive(Debug)]
pub(super) struct Located {
    /// In file order, non-overlapping (several when `...` elides text).
    pub splices: Vec<Splice>,
    /// The loosest rule any segment needed.
    pub rule: MatchRule,
}

/// The request: file lines (no line terminators) and the block's fields.
pub(super) struct Request<'a> {
    pub file: &'a [&'a str],
    pub search: &'a [&'a str],
    pub replace: &'a [&'a str],
    /// 0-based line where the old text is expected (already shifted by earlier edits).
    pub hint: Option<usize>,
    pub anchors: &'a [String],
    pub at_end: bool,
}

pub(super) fn locate(request: &Request<'_>) -> Result<Located, FailureReason> {
    let result = locate_exactly(request);
    if result.as_ref().err() != Some(&FailureReason::NotFound) {
        return result;
    }
    // Models often add or drop blank lines at the edges of a block: retry without them (the same
    // number of blank edge lines is dropped from the replacement, so nothing else changes).
    let lead = request
        .search
        .iter()
        .take_while(|line| line.trim().is_empty())
        .count();
    let trail = request.search[lead..]
        .iter()
        .rev()
        .take_while(|line| line.trim().is_empty())
        .count();
    let replace_lead = request
        .replace
        .iter()
        .take_while(|line| line.trim().is_empty())
        .count()
        .min(lead);
    let replace_trail = request.replace[replace_lead..]
        .iter()
        .rev()
        .take_while(|line| line.trim().is_empty())
        .count()
        .min(trail);
    if lead + trail == 0 || lead + trail == request.search.len() {
        return result;
    }
    let trimmed = Request {
        search: &request.search[lead..request.search.len() - trail],
        replace: &request.replace[replace_lead..request.replace.len() - replace_trail],
        ..*request
    };
    locate_exactly(&trimmed).map_err(|_| FailureReason::NotFound)
}

fn locate_exactly(request: &Request<'_>) -> Result<Located, FailureReason> {
    let mut from = 0;
    for anchor in request.anchors {
        let wanted = normalize(anchor, MatchRule::Unicode);
        let Some(found) = (from..request.file.len())
            .find(|&i| normalize(request.file[i], MatchRule::Unicode) == wanted)
        else {
            return Err(FailureReason::AnchorNotFound {
                anchor: anchor.clone(),
            });
        };
        from = found + 1;
    }
    let anchored = !request.anchors.is_empty();
    let search_parts = split_elision(request.search);
    let replace_parts = split_elision(request.replace);
    if search_parts.len() != replace_parts.len() {
        return Err(FailureReason::ElisionMismatch {
            detail: format!(
                "the old text has {} `...` line(s) and the new text {}: they must have the same \
                 number, at the same places",
                search_parts.len() - 1,
                replace_parts.len() - 1
            ),
        });
    }
    if request.search.is_empty() {
        // A pure insertion (unified diff hunk without context): only the line number can place it.
        let Some(hint) = request.hint else {
            return Err(FailureReason::NotFound);
        };
        let at = hint.min(request.file.len());
        let style = FileStyle::detect(request.file);
        let map = IndentMap::new(&[], &[], &style);
        let lines = request
            .replace
            .iter()
            .map(|line| map.apply(line))
            .collect::<Result<Vec<String>, FailureReason>>()?;
        check_edges(request.file, at, at, &lines, &lines, style.tab_width)?;
        return Ok(Located {
            splices: vec![Splice {
                start: at,
                end: at,
                lines,
            }],
            rule: MatchRule::Exact,
        });
    }
    let mut splices = Vec::new();
    let mut loosest = MatchRule::Exact;
    let elided = search_parts.len() > 1;
    for (index, (search, replace)) in search_parts.iter().zip(&replace_parts).enumerate() {
        if search.is_empty() {
            if replace.is_empty() {
                continue;
            }
            return Err(FailureReason::ElisionMismatch {
                detail: format!(
                    "the new text has lines {} its `...` where the old text has none, so nothing \
                     says where they go; add the unchanged lines next to them to both sides",
                    if index == 0 { "before" } else { "after" }
                ),
            });
        }
        // After the first segment of an elided block, the next segment is the first match after it.
        let first_after = anchored || (elided && index > 0);
        let (start, rule) = find_unique(request, search, from, first_after)?;
        let lines = build_replacement(request.file, start, search, replace)?;
        splices.push(Splice {
            start,
            end: start + search.len(),
            lines,
        });
        from = start + search.len();
        loosest = loosest.max(rule);
    }
    if splices.is_empty() {
        return Err(FailureReason::NotFound);
    }
    Ok(Located {
        splices,
        rule: loosest,
    })
}

/// The start of the unique match of `needle` at or after `from`, under the first rule that finds
/// any match. With `first_after`, the first match wins (anchors and elision give the order).
fn find_unique(
    request: &Request<'_>,
    needle: &[&str],
    from: usize,
    first_after: bool,
) -> Result<(usize, MatchRule), FailureReason> {
    // Old text made only of blank lines says nothing about where it is: only the line number (or
    // the end of the file) can place it.
    let blank = needle.iter().all(|line| line.trim().is_empty());
    for rule in RULES {
        let mut matches = find_all(request.file, needle, from, rule);
        if request.at_end {
            matches.retain(|&start| start + needle.len() == request.file.len());
        } else if blank {
            matches.retain(|&start| request.hint == Some(start));
        }
        match matches.as_slice() {
            [] => continue,
            [only] => return Ok((*only, rule)),
            [first, ..] if first_after => return Ok((*first, rule)),
            many => {
                if let Some(hint) = request.hint {
                    if many.contains(&hint) {
                        return Ok((hint, rule));
                    }
                }
                return Err(FailureReason::NotUnique {
                    lines: many.iter().map(|start| start + 1).collect(),
                });
            }
        }
    }
    Err(FailureReason::NotFound)
}

/// Every start index (at or after `from`) where `needle` matches under `rule`.
pub(super) fn find_all(file: &[&str], needle: &[&str], from: usize, rule: MatchRule) -> Vec<usize> {
    if needle.is_empty() || needle.len() > file.len() {
        return Vec::new();
    }
    let needle: Vec<String> = needle.iter().map(|line| normalize(line, rule)).collect();
    let file_norm: Vec<String> = file.iter().map(|line| normalize(line, rule)).collect();
    let mut found = Vec::new();
    for start in from..=file.len() - needle.len() {
        if file_norm[start..start + needle.len()]
            .iter()
            .zip(&needle)
            .all(|(a, b)| a == b)
        {
            found.push(start);
        }
    }
    found
}

/// A line as compared under `rule`.
pub(super) fn normalize(line: &str, rule: MatchRule) -> String {
    match rule {
        MatchRule::Exact => line.to_string(),
        MatchRule::TrailingWhitespace => line.trim_end().to_string(),
        MatchRule::Indentation => line.trim().to_string(),
        MatchRule::Unicode => normalize_unicode(line.trim()).trim().to_string(),
    }
}

/// Map typographic quotes, dashes, ellipses and exotic spaces to ASCII; drop zero-width characters.
pub(crate) fn normalize_unicode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => out.push('\''),
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => out.push('"'),
            '\u{2010}'..='\u{2015}' | '\u{2212}' => out.push('-'),
            '\u{2026}' => out.push_str("..."),
            '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => {
                out.push(' ')
            }
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Split lines on `...` elision lines.
fn split_elision<'a>(lines: &'a [&'a str]) -> Vec<&'a [&'a str]> {
    lines.split(|line| line.trim() == "...").collect()
}

/// True when `lines` occur in the file under any rule (used for "already applied").
pub(super) fn occurs(file: &[&str], lines: &[&str]) -> bool {
    let lines: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| line.trim() != "...")
        .collect();
    !lines.is_empty() && !find_all(file, &lines, 0, MatchRule::Unicode).is_empty()
}

/// The window of file lines most similar to `search` (for "did you mean").
pub(super) fn closest(file: &[&str], search: &[&str]) -> Option<ClosestMatch> {
    let search: Vec<&str> = search
        .iter()
        .copied()
        .filter(|line| line.trim() != "...")
        .collect();
    if file.is_empty() || search.is_empty() {
        return None;
    }
    let size = search.len().min(file.len());
    let search_norm: Vec<String> = search
        .iter()
        .map(|line| normalize(line, MatchRule::Unicode))
        .collect();
    let file_norm: Vec<String> = file
        .iter()
        .map(|line| normalize(line, MatchRule::Unicode))
        .collect();
    // Cheap pass: windows with the most equal (normalised) lines; then an exact ratio on the best few.
    let mut scored: Vec<(usize, usize)> = (0..=file.len() - size)
        .map(|start| {
            let equal = (0..size)
                .filter(|&k| !search_norm[k].is_empty() && file_norm[start + k] == search_norm[k])
                .count();
            (equal, start)
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let candidates: Vec<usize> = if scored.first().is_some_and(|best| best.0 > 0) {
        scored.iter().take(8).map(|(_, start)| *start).collect()
    } else {
        // No line is equal: compare the first search line with every line (bounded).
        let first = search_norm.iter().find(|line| !line.is_empty())?;
        let mut by_line: Vec<(f32, usize)> = file_norm
            .iter()
            .enumerate()
            .take(5000)
            .map(|(i, line)| {
                (
                    similar::TextDiff::from_chars(line.as_str(), first.as_str()).ratio(),
                    i,
                )
            })
            .collect();
        by_line.sort_by(|a, b| b.0.total_cmp(&a.0));
        by_line
            .iter()
            .take(4)
            .map(|(_, i)| (*i).min(file.len() - size))
            .collect()
    };
    let wanted = search.join("\n");
    candidates
        .into_iter()
        .map(|start| {
            let text = file[start..start + size].join("\n");
            let similarity = similar::TextDiff::from_chars(text.as_str(), wanted.as_str()).ratio();
            ClosestMatch {
                line: start + 1,
                text,
                similarity,
            }
        })
        .max_by(|a, b| {
            a.similarity
                .total_cmp(&b.similarity)
                .then(b.line.cmp(&a.line))
        })
        .filter(|best| best.similarity > 0.3)
}
