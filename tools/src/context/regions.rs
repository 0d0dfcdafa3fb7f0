//! Regions: a file split into definitions (functions, classes, impls, ...) by their header lines
//! and indentation, each scored with the query's BM25 weights and the failure's line numbers.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::terms::for_each_term;
use super::{Reason, Region, K1, TRACE_BOOST};

static REGION_START: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(?:(?:pub(?:\([^)]*\))?|export|default|async|static|unsafe|public|private|protected|abstract|final|override)\s+)*(?:fn|struct|enum|impl|trait|mod|class|def|func|function|interface|type|macro_rules!)\b|^\s*(?:const|let|var)\s+\w+\s*=\s*(?:async\s*)?(?:\([^)]*\)|\w+)\s*=>",
    )
    .ok()
});

/// Split `text` into regions (definitions: functions, classes, impls, ...) and score them.
pub(super) fn rank_regions(
    text: &str,
    term_index: &HashMap<&str, usize>,
    idf: &[f64],
    trace_lines: &[usize],
) -> Vec<Region> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(pattern) = REGION_START.as_ref() else {
        return Vec::new();
    };
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| pattern.is_match(lines[i]))
        .collect();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let indent = indentation(lines[start]);
        let end = starts[k + 1..]
            .iter()
            .copied()
            .find(|&next| indentation(lines[next]) <= indent)
            .unwrap_or(lines.len());
        let mut end = end;
        while end > start + 1 && lines[end - 1].trim().is_empty() {
            end -= 1;
        }
        spans.push((start, end));
    }
    if spans.is_empty() {
        spans = (0..lines.len())
            .step_by(40)
            .map(|start| (start, (start + 40).min(lines.len())))
            .collect();
    }
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
            let mut reasons = Vec::new();
            let hits: Vec<usize> = trace_lines
                .iter()
                .copied()
                .filter(|&line| line > start && line <= end)
                .collect();
            if !hits.is_empty() {
                score += TRACE_BOOST;
                reasons.push(Reason::InTrace { lines: hits });
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

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}
