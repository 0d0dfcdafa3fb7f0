//! A cohort: sequences decoded in lockstep, one batched forward per step, sharing a canvas shape
//! and a step structure (sampler, cache mode, blocks, step counts) but each with its own settings,
//! RNG and stop tokens.
//!
//! **Batched == one by one.** Every per-sequence decision (schedule counts, selection, sampling,
//! early stop) is computed from that sequence's own row and RNG. The cohort only shares the forward
//! pass, and a forward's row `i` depends only on input row `i` (rows never attend to each other).
//! A sequence that finishes its block early waits (its row is still computed but commits nothing),
//! which changes nothing for it; finished and cancelled rows leave the batch at the next point
//! where the batch is rebuilt anyway (a block start, or every step without a cache).

use candle_core::Tensor;

use super::events::{FinishReason, SequenceEvent};
use super::layout::Layout;
pub(crate) use super::row_scoring::{score_positions, score_spec, LogitRows};
use super::select::SeededRng;
use super::settings::{CacheKind, SamplerKind, SamplerSettings};
use super::{block, dream, fast, llada, mdm};
use crate::model::{CacheMode, DiffusionModel, ForwardInput, KvCache, ModelInfo};
use crate::{Error, Result};

/// Special ids a sequence needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenIds {
    pub mask: u32,
    pub eos: Option<u32>,
    /// End-of-turn ids (e.g. LLaDA's `<|eot_id|>`); generation also stops at them.
    pub end_of_turn: Vec<u32>,
    /// The padding id: the mdm sampler masks keys holding it (Open-dLLM's `x != pad_token_id`).
    pub pad: Option<u32>,
}

impl TokenIds {
    pub fn stop_ids(&self) -> Vec<u32> {
        self.eos
            .iter()
            .copied()
            .chain(self.end_of_turn.iter().copied())
            .collect()
    }
}

/// One sequence to decode.
#[derive(Debug, Clone)]
pub struct SequenceRequest {
    pub layout: Layout,
    /// Key mask over the whole canvas (1 = real, 0 = left padding), for padded batches.
    pub attention_mask: Option<Vec<u32>>,
    pub settings: SamplerSettings,
    pub seed: u64,
    pub tokens: TokenIds,
}

/// The step structure sequences must share to be decoded in one cohort.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CohortKey {
    canvas_len: usize,
    prefix_len: usize,
    blocks: Vec<std::ops::Range<usize>>,
    sampler: SamplerKind,
    cache: CacheKind,
    steps: usize,
    cfg: bool,
    fixed_schedule: bool,
}

impl CohortKey {
    pub(crate) fn of(request: &SequenceRequest) -> Self {
        let settings = &request.settings;
        Self {
            canvas_len: request.layout.canvas.len(),
            prefix_len: request.layout.prefix_len(),
            blocks: request.layout.blocks.clone(),
            sampler: settings.sampler,
            cache: if settings.sampler == SamplerKind::Fast || settings.sampler.is_block_causal() {
                settings.cache
            } else {
                CacheKind::None
            },
            steps: if settings.sampler.is_block_causal() {
                settings.steps_per_block
            } else {
                settings.total_steps(request.layout.generated_len())
            },
            cfg: settings.cfg_scale > 0.0,
            fixed_schedule: settings.threshold.is_none(),
        }
    }
}

/// A sequence inside a cohort.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub id: u64,
    pub canvas: Vec<u32>,
    pub attention_mask: Option<Vec<u32>>,
    pub settings: SamplerSettings,
    pub rng: SeededRng,
    pub tokens: TokenIds,
    pub finished: Option<FinishReason>,
    pub cancelled: bool,
    pub finish_reported: bool,
    pub steps_taken: usize,
    pub forwards: usize,
    /// LLaDA / fixed schedules: tokens to commit at each step of the current block.
    pub counts: Vec<usize>,
    /// Block diffusion (LLaDA2): this row's current block is finished (it waits for the others).
    pub block_done: bool,
    /// LLaDA2.1: steps started with no mask left in the block.
    pub post_steps: usize,
    /// LLaDA2: steps taken in the current block.
    pub block_steps: usize,
}

