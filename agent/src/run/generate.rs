//! Generating the candidates of one iteration, in either mode: SEARCH/REPLACE edit blocks in chat
//! answers (any backend), or a block rewrite of the planned region by masked infill (the skeleton
//! repeats the path and the unchanged lines around the region; each candidate fills the hole at
//! another length), which becomes a whole-file write of that one file.

use hone_prompts::PlanItem;
use hone_tools::{EditBlock, EditFormat, EditOperation, ParseError, Patch};

use crate::infill::{candidate_lengths, skeleton, splice, Region};
use crate::model::{ChatRequest, InfillRequest, Message, Model, Purpose, Sampling, Usage};
use crate::Result;

/// One generated candidate: the raw answer and its parsed edits (or the parser's reason none could
/// be read).
#[derive(Debug, Clone)]
pub(crate) struct Generated {
    pub index: usize,
    pub text: String,
    pub patch: std::result::Result<Patch, ParseError>,
}

/// Edit blocks: one chat call for all candidates.
pub(crate) async fn edit_blocks(
    model: &dyn Model,
    messages: &[Message],
    candidates: usize,
    max_tokens: usize,
    sampling: &Sampling,
) -> Result<(Vec<Generated>, Usage)> {
    let request = ChatRequest {
        messages: messages.to_vec(),
        n: candidates,
        max_tokens,
        stop: Vec::new(),
        sampling: sampling.clone(),
        purpose: Purpose::Edit,
    };
    let response = model.chat(&request, None).await?;
    let generated = response
        .candidates
        .into_iter()
        .enumerate()
        .map(|(index, candidate)| {
            let patch = hone_tools::parse_patch(&candidate.text);
            Generated {
                index,
                text: candidate.text,
                patch,
            }
        })
        .collect();
    Ok((generated, response.usage))
}

/// The region an infill candidate rewrites: the plan item's lines, or the head of a whole file.
pub(crate) fn infill_region(item: &PlanItem, content: &str) -> Region {
    let lines = content.lines().count().max(1);
    let (start, end) = if item.start_line == 0 {
        (1, lines.min(super::context::WHOLE_FILE_LINES))
    } else {
        (
            item.start_line.min(lines),
            item.end_line.clamp(item.start_line.min(lines), lines),
        )
    };
    Region {
        path: item.path.clone(),
        start_line: start,
        end_line: end,
    }
}

/// Block rewrite by infill of `region` of `content`: one request, a candidate per hole length.
pub(crate) async fn block_rewrite(
    model: &dyn Model,
    prompt: &str,
    region: &Region,
    content: &str,
    candidates: usize,
    sampling: &Sampling,
) -> Result<(Vec<Generated>, Usage)> {
    let fence = hone_prompts::fence_for([content]);
    let region_text: String = content
        .lines()
        .skip(region.start_line.saturating_sub(1))
        .take(region.end_line + 1 - region.start_line.max(1))
        .collect::<Vec<_>>()
        .join("\n");
    let tokens = crate::model::estimate_tokens(model, &region_text);
    let lengths = candidate_lengths(tokens, candidates);
    let (segments, _original) = skeleton(region, content, &fence, lengths);
    let request = InfillRequest {
        messages: vec![Message::user(prompt)],
        skeleton: segments,
        n: 1,
        sampling: sampling.clone(),
        purpose: Purpose::Edit,
    };
    let response = model.infill(&request).await?;
    let generated = response
        .candidates
        .into_iter()
        .enumerate()
        .map(|(index, candidate)| {
            let filled = candidate.holes.first().cloned().unwrap_or_default();
            let new_content = splice(region, content, &filled);
            let patch = Patch {
                format: EditFormat::WholeFile,
                blocks: vec![EditBlock {
                    index: 0,
                    path: region.path.clone(),
                    operation: EditOperation::Write {
                        content: new_content,
                    },
                }],
            };
            Generated {
                index,
                text: candidate.text,
                patch: Ok(patch),
            }
        })
        .collect();
    Ok((generated, response.usage))
}
