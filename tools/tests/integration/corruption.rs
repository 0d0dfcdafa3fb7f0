//! Generated corruption test: take a real-looking Python or Rust file and an intended edit, write
//! the edit in every format, corrupt it the way models do (indentation shifted or stripped, tabs
//! for spaces, trailing spaces on context lines, wrong hunk counts, dropped context, CRLF in the
//! patch or the file), and apply it. The result must be the intended file (up to trailing
//! whitespace, with the file's line endings) or a refusal that leaves the file untouched — never
//! other content. An edit with no corruption (or only CRLF) must always apply.

use hone_tools::edits::{apply_patch, parse_patch, ApplyOptions};
use proptest::prelude::*;

const CORPUS: [(&str, &str); 8] = [
    ("inventory.py", include_str!("corpus/inventory.py")),
    ("textstats.py", include_str!("corpus/textstats.py")),
    ("shapes.py", include_str!("corpus/shapes.py")),
    ("retry.py", include_str!("corpus/retry.py")),
    ("stack.rs", include_str!("corpus/stack.rs")),
    ("config.rs", include_str!("corpus/config.rs")),
    ("tokens.rs", include_str!("corpus/tokens.rs")),
    ("cache.rs", include_str!("corpus/cache.rs")),
];

/// What the intended edit does around line `pick` (taken modulo the candidate lines).
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Append a comment to a line.
    Modify,
    /// Insert a statement after a line, indented like the next line.
    InsertAfter,
    /// Delete a line.
    Delete,
    /// Replace an indented line by a new line and the old one a level further out.
    DedentSplit,
    /// Add an import at the top and change the first indented line (issue 15, reproduction 4).
    ImportAndBody,
}

#[derive(Debug, Clone, Copy)]
enum Format {
    SearchReplace,
    Unified,
    Codex,
    WholeFile,
}

#[derive(Debug, Clone, Copy)]
enum Drop {
    Nothing,
    LeadingContext,
    TrailingContext,
    AllContext,
}

#[derive(Debug, Clone)]
struct Corruption {
    /// 0: none, 1: four more spaces, 2: two more spaces, 3: common indentation stripped.
    shift: u8,
    tabs: bool,
    trailing_spaces: bool,
    drop: Drop,
    old_count_delta: i8,
    new_count_delta: i8,
    crlf_patch: bool,
    crlf_file: bool,
    context_before: usize,
    context_after: usize,
}