impl Row {
    pub fn is_live(&self) -> bool {
        self.finished.is_none() && !self.cancelled
    }

    pub fn masked_in(&self, range: std::ops::Range<usize>, mask: u32) -> Vec<usize> {
        range.filter(|&p| self.canvas[p] == mask).collect()
    }
}

/// Sequences decoded in lockstep (see the module note).
#[derive(Debug)]
pub struct Cohort {
    pub(crate) key: CohortKey,
    pub(crate) layout: Layout,
    pub(crate) rows: Vec<Row>,
    pub(crate) info: ModelInfo,
    /// Current block (index into `layout.blocks`); Dream's reference sampler uses one pass.
    pub(crate) block: usize,
    /// Step within the current block (Dream reference: step overall).
    pub(crate) step: usize,
    /// Fast decoding: the batched cache and the rows it holds, in order.
    pub(crate) cache: Option<KvCache>,
    pub(crate) cached_rows: Vec<usize>,
    pub(crate) started: bool,
    /// Block diffusion: the current block's rows are initialised.
    pub(crate) started_block: bool,
    pub(crate) done: bool,
}

impl Cohort {
    pub fn new(info: &ModelInfo, first_id: u64, requests: Vec<SequenceRequest>) -> Result<Self> {
        let first = requests
            .first()
            .ok_or_else(|| Error::InvalidInput("zero sequences to decode".into()))?;
        let key = CohortKey::of(first);
        let layout = first.layout.clone();
        let mut cohort = Self {
            key,
            layout,
            rows: Vec::new(),
            info: info.clone(),
            block: 0,
            step: 0,
            cache: None,
            cached_rows: Vec::new(),
            started: false,
            started_block: false,
            done: false,
        };
        for (i, request) in requests.into_iter().enumerate() {
            cohort.push(first_id + i as u64, request)?;
        }
        Ok(cohort)
    }

    /// Whether `request` can join this cohort (same shape and step structure, not started yet).
    pub fn accepts(&self, request: &SequenceRequest) -> bool {
        !self.started && CohortKey::of(request) == self.key
    }

    /// Adds a sequence before the first step.
    pub fn push(&mut self, id: u64, request: SequenceRequest) -> Result<()> {
        if !self.accepts(&request) {
            return Err(Error::InvalidInput(
                "internal: sequence does not fit this cohort".into(),
            ));
        }
        validate_request(&request, &self.info)?;
        let attention_mask = match request.attention_mask {
            Some(mask) => Some(mask),
            None if request.settings.sampler == SamplerKind::Mdm => {
                mdm::pad_attention_mask(&request.layout.canvas, request.tokens.pad)
            }
            None => None,
        };
        self.rows.push(Row {
            id,
            canvas: request.layout.canvas.clone(),
            attention_mask,
            settings: request.settings,
            rng: SeededRng::new(request.seed),
            tokens: request.tokens,
            finished: None,
            cancelled: false,
            finish_reported: false,
            steps_taken: 0,
            forwards: 0,
            counts: Vec::new(),
            block_done: false,
            post_steps: 0,
            block_steps: 0,
        });
        Ok(())
    }

    pub fn is_done(&self) -> bool {
        self.done || self.rows.iter().all(|row| !row.is_live())
    }

    pub fn contains(&self, id: u64) -> bool {
        self.rows.iter().any(|row| row.id == id)
    }

