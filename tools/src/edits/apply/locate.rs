//! Locating a block's old lines in a file under the matching rules, building the replacement lines
//! (re-indented, with unchanged lines taken verbatim from the file), and finding the closest lines
//! when nothing matches.

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

/// The new lines for a match. Lines the block leaves unchanged (equal in its old and new text, up
/// to trailing whitespace) are taken verbatim from the file, so context keeps the file's bytes.
/// Changed lines keep the block's own relative indentation, mapped into the file's indentation
/// through the offset the match found (`IndentMap`). Added lines at an edge of the block (no kept
/// line between them and the edge) that would dedent out of the block around them are refused:
/// that is what a hunk with dropped context looks like, and placing it is a guess.
fn build_replacement(
    file: &[&str],
    start: usize,
    search: &[&str],
    replace: &[&str],
) -> Result<Vec<String>, FailureReason> {
    let matched = &file[start..start + search.len()];
    let search_keys: Vec<&str> = search.iter().map(|line| line.trim_end()).collect();
    let replace_keys: Vec<&str> = replace.iter().map(|line| line.trim_end()).collect();
    let style = FileStyle::detect(file);
    let map = IndentMap::new(matched, search, &style);
    let mut out = Vec::with_capacity(replace.len());
    // Output ranges before the first and after the last kept line (added lines at the edges).
    let mut first_kept: Option<usize> = None;
    let mut after_last_kept = 0;
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &search_keys, &replace_keys) {
        match op {
            similar::DiffOp::Equal { old_index, len, .. } => {
                first_kept.get_or_insert(out.len());
                out.extend(
                    matched[old_index..old_index + len]
                        .iter()
                        .map(ToString::to_string),
                );
                after_last_kept = out.len();
            }
            similar::DiffOp::Delete { .. } => {}
            similar::DiffOp::Insert {
                new_index, new_len, ..
            }
            | similar::DiffOp::Replace {
                new_index, new_len, ..
            } => {
                for line in &replace[new_index..new_index + new_len] {
                    out.push(map.apply(line)?);
                }
            }
        }
    }
    let (leading, trailing) = match first_kept {
        Some(first) => (&out[..first], &out[after_last_kept..]),
        None => (&out[..], &out[..]),
    };
    let end = start + search.len();
    check_edges(file, start, end, leading, trailing, style.tab_width)?;
    Ok(out)
}

/// Refuse added lines at the edges of a block that would cut the block around them: a leading
/// added line less indented than the first line of the match when the line before the match opens
/// (or is in) that block, or a trailing added line less indented than the first line after it.
pub(super) fn check_edges(
    file: &[&str],
    start: usize,
    end: usize,
    leading: &[String],
    trailing: &[String],
    tab_width: usize,
) -> Result<(), FailureReason> {
    let width_of = |line: &str| width(indent_of(line), tab_width);
    let least = |lines: &[String]| {
        lines
            .iter()
            .filter(|line| !line.trim().is_empty())
            .map(|line| width_of(line))
            .min()
    };
    let first_inside = file[start..]
        .iter()
        .find(|line| !line.trim().is_empty())
        .map(|line| width_of(line));
    let before = file[..start]
        .iter()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| width_of(line));
    if let (Some(added), Some(inside)) = (least(leading), first_inside) {
        if added < inside && before.is_none_or(|before| before <= inside) {
            return Err(FailureReason::UnclearIndentation {
                detail: format!(
                    "the new lines at the start of the block are indented less ({added} columns) \
                     than the lines around line {} where they would go ({inside} columns); include \
                     the unchanged lines before the change so the place is clear",
                    start + 1
                ),
            });
        }
    }
    let after = file[end.min(file.len())..]
        .iter()
        .find(|line| !line.trim().is_empty())
        .map(|line| width_of(line));
    if let (Some(added), Some(after)) = (least(trailing), after) {
        if added < after {
            return Err(FailureReason::UnclearIndentation {
                detail: format!(
                    "the new lines at the end of the block are indented less ({added} columns) \
                     than the line after them (line {}, {after} columns); include the unchanged \
                     lines after the change so the place is clear",
                    end + 1
                ),
            });
        }
    }
    Ok(())
}

/// How the file indents: with tabs or spaces, and how many columns one level is.
pub(super) struct FileStyle {
    pub tabs: bool,
    /// Both tab- and space-indented lines occur (Makefiles, aligned Go): new lines the block
    /// writes in either style are left as written when no shift is needed.
    pub mixed: bool,
    /// Columns of one indentation level (spaces files) and of one tab.
    pub tab_width: usize,
}