impl Corruption {
    /// True when only the line endings differ from a well-formed edit.
    fn is_clean(&self) -> bool {
        self.shift == 0
            && !self.tabs
            && !self.trailing_spaces
            && matches!(self.drop, Drop::Nothing)
            && self.old_count_delta == 0
            && self.new_count_delta == 0
    }
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// The intended edit: old lines `start..end` become `new`.
struct Edit {
    start: usize,
    end: usize,
    new: Vec<String>,
}

fn make_edit(lines: &[&str], python: bool, kind: Kind, pick: usize) -> Option<Edit> {
    let non_blank: Vec<usize> = (0..lines.len())
        .filter(|&i| !lines[i].trim().is_empty())
        .collect();
    let comment = if python { "  # edited" } else { " // edited" };
    match kind {
        Kind::Modify => {
            let i = non_blank[pick % non_blank.len()];
            Some(Edit {
                start: i,
                end: i + 1,
                new: vec![format!("{}{comment}", lines[i])],
            })
        }
        Kind::InsertAfter => {
            let i = non_blank[pick % non_blank.len()];
            let next = non_blank.iter().find(|&&j| j > i)?;
            let statement = if python {
                "trace(\"step\")"
            } else {
                "trace(\"step\");"
            };
            Some(Edit {
                start: i + 1,
                end: i + 1,
                new: vec![format!("{}{statement}", indent_of(lines[*next]))],
            })
        }
        Kind::Delete => {
            let i = non_blank[pick % non_blank.len()];
            Some(Edit {
                start: i,
                end: i + 1,
                new: Vec::new(),
            })
        }
        Kind::DedentSplit => {
            let deep: Vec<usize> = non_blank
                .iter()
                .copied()
                .filter(|&i| indent_of(lines[i]).len() >= 8)
                .collect();
            let i = *deep.get(pick % deep.len().max(1))?;
            let indent = indent_of(lines[i]);
            let statement = if python { "note = 3" } else { "let note = 3;" };
            Some(Edit {
                start: i,
                end: i + 1,
                new: vec![
                    format!("{indent}{statement}"),
                    format!("{}{}", &indent[4..], lines[i].trim_start()),
                ],
            })
        }
        Kind::ImportAndBody => {
            let i = *non_blank
                .iter()
                .find(|&&i| !indent_of(lines[i]).is_empty())?;
            if i > 12 {
                return None;
            }
            let import = if python { "import os" } else { "use std::env;" };
            let mut new = vec![import.to_string(), String::new()];
            new.extend(lines[..i].iter().map(ToString::to_string));
            new.push(format!("{}{comment}", lines[i]));
            Some(Edit {
                start: 0,
                end: i + 1,
                new,
            })
        }
    }
}

/// Hunk body lines (`' '`, `'-'`, `'+'` with text) and the 0-based old line where the body starts.
fn hunk_body(lines: &[&str], edit: &Edit, corruption: &Corruption) -> (Vec<(char, String)>, usize) {
    let lo = edit.start.saturating_sub(corruption.context_before);
    let hi = (edit.end + corruption.context_after).min(lines.len());
    let mut body: Vec<(char, String)> = Vec::new();
    body.extend(
        lines[lo..edit.start]
            .iter()
            .map(|line| (' ', line.to_string())),
    );
    let old: Vec<&str> = lines[edit.start..edit.end].to_vec();
    let new: Vec<&str> = edit.new.iter().map(String::as_str).collect();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old, &new) {
        for change in op.iter_changes(&old, &new) {
            let tag = match change.tag() {
                similar::ChangeTag::Equal => ' ',
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
            };
            body.push((tag, change.value().to_string()));
        }
    }
    body.extend(
        lines[edit.end..hi]
            .iter()
            .map(|line| (' ', line.to_string())),
    );
    let mut start = lo;
    match corruption.drop {
        Drop::Nothing => {}
        Drop::LeadingContext => {
            let lead = body.iter().take_while(|(tag, _)| *tag == ' ').count();
            body.drain(..lead);
            start += lead;
        }
        Drop::TrailingContext => {
            let trail = body.iter().rev().take_while(|(tag, _)| *tag == ' ').count();
            body.truncate(body.len() - trail);
        }
        Drop::AllContext => {
            let lead = body.iter().take_while(|(tag, _)| *tag == ' ').count();
            start += lead;
            body.retain(|(tag, _)| *tag != ' ');
        }
    }
    let common = body
        .iter()
        .filter(|(_, text)| !text.trim().is_empty())
        .map(|(_, text)| indent_of(text).len())
        .min()
        .unwrap_or(0);
    for (tag, text) in &mut body {
        if text.trim().is_empty() {
            continue;
        }
        match corruption.shift {
            1 => text.insert_str(0, "    "),
            2 => text.insert_str(0, "  "),
            3 => {
                text.drain(..common);
            }
            _ => {}
        }
        if corruption.tabs {
            let indent = indent_of(text).len();
            let tabs = "\t".repeat(indent / 4);
            *text = format!("{tabs}{}", &text[indent / 4 * 4..]);
        }
        if corruption.trailing_spaces && *tag == ' ' {
            text.push(' ');
        }
    }
    (body, start)
}