    /// Cancels a sequence: it commits nothing more and leaves the batch at the next rebuild.
    pub fn cancel(&mut self, id: u64) -> Option<SequenceEvent> {
        let row = self
            .rows
            .iter_mut()
            .find(|row| row.id == id && row.is_live())?;
        row.cancelled = true;
        row.finished = Some(FinishReason::Cancelled);
        row.finish_reported = true;
        Some(SequenceEvent {
            sequence: id,
            step: row.steps_taken,
            committed: vec![],
            finished: row.finished,
        })
    }

    /// The canvases and attention masks of rows `live`, in that order: a forward's inputs.
    pub(crate) fn inputs(&self, live: &[usize]) -> (Vec<&[u32]>, Vec<Option<&[u32]>>) {
        live.iter()
            .map(|&i| {
                let row = &self.rows[i];
                (row.canvas.as_slice(), row.attention_mask.as_deref())
            })
            .unzip()
    }

    /// The canvas of a sequence as it stands.
    pub fn canvas(&self, id: u64) -> Option<&[u32]> {
        self.rows
            .iter()
            .find(|row| row.id == id)
            .map(|row| row.canvas.as_slice())
    }

    /// Forward passes a sequence took part in.
    pub fn forwards(&self, id: u64) -> Option<usize> {
        self.rows
            .iter()
            .find(|row| row.id == id)
            .map(|row| row.forwards)
    }

    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.rows.iter().map(|row| row.id)
    }

    /// One denoising step for every live sequence: one batched forward (two rows per sequence
    /// with classifier-free guidance).
    pub fn step(&mut self, model: &mut dyn DiffusionModel) -> Result<Vec<SequenceEvent>> {
        if self.is_done() {
            self.done = true;
            return Ok(Vec::new());
        }
        self.started = true;
        let committed = match self.key.sampler {
            SamplerKind::Llada => llada::step(self, model)?,
            SamplerKind::Dream => dream::step(self, model)?,
            SamplerKind::Fast => fast::step(self, model)?,
            SamplerKind::Mdm => mdm::step(self, model)?,
            SamplerKind::Llada2 | SamplerKind::Llada21 => block::step(self, model)?,
        };
        Ok(self.events(committed))
    }

    /// Builds events from per-row commits (`committed[i]` belongs to `rows[i]`), after the
    /// algorithm has set `finished` where a row ended.
    fn events(&mut self, mut committed: Vec<Vec<(usize, u32)>>) -> Vec<SequenceEvent> {
        let mut events = Vec::new();
        for (i, row) in self.rows.iter_mut().enumerate() {
            let mut mine = std::mem::take(&mut committed[i]);
            let just_finished = row.finished.is_some() && !row.finish_reported;
            if mine.is_empty() && !just_finished {
                continue;
            }
            mine.sort_unstable();
            events.push(SequenceEvent {
                sequence: row.id,
                step: row.steps_taken.saturating_sub(1),
                committed: mine,
                finished: if just_finished { row.finished } else { None },
            });
            row.finish_reported |= just_finished;
        }
        if self.rows.iter().all(|row| !row.is_live()) {
            self.done = true;
        }
        events
    }

    /// Runs one forward for `rows` over `span` of the canvas (extra unconditional rows for CFG are
    /// the caller's business via `canvases`).
    /// Logits come back for `rows` only ([`LogitRows::select`] picks a row's positions).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &self,
        model: &mut dyn DiffusionModel,
        canvases: &[&[u32]],
        masks: &[Option<&[u32]>],
        span_start: usize,
        span_len: usize,
        cache: CacheMode<'_>,
        rows: &LogitRows,
    ) -> Result<Tensor> {
        let total_len = self.layout.canvas.len();
        self.forward_window(
            model, canvases, masks, span_start, span_len, total_len, cache, rows,
        )
    }

    /// [`Cohort::forward`] over the first `total_len` positions of the canvas only (block
    /// diffusion runs the model on `x[:, :window_end]`). Block-causal samplers pass the mask.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_window(
        &self,
        model: &mut dyn DiffusionModel,
        canvases: &[&[u32]],
        masks: &[Option<&[u32]>],
        span_start: usize,
        span_len: usize,
        total_len: usize,
        cache: CacheMode<'_>,
        rows: &LogitRows,
    ) -> Result<Tensor> {
        let device = model.device().clone();
        let ids: Vec<u32> = canvases
            .iter()
            .flat_map(|canvas| canvas[span_start..span_start + span_len].iter().copied())
            .collect();
        let input_ids = Tensor::from_vec(ids, (canvases.len(), span_len), &device)?;
        let mask = if masks.iter().any(Option::is_some) {
            let values: Vec<u32> = masks
                .iter()
                .flat_map(|mask| match mask {
                    Some(mask) => mask[..total_len.min(mask.len())].to_vec(),
                    None => vec![1; total_len],
                })
                .collect();
            Some(Tensor::from_vec(
                values,
                (canvases.len(), total_len),
                &device,
            )?)
        } else {
            None
        };
        model.forward(ForwardInput {
            input_ids: &input_ids,
            attention_mask: mask.as_ref(),
            span_start,
            total_len,
            cache,
            // Block diffusion: blocks of the layout's block length, counted from position 0.
            block_causal: self
                .key
                .sampler
                .is_block_causal()
                .then(|| self.layout.blocks.first().map_or(1, |block| block.len())),
            logits_rows: Some(rows.rows()),
        })
    }
}

