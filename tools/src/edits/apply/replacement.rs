//! Building the replacement lines of a located block: re-indented into the file's tabs/spaces
//! style through the offset the match found, with unchanged lines taken verbatim from the file.

use super::FailureReason;

/// The new lines for a match. Lines the block leaves unchanged (equal in its old and new text, up
/// to trailing whitespace) are taken verbatim from the file, so context keeps the file's bytes.
/// Changed lines keep the block's own relative indentation, mapped into the file's indentation
/// through the offset the match found (`IndentMap`). Added lines at an edge of the block (no kept
/// line between them and the edge) that would dedent out of the block around them are refused:
/// that is what a hunk with dropped context looks like, and placing it is a guess.
pub(super) fn build_replacement(
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
/// (or is in) that block, or a trailing added line less indented than the first line after it and
/// than the last line it replaces.
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
    // The match's own last line: trailing lines as deep as it replaced (a `for …:` line edited in
    // place, its body after it) do not cut the block.
    let last_inside = file[start..end.min(file.len())]
        .iter()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| width_of(line));
    if let (Some(added), Some(after)) = (least(trailing), after) {
        if added < after && last_inside.is_none_or(|inside| added < inside) {
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
pub(super) struct IndentMap<'s> {
    style: &'s FileStyle,
    /// The block's indentation equals the file's on every matched line.
    identity: bool,
    /// (tab width, column offset) when consistent.
    shift: Option<(usize, isize)>,
}

impl<'s> IndentMap<'s> {
    pub(super) fn new(matched: &[&str], search: &[&str], style: &'s FileStyle) -> Self {
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

    pub(super) fn apply(&self, line: &str) -> Result<String, FailureReason> {
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
