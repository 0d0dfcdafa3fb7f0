//! Turning a [`GenerateRequest`] into the canvases to decode: the prompt (text, ids, chat or
//! infill segments) encoded, one layout per hole-length variant (block-aligned for block-causal
//! models), one sequence per candidate with its seed and its [`CandidateText`].
//!
//! One rule for every caller (`hone generate`, `hone run`, `hone serve`): a generation or a hole is
//! cut into blocks of `block_length` and its last block may be shorter (`Layout::from_pieces`), so
//! a length is honoured exactly whatever the block length.

use super::{CandidateText, GenerateRequest, Prompt, Segment, TokenCodec};
use crate::sampling::cohort::TokenIds;
use crate::sampling::{Layout, Piece, SequenceRequest};
use crate::{Error, Result};

/// One canvas of a request: the sequence to decode, how its text is read back, and the lengths of
/// its holes.
pub type CandidateCanvas = (SequenceRequest, CandidateText, Vec<usize>);

/// Builds the canvases of a request: one per (variant, sample). Returns the requests, each with
/// its `CandidateText` and seed, and the prompt token count.
pub fn candidate_requests(
    request: &GenerateRequest,
    codec: Option<&dyn TokenCodec>,
    tokens: &TokenIds,
) -> Result<(Vec<CandidateCanvas>, usize)> {
    if request.candidates == 0 {
        return Err(Error::InvalidInput(
            "zero candidates requested: ask for at least 1".into(),
        ));
    }
    let settings = &request.settings;
    settings.validate()?;
    let need_codec = || {
        codec.ok_or_else(|| {
            Error::InvalidInput("this model has no tokenizer: pass token ids".into())
        })
    };
    let mut variants: Vec<(Vec<Piece>, Vec<usize>)> = Vec::new();
    let mut prompt_tokens = 0;
    match &request.prompt {
        Prompt::Text(_) | Prompt::Ids(_) | Prompt::Chat(_) => {
            let ids = match &request.prompt {
                Prompt::Text(text) => need_codec()?.encode(text)?,
                Prompt::Chat(messages) => {
                    let codec = need_codec()?;
                    codec.encode(&codec.render_chat(messages)?)?
                }
                Prompt::Ids(ids) => ids.clone(),
                Prompt::Segments(_) => Vec::new(),
            };
            prompt_tokens = ids.len();
            if settings.gen_length == 0 {
                return Err(Error::InvalidSetting {
                    field: "gen_length",
                    reason: "gen_length must be at least 1".into(),
                });
            }
            variants.push((
                vec![Piece::Ids(ids), Piece::Hole(settings.gen_length)],
                vec![settings.gen_length],
            ));
        }
        Prompt::Segments(segments) => {
            let count = segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Hole { lengths } => Some(lengths.len()),
                    Segment::Text(_) => None,
                })
                .max()
                .unwrap_or(0);
            if count == 0 {
                return Err(Error::InvalidInput(
                    "infill needs at least one hole with a length".into(),
                ));
            }
            let mut encoded = Vec::new();
            for segment in segments {
                match segment {
                    Segment::Text(text) => {
                        let ids = need_codec()?.encode(text)?;
                        prompt_tokens += ids.len();
                        encoded.push(Ok(ids));
                    }
                    Segment::Hole { lengths } => {
                        if lengths.len() != count && lengths.len() != 1 {
                            return Err(Error::InvalidInput(format!(
                                "every hole must list {count} candidate lengths (or exactly one), one lists {}",
                                lengths.len()
                            )));
                        }
                        if lengths.contains(&0) {
                            return Err(Error::InvalidInput(
                                "a hole length must be at least 1".into(),
                            ));
                        }
                        encoded.push(Err(lengths.clone()));
                    }
                }
            }
            for j in 0..count {
                let mut pieces = Vec::new();
                let mut lengths = Vec::new();
                for piece in &encoded {
                    match piece {
                        Ok(ids) => pieces.push(Piece::Ids(ids.clone())),
                        Err(options) => {
                            let len = if options.len() == 1 {
                                options[0]
                            } else {
                                options[j]
                            };
                            lengths.push(len);
                            pieces.push(Piece::Hole(len));
                        }
                    }
                }
                variants.push((pieces, lengths));
            }
        }
    }
    let mut out = Vec::new();
    let infill = matches!(request.prompt, Prompt::Segments(_));
    for (pieces, lengths) in variants {
        let mut layout = if settings.sampler.is_block_causal() {
            block_causal_layout(&pieces, settings.block_length, tokens.mask)?
        } else {
            Layout::from_pieces(&pieces, settings.block_length, tokens.mask)?
        };
        // Explicit holes are infill even at the end: EOS inside them is padding, not a stop.
        layout.open_ended &= !infill;
        let generated = layout.generated_len();
        let mut settings = settings.clone();
        settings.gen_length = generated;
        settings.validate_steps(generated, layout.blocks.len())?;
        for i in 0..request.candidates {
            let seed = request.seed.wrapping_add(i as u64);
            let text = CandidateText {
                layout: layout.clone(),
                tokens: tokens.clone(),
                stop: request.stop.clone(),
                cut_at_eos: layout.open_ended && settings.stop_at_eos,
            };
            let sequence = SequenceRequest {
                layout: layout.clone(),
                attention_mask: None,
                settings: settings.clone(),
                seed,
                tokens: tokens.clone(),
            };
            out.push((sequence, text, lengths.clone()));
        }
    }
    Ok((out, prompt_tokens))
}

/// Block diffusion's canvas for a request: the prompt (or the text before the hole) and one hole
/// at the end, padded to whole blocks (`Layout::block_aligned`). Block-causal models attend only
/// to earlier blocks, so text after a hole could never inform it: such requests are refused.
fn block_causal_layout(pieces: &[Piece], block_length: usize, mask: u32) -> Result<Layout> {
    let mut prefix = Vec::new();
    let mut hole = None;
    for piece in pieces {
        match (piece, hole) {
            (Piece::Ids(ids), None) => prefix.extend_from_slice(ids),
            (Piece::Hole(len), None) => hole = Some(*len),
            (Piece::Ids(ids), Some(_)) if ids.is_empty() => {}
            _ => {
                return Err(Error::Unsupported(
                    "block-causal models (LLaDA2) attend only to earlier blocks: they fill one hole at \
                     the end of the text, after a fixed prefix, and cannot infill before a suffix; use \
                     an Open-dCoder, LLaDA or Dream model to infill in the middle"
                        .into(),
                ))
            }
        }
    }
    let len = hole
        .ok_or_else(|| Error::InvalidInput("nothing to generate: the canvas has no hole".into()))?;
    Layout::block_aligned(&prefix, len, block_length, mask)
}