/// Refuses settings that cannot work on this canvas and model (also called by servers before
/// they queue a sequence, so that the refusal names the setting instead of failing on the engine
/// thread).
pub fn validate_request(request: &SequenceRequest, info: &ModelInfo) -> Result<()> {
    let settings = &request.settings;
    settings.validate()?;
    let layout = &request.layout;
    if layout.canvas.len() > info.max_sequence_length {
        return Err(Error::InvalidInput(format!(
            "the canvas has {} tokens (prompt and holes), more than the model's context of {}: \
             shorten the prompt or generate fewer tokens",
            layout.canvas.len(),
            info.max_sequence_length
        )));
    }
    if let Some(mask) = &request.attention_mask {
        if mask.len() != layout.canvas.len() {
            return Err(Error::InvalidInput(format!(
                "attention mask has {} entries for a canvas of {} tokens",
                mask.len(),
                layout.canvas.len()
            )));
        }
    }
    if info.block_causal != settings.sampler.is_block_causal() {
        let reason = if info.block_causal {
            format!(
                "this model is block-causal (LLaDA2 block diffusion): the {} sampler would run it \
                 bidirectionally; use the llada2 or llada21 sampler",
                settings.sampler.name()
            )
        } else {
            format!(
                "the {} sampler is for block-diffusion models (LLaDA2.0 / 2.1); this model is \
                 bidirectional: use fast, llada, dream or mdm",
                settings.sampler.name()
            )
        };
        return Err(Error::InvalidSetting {
            field: "sampler",
            reason,
        });
    }
    if settings.sampler.is_block_causal()
        && layout.padding + layout.generated_len() + layout.prefix_len() != layout.canvas.len()
    {
        return Err(Error::InvalidInput(
            "block-causal models fill one hole at the end of the text (after a fixed prefix)"
                .into(),
        ));
    }
    if request.tokens.mask as usize >= info.logits_width.max(info.vocab_size) {
        return Err(Error::InvalidInput(format!(
            "mask id {} is outside the vocabulary",
            request.tokens.mask
        )));
    }
    settings.validate_steps(layout.generated_len(), layout.blocks.len())
}

impl Cohort {
    pub(crate) fn key_steps(&self) -> usize {
        self.key.steps
    }

    pub(crate) fn key_cfg(&self) -> bool {
        self.key.cfg
    }

    pub(crate) fn key_cache(&self) -> CacheKind {
        self.key.cache
    }

    pub(crate) fn key_sampler(&self) -> SamplerKind {
        self.key.sampler
    }
}