fn render(
    format: Format,
    path: &str,
    body: &[(char, String)],
    start: usize,
    intended: &str,
    corruption: &Corruption,
) -> Option<String> {
    let side = |keep: char| -> Vec<&str> {
        body.iter()
            .filter(|(tag, _)| *tag == ' ' || *tag == keep)
            .map(|(_, text)| text.as_str())
            .collect()
    };
    let tagged = || -> String {
        body.iter()
            .map(|(tag, text)| format!("{tag}{text}\n"))
            .collect()
    };
    let old = side('-');
    let new = side('+');
    let text = match format {
        Format::SearchReplace => {
            if old.iter().all(|line| line.trim().is_empty()) {
                return None;
            }
            let mut text = format!("{path}\n<<<<<<< SEARCH\n");
            for line in &old {
                text.push_str(line);
                text.push('\n');
            }
            text.push_str("=======\n");
            for line in &new {
                text.push_str(line);
                text.push('\n');
            }
            text.push_str(">>>>>>> REPLACE\n");
            text
        }
        Format::Unified => {
            let old_count =
                (old.len() as isize + corruption.old_count_delta as isize).max(0) as usize;
            let new_count =
                (new.len() as isize + corruption.new_count_delta as isize).max(0) as usize;
            let old_start = if old.is_empty() { start } else { start + 1 };
            format!(
                "--- a/{path}\n+++ b/{path}\n@@ -{old_start},{old_count} +{},{new_count} @@\n{}",
                start + 1,
                tagged()
            )
        }
        Format::Codex => {
            if old.iter().all(|line| line.trim().is_empty()) {
                return None;
            }
            format!(
                "*** Begin Patch\n*** Update File: {path}\n@@\n{}*** End Patch\n",
                tagged()
            )
        }
        Format::WholeFile => format!("{path}\n```\n{intended}```\n"),
    };
    Some(if corruption.crlf_patch {
        text.replace('\n', "\r\n")
    } else {
        text
    })
}

fn normalized(text: &str) -> Vec<String> {
    text.split('\n')
        .map(|line| line.trim_end().to_string())
        .collect()
}

fn corruption() -> impl Strategy<Value = Corruption> {
    (
        (0u8..4, any::<bool>(), any::<bool>()),
        prop_oneof![
            Just(Drop::Nothing),
            Just(Drop::LeadingContext),
            Just(Drop::TrailingContext),
            Just(Drop::AllContext)
        ],
        (-2i8..3, -2i8..3),
        (any::<bool>(), any::<bool>()),
        (0usize..4, 0usize..4),
    )
        .prop_map(
            |(
                (shift, tabs, trailing_spaces),
                drop,
                (old_count_delta, new_count_delta),
                (crlf_patch, crlf_file),
                (context_before, context_after),
            )| Corruption {
                shift,
                tabs,
                trailing_spaces,
                drop,
                old_count_delta,
                new_count_delta,
                crlf_patch,
                crlf_file,
                context_before,
                context_after,
            },
        )
}

