//! Traces resolved to repository files, each weighed by the role of its best frame.

use std::collections::HashMap;

use super::traces::{frame_weight, installed_relative};
use super::{FileClass, Frame, Trace};

/// Finds the repository file a path written in a trace or a report means.
pub(super) struct PathResolver<'a> {
    by_name: HashMap<&'a str, Vec<(usize, &'a str)>>,
}

impl<'a> PathResolver<'a> {
    pub(super) fn new(documents: &'a [(String, String)]) -> Self {
        let mut by_name: HashMap<&str, Vec<(usize, &str)>> = HashMap::new();
        for (index, (path, _)) in documents.iter().enumerate() {
            let name = path.rsplit('/').next().unwrap_or(path);
            by_name
                .entry(name)
                .or_default()
                .push((index, path.as_str()));
        }
        Self { by_name }
    }

    /// The document `written` names: an absolute path ending in a repository path, a path below
    /// `site-packages/` (the repository's package installed), or a relative path below the root or
    /// below a workspace member. The longest shared suffix wins.
    pub(super) fn resolve(&self, written: &str) -> Option<usize> {
        let written = written.trim_start_matches("./").replace('\\', "/");
        let written = installed_relative(&written).unwrap_or(&written);
        let name = written.rsplit('/').next().unwrap_or(written);
        let candidates = self.by_name.get(name)?;
        candidates
            .iter()
            .filter_map(|&(index, path)| {
                let shared = shared_suffix_components(written, path);
                (shared > 0).then_some((shared, std::cmp::Reverse(path.len()), index))
            })
            .max()
            .filter(|(shared, _, _)| *shared >= 2 || candidates.len() == 1)
            .map(|(_, _, index)| index)
    }
}

/// How many trailing `/`-separated components `a` and `b` share.
fn shared_suffix_components(a: &str, b: &str) -> usize {
    a.rsplit('/')
        .zip(b.rsplit('/'))
        .take_while(|(x, y)| x == y)
        .count()
}

/// How a file figures in the traces.
pub(super) struct TraceHit {
    pub(super) weight: f64,
    pub(super) lines: Vec<usize>,
    pub(super) role: String,
}

/// Weigh every repository file named in `traces` by the role of its best frame.
pub(super) fn weigh_traces(
    traces: &[Trace],
    resolver: &PathResolver<'_>,
    classes: &[FileClass],
) -> HashMap<usize, TraceHit> {
    let mut hits: HashMap<usize, TraceHit> = HashMap::new();
    for trace in traces {
        let message = trace.messages.join("\n");
        let resolved: Vec<(usize, &Frame)> = trace
            .frames
            .iter()
            .filter(|frame| !frame.external)
            .filter_map(|frame| resolver.resolve(&frame.path).map(|index| (index, frame)))
            .collect();
        let raising = trace
            .frames
            .first()
            .and_then(|first| {
                resolved
                    .first()
                    .filter(|(_, frame)| std::ptr::eq(*frame, first))
            })
            .map(|(index, _)| *index);
        let innermost_source = resolved
            .iter()
            .position(|(index, _)| classes[*index] == FileClass::Source);
        for (position, (index, frame)) in resolved.iter().enumerate() {
            let stem = frame
                .path
                .rsplit('/')
                .next()
                .and_then(|name| name.split('.').next())
                .unwrap_or("");
            let in_message = frame.function.as_deref().is_some_and(|function| {
                function.len() > 2 && function != "main" && message.contains(function)
            }) || (stem.len() > 2
                && !["main", "mod", "lib", "index", "__init__"].contains(&stem)
                && message.contains(stem));
            let is_raising = position == 0 && raising == Some(*index);
            let weighed = frame_weight(position, innermost_source, is_raising, in_message);
            // A test file in a trace is supporting context: the code under test comes first.
            let class_factor = match classes[*index] {
                FileClass::Source => 1.0,
                FileClass::Test => 0.6,
                _ => 0.4,
            };
            let weight = weighed.weight * class_factor;
            let hit = hits.entry(*index).or_insert_with(|| TraceHit {
                weight: 0.0,
                lines: Vec::new(),
                role: String::new(),
            });
            if let Some(line) = frame.line {
                if !hit.lines.contains(&line) {
                    hit.lines.push(line);
                }
            }
            if weight > hit.weight {
                hit.weight = weight;
                hit.role = match &frame.function {
                    Some(function) => format!("{} (in {function})", weighed.role),
                    None => weighed.role.to_string(),
                };
            } else {
                // Several frames in one file: a little more.
                hit.weight += 0.02;
            }
        }
    }
    hits
}
