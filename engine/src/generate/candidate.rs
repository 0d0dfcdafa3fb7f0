//! A finished candidate read back from its canvas ([`CandidateSlot::finish`]): what `generate`
//! does for each of its candidates, and what the engine thread's callers (`hone run`) do with the
//! final canvas a sequence leaves behind, so both read a candidate the same way.

use super::{cut_at_stop, Candidate, CandidateText, TokenCodec};
use crate::sampling::FinishReason;
use crate::Result;

/// Where a candidate stands in its request and how its canvas reads back: what [`generate`](super::generate) keeps
/// per candidate, and what a caller decoding on its own thread (`hone run` over `hone serve`'s
/// scheduler) keeps to turn a final canvas into the same [`Candidate`].
#[derive(Debug, Clone)]
pub struct CandidateSlot {
    pub index: usize,
    pub seed: u64,
    /// The hole lengths it is decoded with.
    pub lengths: Vec<usize>,
    pub text: CandidateText,
    /// Decoding stopped early at a stop string.
    pub stopped_by_string: bool,
}

impl CandidateSlot {
    /// The candidate a final `canvas` holds, after `forwards` forward passes: the holes' ids (an
    /// open-ended generation cut at its first EOS or mask; EOS and padding stripped from infill
    /// holes), their text, the text cut at the first stop string, and for infill the whole document.
    pub fn finish(
        &self,
        canvas: &[u32],
        codec: Option<&dyn TokenCodec>,
        forwards: usize,
    ) -> Result<Candidate> {
        let layout = &self.text.layout;
        let tokens = &self.text.tokens;
        let stop_ids = tokens.stop_ids();
        let mut reason = FinishReason::Length;
        let mut ids = Vec::new();
        let mut holes = Vec::new();
        for hole in &layout.holes {
            let mut hole_ids: Vec<u32> = canvas[hole.clone()].to_vec();
            if layout.open_ended {
                let cut_at =
                    |t: &u32| (self.text.cut_at_eos && stop_ids.contains(t)) || *t == tokens.mask;
                if let Some(cut) = hole_ids.iter().position(cut_at) {
                    if stop_ids.contains(&hole_ids[cut]) {
                        reason = FinishReason::Stop;
                    }
                    hole_ids.truncate(cut);
                }
            } else {
                // Infill: EOS / padding inside a hole means "shorter than the hole": strip it.
                hole_ids.retain(|t| !stop_ids.contains(t) && *t != tokens.mask);
            }
            if let Some(codec) = codec {
                holes.push(codec.decode(&hole_ids)?);
            }
            ids.extend(hole_ids);
        }
        let mut text = match codec {
            Some(codec) => codec.decode(&ids)?,
            None => String::new(),
        };
        if !self.text.stop.is_empty() {
            let (cut, matched) = cut_at_stop(text, &self.text.stop);
            text = cut;
            if matched || self.stopped_by_string {
                reason = FinishReason::Stop;
            }
        }
        let filled = match (codec, layout.open_ended) {
            (Some(codec), false) => {
                let mut document = Vec::new();
                let mut cursor = 0;
                for hole in &layout.holes {
                    document.extend_from_slice(&canvas[cursor..hole.start]);
                    document.extend(
                        canvas[hole.clone()]
                            .iter()
                            .filter(|t| !stop_ids.contains(t) && **t != tokens.mask),
                    );
                    cursor = hole.end;
                }
                let end = canvas.len().saturating_sub(layout.padding).max(cursor);
                document.extend_from_slice(&canvas[cursor..end]);
                Some(codec.decode(&document)?)
            }
            _ => None,
        };
        if !layout.open_ended {
            text = holes.concat();
        }
        Ok(Candidate {
            index: self.index,
            seed: self.seed,
            hole_lengths: self.lengths.clone(),
            ids,
            text,
            holes,
            filled,
            finish_reason: reason,
            forwards,
        })
    }
}