impl FileStyle {
    /// Most indented lines decide tabs vs spaces; the most common step between the indentation of
    /// consecutive lines is the level width (4 when the file says nothing).
    pub fn detect(file: &[&str]) -> Self {
        let mut tab_lines = 0usize;
        let mut space_lines = 0usize;
        let mut steps = [0usize; 9];
        let mut previous = 0usize;
        for line in file.iter().filter(|line| !line.trim().is_empty()) {
            let indent = indent_of(line);
            if indent.starts_with('\t') {
                tab_lines += 1;
                continue;
            }
            if indent.starts_with(' ') {
                space_lines += 1;
            }
            let current = indent.len();
            if current > previous && current - previous <= 8 {
                steps[current - previous] += 1;
            }
            previous = current;
        }
        let mut unit = 4;
        let mut best = 0;
        for step in [4, 2, 8, 3] {
            if steps[step] > best {
                best = steps[step];
                unit = step;
            }
        }
        Self {
            tabs: tab_lines > space_lines,
            mixed: tab_lines > 0 && space_lines > 0,
            tab_width: unit,
        }
    }

    /// An indentation of `columns` written the file's way.
    fn render(&self, columns: usize) -> String {
        if self.tabs {
            let mut out = "\t".repeat(columns / self.tab_width);
            out.push_str(&" ".repeat(columns % self.tab_width));
            out
        } else {
            " ".repeat(columns)
        }
    }

    /// True when `indent` is already written the file's way (no tab in a spaces file, no leading
    /// spaces standing for a level in a tabs file).
    fn fits(&self, indent: &str) -> bool {
        if self.mixed {
            true
        } else if self.tabs {
            !indent.starts_with(&" ".repeat(self.tab_width))
        } else {
            !indent.contains('\t')
        }
    }
}

/// From the block's indentation to the file's: the match pairs each non-blank old line of the block
/// with a file line; when every pair differs by the same number of columns (for some tab width),
/// a new line's indentation is its own plus that offset. Pairs that agree on nothing make the
/// indentation of new lines unknowable, and such a block is refused rather than guessed.
struct IndentMap<'s> {
    style: &'s FileStyle,
    /// The block's indentation equals the file's on every matched line.
    identity: bool,
    /// (tab width, column offset) when consistent.
    shift: Option<(usize, isize)>,
}

impl<'s> IndentMap<'s> {
    fn new(matched: &[&str], search: &[&str], style: &'s FileStyle) -> Self {
        let pairs: Vec<(&str, &str)> = search
            .iter()
            .zip(matched)
            .filter(|(block, file)| !block.trim().is_empty() && !file.trim().is_empty())
            .map(|(block, file)| (indent_of(block), indent_of(file)))
            .collect();
        let identity = pairs.iter().all(|(block, file)| block == file);
        let mut candidates = vec![style.tab_width];
        candidates.extend([4, 8, 2].into_iter().filter(|w| *w != style.tab_width));
        let shift = candidates.into_iter().find_map(|tab_width| {
            let mut offsets = pairs.iter().map(|(block, file)| {
                width(file, tab_width) as isize - width(block, tab_width) as isize
            });
            let first = offsets.next().unwrap_or(0);
            offsets
                .all(|offset| offset == first)
                .then_some((tab_width, first))
        });
        Self {
            style,
            identity,
            shift,
        }
    }

    fn apply(&self, line: &str) -> Result<String, FailureReason> {
        if line.trim().is_empty() {
            return Ok(if self.identity {
                line.to_string()
            } else {
                String::new()
            });
        }
        let indent = indent_of(line);
        if self.identity && self.style.fits(indent) {
            return Ok(line.to_string());
        }
        let Some((tab_width, offset)) = self.shift else {
            return Err(FailureReason::UnclearIndentation {
                detail: "the old text's indentation differs from the file's by different amounts \
                         on different lines, so the new lines' indentation is unclear; copy the \
                         old lines with the file's exact indentation"
                    .to_string(),
            });
        };
        let columns = width(indent, tab_width) as isize + offset;
        if columns < 0 {
            return Err(FailureReason::UnclearIndentation {
                detail: format!(
                    "the new line `{}` would be indented left of column 0 once the block is \
                     shifted to the file's indentation",
                    line.trim()
                ),
            });
        }
        let mut out = self.style.render(columns as usize);
        out.push_str(&line[indent.len()..]);
        Ok(out)
    }
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// Indentation width in columns, a tab counting `tab_width`.
fn width(indent: &str, tab_width: usize) -> usize {
    indent
        .chars()
        .map(|c| if c == '\t' { tab_width } else { 1 })
        .sum()
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
