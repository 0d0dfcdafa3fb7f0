//! Regions: a file split into its definitions (functions, classes, methods, impls, ...) as the
//! tree-sitter parse gives them, or into 40-line windows when it has none (no grammar, or prose),
//! each scored with the query's BM25 weights, the failure's line numbers, the likely typos and the
//! lint findings. A line named by the failure or holding a typo or finding outside every
//! definition (a module-level statement, a comment between functions) gets a few lines around it
//! as a region of its own.

use std::collections::HashMap;

use super::terms::for_each_term;
use super::{Definition, Finding, Misspelling, Reason, Region, K1, TRACE_BOOST};

/// Lines per region of a file without definitions.
const WINDOW_LINES: usize = 40;
/// Lines either side of a named line outside every definition.
const AROUND_LINES: usize = 3;

/// Split `text` into regions (its `definitions`, or windows) and score them; `trace_lines` are the
/// failure's lines in this file, `typos` its likely misspellings, `findings` its lint findings.
pub(super) fn rank_regions(
    text: &str,
    definitions: &[Definition],
    term_index: &HashMap<&str, usize>,
    idf: &[f64],
    trace_lines: &[usize],
    typos: &[Misspelling],
    findings: &[Finding],
) -> Vec<Region> {
    let lines: Vec<&str> = text.lines().collect();
    // 0-based first line, exclusive end.
    let mut spans: Vec<(usize, usize)> = definitions
        .iter()
        .map(|definition| {
            let end = definition.end_line.min(lines.len());
            (definition.start_line.saturating_sub(1).min(end), end)
        })
        .filter(|(start, end)| start < end)
        .collect();
    spans.dedup();
    if spans.is_empty() {
        spans = (0..lines.len())
            .step_by(WINDOW_LINES)
            .map(|start| (start, (start + WINDOW_LINES).min(lines.len())))
            .collect();
    }
    let named_lines = trace_lines
        .iter()
        .copied()
        .chain(typos.iter().map(|typo| typo.line))
        .chain(findings.iter().map(|finding| finding.line));
    let mut around = Vec::new();
    for line in named_lines.filter(|&line| line >= 1 && line <= lines.len()) {
        let covered = spans
            .iter()
            .chain(&around)
            .any(|&(start, end)| line > start && line <= end);
        if !covered {
            around.push((
                (line - 1).saturating_sub(AROUND_LINES),
                (line + AROUND_LINES).min(lines.len()),
            ));
        }
    }
    spans.extend(around);
    let mut regions: Vec<Region> = spans
        .into_iter()
        .filter_map(|(start, end)| {
            let mut tf = vec![0u32; idf.len()];
            for line in &lines[start..end] {
                for_each_term(line, |term| {
                    if let Some(&i) = term_index.get(term) {
                        tf[i] += 1;
                    }
                });
            }
            let mut score = 0.0;
            let mut matched = Vec::new();
            for (i, &count) in tf.iter().enumerate() {
                if count > 0 {
                    let count = f64::from(count);
                    score += idf[i] * count * (K1 + 1.0) / (count + K1);
                    matched.push((String::new(), count as usize, i));
                }
            }
            // The failure's lines, typos and findings inside the region: each kind present adds
            // the trace boost and its reason.
            let inside = |line: usize| line > start && line <= end;
            let hits: Vec<usize> = trace_lines.iter().copied().filter(|&l| inside(l)).collect();
            let words: Vec<Misspelling> =
                typos.iter().filter(|t| inside(t.line)).cloned().collect();
            let flagged: Vec<Finding> = findings
                .iter()
                .filter(|f| inside(f.line))
                .cloned()
                .collect();
            let reasons_here = [
                (!hits.is_empty()).then_some(Reason::InTrace { lines: hits }),
                (!words.is_empty()).then_some(Reason::Misspelled { words }),
                (!flagged.is_empty()).then_some(Reason::Flagged { findings: flagged }),
            ];
            let mut reasons = Vec::new();
            for reason in reasons_here.into_iter().flatten() {
                score += TRACE_BOOST;
                reasons.push(reason);
            }
            if !matched.is_empty() {
                let terms = term_index
                    .iter()
                    .filter(|(_, &i)| tf[i] > 0)
                    .map(|(term, &i)| (term.to_string(), tf[i] as usize))
                    .collect();
                reasons.push(Reason::Terms { terms });
            }
            (score > 0.0).then(|| Region {
                start_line: start + 1,
                end_line: end,
                name: lines[start].trim().chars().take(100).collect(),
                score,
                reasons,
            })
        })
        .collect();
    // Best first; among equal scores the smaller region (a method rather than its whole impl).
    regions.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((a.end_line - a.start_line).cmp(&(b.end_line - b.start_line)))
            .then(a.start_line.cmp(&b.start_line))
    });
    let mut picked: Vec<Region> = Vec::new();
    for region in regions {
        let overlaps = picked
            .iter()
            .any(|seen| region.start_line <= seen.end_line && seen.start_line <= region.end_line);
        if !overlaps {
            picked.push(region);
        }
        if picked.len() == 3 {
            break;
        }
    }
    let mut regions = picked;
    for region in &mut regions {
        for reason in &mut region.reasons {
            if let Reason::Terms { terms } = reason {
                terms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            }
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::context::definitions;

    fn regions(path: &str, text: &str, term: &str) -> Vec<(usize, usize, String)> {
        let index: HashMap<&str, usize> = [(term, 0)].into_iter().collect();
        rank_regions(
            text,
            &definitions(path, text),
            &index,
            &[1.0],
            &[],
            &[],
            &[],
        )
        .into_iter()
        .map(|region| (region.start_line, region.end_line, region.name))
        .collect()
    }

    #[test]
    fn regions_are_the_parsed_definitions() {
        // A C function with its brace on the next line, and a Python method whose body holds a
        // string at column 0: the parse knows where each ends.
        let c = "#include <x.h>\nstatic int cart_total(struct cart *c)\n{\n    return escape(c);\n}\n\nint other(void) { return 0; }\n";
        assert_eq!(
            regions("cart.c", c, "escape"),
            [(2, 5, "static int cart_total(struct cart *c)".to_string())]
        );
        let python = "class Page:\n    def render(self):\n        text = \"\"\"\n<h1>title</h1>\n\"\"\"\n        return escape(text)\n\n    def other(self):\n        pass\n";
        let found = regions("page.py", python, "escape");
        assert_eq!(
            found[0],
            (2, 6, "def render(self):".to_string()),
            "{found:?}"
        );
        // Without a grammar: windows.
        assert_eq!(regions("notes.txt", "escape\n", "escape")[0].0, 1);
    }

    #[test]
    fn a_named_line_outside_every_definition_gets_the_lines_around_it() {
        let python = "import os\n\n# Read the timeout first.\nos.environ.setdefault('T', '1')\n\n\n\ndef run():\n    pass\n";
        let index: HashMap<&str, usize> = HashMap::new();
        let found = rank_regions(
            python,
            &definitions("cfg.py", python),
            &index,
            &[],
            &[4],
            &[],
            &[],
        );
        assert_eq!((found[0].start_line, found[0].end_line), (1, 7));
        assert_eq!(found[0].reasons, [Reason::InTrace { lines: vec![4] }]);
        // A line inside a definition adds nothing: the definition is the region.
        let found = rank_regions(
            python,
            &definitions("cfg.py", python),
            &index,
            &[],
            &[9],
            &[],
            &[],
        );
        assert_eq!((found[0].start_line, found[0].end_line), (8, 9));
        assert_eq!(found.len(), 1);
    }
}