/// Apply one generated case; `Ok(true)` when it applied, `Ok(false)` when it was refused cleanly.
fn run_case(
    file: usize,
    kind: Kind,
    pick: usize,
    format: Format,
    corruption: &Corruption,
) -> Result<Option<bool>, String> {
    let (path, source) = CORPUS[file];
    let python = path.ends_with(".py");
    let lines: Vec<&str> = source.lines().collect();
    let Some(edit) = make_edit(&lines, python, kind, pick) else {
        return Ok(None);
    };
    let mut intended_lines: Vec<String> = lines[..edit.start]
        .iter()
        .map(ToString::to_string)
        .collect();
    intended_lines.extend(edit.new.iter().cloned());
    intended_lines.extend(lines[edit.end..].iter().map(ToString::to_string));
    let mut intended = intended_lines.join("\n");
    intended.push('\n');
    let (body, start) = hunk_body(&lines, &edit, corruption);
    // A shifted insertion with no old line beside it carries no trace of the shift: nothing can
    // tell it from an edit that means that indentation, so it is not a corruption to detect.
    if corruption.shift != 0 && body.iter().all(|(tag, _)| *tag == '+') {
        return Ok(None);
    }
    // Likewise an old side that, once shifted, is exactly other lines of the file (a lone `}` one
    // level deeper, up to trailing spaces) is a different, well-formed edit, and applying it there is what it says.
    let old_side: Vec<&str> = body
        .iter()
        .filter(|(tag, _)| *tag != '+')
        .map(|(_, text)| text.as_str())
        .collect();
    if (corruption.shift != 0 || corruption.tabs)
        && !old_side.is_empty()
        && lines
            .windows(old_side.len())
            .enumerate()
            .any(|(at, window)| {
                at != start
                    && window
                        .iter()
                        .zip(&old_side)
                        .all(|(a, b)| a.trim_end() == b.trim_end())
            })
    {
        return Ok(None);
    }
    let Some(patch_text) = render(format, path, &body, start, &intended, corruption) else {
        return Ok(None);
    };
    let (before, expected) = if corruption.crlf_file {
        (source.replace('\n', "\r\n"), intended.replace('\n', "\r\n"))
    } else {
        (source.to_string(), intended.clone())
    };
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let target = dir.path().join(path);
    std::fs::write(&target, &before).map_err(|error| error.to_string())?;
    let patch = match parse_patch(&patch_text) {
        Ok(patch) => patch,
        // A patch too broken to parse is a refusal; the file is not touched.
        Err(_) => return Ok(Some(false)),
    };
    let report = apply_patch(dir.path(), &patch, &ApplyOptions::default())
        .map_err(|error| error.to_string())?;
    let after = std::fs::read_to_string(&target).map_err(|error| error.to_string())?;
    let people = hone_tools::render_for_people(&report);
    if !report.is_success() {
        if after != before {
            return Err(format!(
                "refused but the file changed\n{people}\n{patch_text}"
            ));
        }
        return Ok(Some(false));
    }
    if normalized(&after) != normalized(&expected) {
        return Err(format!(
            "wrong content written\npatch:\n{patch_text}\nexpected:\n{expected}\nactual:\n{after}"
        ));
    }
    if corruption.crlf_file && after.replace("\r\n", "").contains('\n') {
        return Err(format!("CRLF file got LF lines\npatch:\n{patch_text}"));
    }
    Ok(Some(true))
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Modify),
        Just(Kind::InsertAfter),
        Just(Kind::Delete),
        Just(Kind::DedentSplit),
        Just(Kind::ImportAndBody)
    ]
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![
        Just(Format::SearchReplace),
        Just(Format::Unified),
        Just(Format::Codex),
        Just(Format::WholeFile)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_edits_apply_as_meant_or_not_at_all(
        file in 0..CORPUS.len(),
        kind in kind(),
        pick in 0usize..64,
        format in format(),
        corruption in corruption(),
    ) {
        let outcome = run_case(file, kind, pick, format, &corruption);
        prop_assert!(outcome.is_ok(), "{:?} {:?} {:?}\n{}", kind, format, corruption, outcome.unwrap_err());
        if corruption.is_clean() && corruption.context_before + corruption.context_after > 0 {
            prop_assert_ne!(outcome.unwrap(), Some(false), "a clean edit was refused: {:?} {:?} {:?}", kind, format, corruption);
        }
    }
}

/// Every edit of the corpus, each format, under the corruptions the ladder exists for (shifted
/// indentation, tabs for spaces, CRLF, trailing spaces, full context): all must apply as meant.
#[test]
fn indentation_corruptions_with_full_context_always_apply() {
    let mut failures = Vec::new();
    let mut applied = 0;
    for (file, (name, _)) in CORPUS.iter().enumerate() {
        for kind in [
            Kind::Modify,
            Kind::InsertAfter,
            Kind::Delete,
            Kind::DedentSplit,
            Kind::ImportAndBody,
        ] {
            for pick in [0, 7, 19] {
                for format in [Format::SearchReplace, Format::Unified, Format::Codex] {
                    for (shift, tabs) in [(1, false), (3, false), (0, true), (1, true)] {
                        let corruption = Corruption {
                            shift,
                            tabs,
                            trailing_spaces: true,
                            drop: Drop::Nothing,
                            old_count_delta: 0,
                            new_count_delta: 0,
                            crlf_patch: pick == 7,
                            crlf_file: pick == 19,
                            context_before: 3,
                            context_after: 3,
                        };
                        match run_case(file, kind, pick, format, &corruption) {
                            Ok(Some(true)) => applied += 1,
                            Ok(None) => {}
                            Ok(Some(false)) => failures.push(format!(
                                "{} {kind:?} {pick} {format:?} {corruption:?}: refused",
                                name
                            )),
                            Err(error) => failures.push(format!(
                                "{} {kind:?} {pick} {format:?} {corruption:?}: {error}",
                                name
                            )),
                        }
                    }
                }
            }
        }
    }
    assert!(applied > 500, "only {applied} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        applied + failures.len(),
        failures.join("\n\n")
    );
}
