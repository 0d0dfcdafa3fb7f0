//! The canvas a sequence is decoded on: fixed tokens (prompt, infill context) and holes of mask
//! tokens, and the semi-autoregressive blocks the holes are decoded in, left to right.
//!
//! Open-ended generation is the one-hole case `prompt + gen_length masks`; infill is `prefix + k
//! masks + suffix`; multi-segment infill is any sequence of fixed pieces and holes.

use std::ops::Range;

use crate::{Error, Result};

/// One piece of a canvas, at the token level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Ids(Vec<u32>),
    /// A hole of this many mask tokens.
    Hole(usize),
}

/// A canvas and its decoding order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The starting canvas: fixed ids, and the mask id in every hole.
    pub canvas: Vec<u32>,
    /// The holes, in order.
    pub holes: Vec<Range<usize>>,
    /// Blocks decoded one after another (each lies inside one hole).
    pub blocks: Vec<Range<usize>>,
    /// True when nothing fixed follows the last hole: the sequence may stop early at EOS.
    pub open_ended: bool,
    /// Trailing canvas positions after the content (block diffusion pads its canvas to whole
    /// blocks): decoded like the rest, never part of the text.
    pub padding: usize,
}

impl Layout {
    /// `prompt + gen_length` masks, in blocks of `block_length`.
    pub fn generation(
        prompt: &[u32],
        gen_length: usize,
        block_length: usize,
        mask_id: u32,
    ) -> Result<Self> {
        Self::from_pieces(
            &[Piece::Ids(prompt.to_vec()), Piece::Hole(gen_length)],
            block_length,
            mask_id,
        )
    }

    /// Block diffusion's canvas (LLaDA2.0 / 2.1): `prompt + gen_length` masks padded with masks up
    /// to a whole number of blocks (`ceil((prompt + gen) / block) * block` tokens), blocks counted
    /// from position 0 (the prompt's last partial block is decoded as part of the first block; its
    /// prompt positions stay fixed). The hole is the `gen_length` tokens after the prompt; the
    /// padding after it is decoded too (the references return it) but is not part of the output.
    pub fn block_aligned(
        prompt: &[u32],
        gen_length: usize,
        block_length: usize,
        mask_id: u32,
    ) -> Result<Self> {
        if block_length == 0 {
            return Err(Error::InvalidInput(
                "block_length must be at least 1".into(),
            ));
        }
        if gen_length == 0 {
            return Err(Error::InvalidInput(
                "nothing to generate: gen_length is 0".into(),
            ));
        }
        if prompt.contains(&mask_id) {
            return Err(Error::InvalidInput(format!(
                "the prompt contains the mask token (id {mask_id}): remove it"
            )));
        }
        let total = (prompt.len() + gen_length).div_ceil(block_length) * block_length;
        let mut canvas = prompt.to_vec();
        canvas.resize(total, mask_id);
        let first = prompt.len() / block_length;
        let blocks = (first..total / block_length)
            .map(|b| b * block_length..(b + 1) * block_length)
            .collect();
        Ok(Self {
            padding: total - prompt.len() - gen_length,
            canvas,
            holes: std::iter::once(prompt.len()..prompt.len() + gen_length).collect(),
            blocks,
            open_ended: true,
        })
    }

    /// Any sequence of fixed pieces and holes. Each hole is split into blocks of `block_length`
    /// (its last block may be shorter).
    pub fn from_pieces(pieces: &[Piece], block_length: usize, mask_id: u32) -> Result<Self> {
        if block_length == 0 {
            return Err(Error::InvalidInput(
                "block_length must be at least 1".into(),
            ));
        }
        let mut canvas = Vec::new();
        let mut holes = Vec::new();
        let mut blocks = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Ids(ids) => {
                    if ids.contains(&mask_id) {
                        return Err(Error::InvalidInput(format!(
                            "the fixed text contains the mask token (id {mask_id}): remove it or use a hole"
                        )));
                    }
                    canvas.extend_from_slice(ids);
                }
                Piece::Hole(0) => {}
                Piece::Hole(len) => {
                    let start = canvas.len();
                    canvas.extend(std::iter::repeat_n(mask_id, *len));
                    holes.push(start..start + len);
                    let mut block_start = start;
                    while block_start < start + len {
                        let block_end = (block_start + block_length).min(start + len);
                        blocks.push(block_start..block_end);
                        block_start = block_end;
                    }
                }
            }
        }
        if holes.is_empty() {
            return Err(Error::InvalidInput(
                "nothing to generate: the canvas has no hole".into(),
            ));
        }
        let open_ended = holes.last().is_some_and(|hole| hole.end == canvas.len());
        Ok(Self {
            canvas,
            holes,
            blocks,
            open_ended,
            padding: 0,
        })
    }

    /// Positions before the first hole.
    pub fn prefix_len(&self) -> usize {
        self.holes
            .first()
            .map_or(self.canvas.len(), |hole| hole.start)
    }

    pub fn generated_len(&self) -> usize {
        self.holes.iter().map(|hole| hole.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn generation_blocks() {
        let layout = Layout::generation(&[1, 2, 3], 8, 4, 9).unwrap();
        assert_eq!(layout.canvas, vec![1, 2, 3, 9, 9, 9, 9, 9, 9, 9, 9]);
        assert_eq!(layout.blocks, vec![3..7, 7..11]);
        assert!(layout.open_ended);
        assert_eq!(layout.prefix_len(), 3);
    }

    #[test]
    fn block_aligned_pads_to_whole_blocks_from_zero() {
        let layout = Layout::block_aligned(&[1, 2, 3, 4, 5, 6], 5, 4, 9).unwrap();
        assert_eq!(layout.canvas.len(), 12);
        assert_eq!(layout.canvas[..6], [1, 2, 3, 4, 5, 6]);
        assert!(layout.canvas[6..].iter().all(|&t| t == 9));
        assert_eq!(layout.blocks, vec![4..8, 8..12]);
        assert_eq!(layout.holes, vec![6..11]);
        assert_eq!(layout.generated_len(), 5);
        assert_eq!(layout.padding, 1);
    }

    #[test]
    fn multi_segment_infill() {
        let pieces = [
            Piece::Ids(vec![1]),
            Piece::Hole(3),
            Piece::Ids(vec![2, 2]),
            Piece::Hole(2),
            Piece::Ids(vec![3]),
        ];
        let layout = Layout::from_pieces(&pieces, 2, 9).unwrap();
        assert_eq!(layout.canvas, vec![1, 9, 9, 9, 2, 2, 9, 9, 3]);
        assert_eq!(layout.holes, vec![1..4, 6..8]);
        assert_eq!(layout.blocks, vec![1..3, 3..4, 6..8]);
        assert!(!layout.open_ended);
        assert!(Layout::from_pieces(&[Piece::Ids(vec![1])], 2, 9).is_err());
        assert!(Layout::from_pieces(&[Piece::Ids(vec![9]), Piece::Hole(1)], 2, 9).is_err());
    }
}
