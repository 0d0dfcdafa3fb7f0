//! Block rewrite by infill, for backends that can fill masked holes (the local diffusion engine): the
//! response skeleton repeats the file path and the unchanged lines around the planned region and masks
//! only the region, at several candidate lengths, so every answer is a well-formed rewrite of exactly
//! that region by construction. This module builds skeletons and turns filled ones back into files.

use crate::model::Segment;

/// Unchanged lines shown on each side of the hole.
const CONTEXT_LINES: usize = 3;

/// A region of a file to rewrite (1-based, inclusive lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub path: String,
    pub start_line: usize,
    pub end_line: usize,
}

/// Hole lengths (tokens) for `candidates` candidates around a region of `region_tokens` tokens: the
/// same length first, then longer and shorter ones, since a fix usually changes the length a little.
pub fn candidate_lengths(region_tokens: usize, candidates: usize) -> Vec<usize> {
    const FACTORS: [f64; 8] = [1.0, 1.25, 1.5, 0.75, 2.0, 1.75, 0.5, 2.5];
    let base = region_tokens.max(8) as f64;
    let mut lengths: Vec<usize> = Vec::new();
    let mut step = 0;
    while lengths.len() < candidates.max(1) {
        let factor = FACTORS
            .get(step)
            .copied()
            .unwrap_or(1.0 + step as f64 * 0.25);
        let length = ((base * factor).round() as usize).max(4);
        if !lengths.contains(&length) {
            lengths.push(length);
        }
        step += 1;
    }
    lengths
}

/// The skeleton for rewriting `region` of `content`, and the region's current text.
pub fn skeleton(
    region: &Region,
    content: &str,
    fence: &str,
    lengths: Vec<usize>,
) -> (Vec<Segment>, String) {
    let lines: Vec<&str> = content.lines().collect();
    let (start, end) = clamp(region, lines.len());
    let before_from = start.saturating_sub(CONTEXT_LINES);
    let after_to = (end + CONTEXT_LINES).min(lines.len());
    let mut head = format!("{}\n{fence}\n", region.path);
    for line in &lines[before_from..start] {
        head.push_str(line);
        head.push('\n');
    }
    let mut tail = String::from("\n");
    for line in &lines[end..after_to] {
        tail.push_str(line);
        tail.push('\n');
    }
    tail.push_str(fence);
    tail.push('\n');
    let original = lines[start..end].join("\n");
    (
        vec![
            Segment::Text(head),
            Segment::Hole { lengths },
            Segment::Text(tail),
        ],
        original,
    )
}

/// The file with lines of `region` replaced by `filled` (the hole's text). Keeps the file's line
/// endings and final newline.
pub fn splice(region: &Region, content: &str, filled: &str) -> String {
    let crlf = content.contains("\r\n");
    let lines: Vec<&str> = content.lines().collect();
    let (start, end) = clamp(region, lines.len());
    let filled = filled.trim_matches('\n').trim_end_matches('\r');
    let mut out: Vec<&str> = lines[..start].to_vec();
    if !filled.is_empty() {
        out.extend(filled.lines());
    }
    out.extend(&lines[end..]);
    let newline = if crlf { "\r\n" } else { "\n" };
    let mut text = out.join(newline);
    if content.ends_with('\n') || content.is_empty() {
        text.push_str(newline);
    }
    text
}

/// 0-based half-open line range of the region, inside the file.
fn clamp(region: &Region, line_count: usize) -> (usize, usize) {
    if region.start_line == 0 {
        return (0, line_count);
    }
    let start = (region.start_line - 1).min(line_count);
    let end = region.end_line.clamp(start, line_count);
    (start, end)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const FILE: &str = "a\nb\nc\nd\ne\nf\ng\nh\n";

    fn region(start: usize, end: usize) -> Region {
        Region {
            path: "x.txt".into(),
            start_line: start,
            end_line: end,
        }
    }

    #[test]
    fn skeleton_repeats_the_surroundings() {
        let (segments, original) = skeleton(&region(5, 5), FILE, "```", vec![4, 8]);
        assert_eq!(original, "e");
        assert_eq!(segments[0], Segment::Text("x.txt\n```\nb\nc\nd\n".into()));
        assert_eq!(
            segments[1],
            Segment::Hole {
                lengths: vec![4, 8]
            }
        );
        assert_eq!(segments[2], Segment::Text("\nf\ng\nh\n```\n".into()));
    }

    #[test]
    fn splice_replaces_only_the_region() {
        assert_eq!(
            splice(&region(2, 3), FILE, "X\nY\nZ"),
            "a\nX\nY\nZ\nd\ne\nf\ng\nh\n"
        );
        assert_eq!(splice(&region(1, 8), FILE, ""), "\n");
        assert_eq!(splice(&region(2, 2), "a\r\nb\r\nc", "B\n"), "a\r\nB\r\nc");
    }

    #[test]
    fn lengths_are_distinct_and_start_with_the_same_size() {
        let lengths = candidate_lengths(20, 4);
        assert_eq!(lengths, [20, 25, 30, 15]);
        assert_eq!(candidate_lengths(0, 2), [8, 10]);
    }
}
