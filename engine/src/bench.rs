//! The fixed benchmark workload behind `hone bench`: the same cases on any build and machine, so
//! numbers compare. Each case decodes a random prompt (seeded, never special ids) with one sampler,
//! cache mode and step rule, after warm-up runs, and reports the mean over repetitions.
//!
//! Random weights are rarely confident, so threshold decoding commits about one token per step on
//! them; the fixed tokens-per-step cases (1, 2, 4) measure the cost of a step with and without a
//! cache honestly. EOS never stops a bench run early (every case generates its full length).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::DiffusionModel;
use crate::profile;
use crate::sampling::cohort::{Cohort, SequenceRequest, TokenIds};
use crate::sampling::{CacheKind, Layout, SamplerKind, SamplerSettings, SeededRng};
use crate::{Error, Result};

/// How a case decides how many tokens each step commits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum StepRule {
    /// The reference samplers' own schedule (steps = gen_length).
    Reference,
    TokensPerStep(usize),
    Threshold(f64),
}

/// One benchmark case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchCase {
    pub sampler: SamplerKind,
    pub cache: CacheKind,
    pub rule: StepRule,
    pub prompt_length: usize,
    pub gen_length: usize,
    pub block_length: usize,
    pub batch: usize,
}

/// Measured numbers of one case (means over repetitions).
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub case: BenchCase,
    /// Batched forward passes per run (the NFE of each sequence).
    pub forwards: usize,
    /// Tokens generated per run, all sequences together.
    pub tokens: usize,
    pub wall_seconds: f64,
    /// Mean wall time of one denoising step (forward + selection), in milliseconds.
    pub step_ms: f64,
    pub tokens_per_second: f64,
    pub tokens_per_forward: f64,
    pub repetitions: usize,
    /// Where a step's time went (`BenchPlan::breakdown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<StepBreakdown>,
}

/// Mean milliseconds per step in each part of a step (see `crate::profile`), and their shares of
/// the step's wall time; `host` is the rest (bookkeeping, selection, inputs, embedding).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct StepBreakdown {
    pub layers_ms: f64,
    pub head_ms: f64,
    pub scoring_ms: f64,
    pub host_ms: f64,
    pub layers_share: f64,
    pub head_share: f64,
    pub scoring_share: f64,
    pub host_share: f64,
}

impl StepBreakdown {
    fn new(times: profile::PhaseTimes, wall: Duration, steps: usize) -> Self {
        let per_step = |d: Duration| d.as_secs_f64() * 1000.0 / steps.max(1) as f64;
        let step = per_step(wall);
        let (layers, head, scoring) = (
            per_step(times.layers),
            per_step(times.head),
            per_step(times.scoring),
        );
        let host = (step - layers - head - scoring).max(0.0);
        let share = |ms: f64| if step > 0.0 { ms / step } else { 0.0 };
        Self {
            layers_ms: layers,
            head_ms: head,
            scoring_ms: scoring,
            host_ms: host,
            layers_share: share(layers),
            head_share: share(head),
            scoring_share: share(scoring),
            host_share: share(host),
        }
    }
}

/// Which cases to run.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    pub prompt_lengths: Vec<usize>,
    pub gen_lengths: Vec<usize>,
    pub block_length: usize,
    pub samplers: Vec<SamplerKind>,
    pub caches: Vec<CacheKind>,
    pub tokens_per_step: Vec<usize>,
    pub thresholds: Vec<f64>,
    pub batches: Vec<usize>,
    pub warmup: usize,
    pub repetitions: usize,
    /// Time the layers, head and scoring of every step ([`BenchResult::breakdown`]); on a GPU this
    /// synchronises the device around each part, which slows the step a little.
    pub breakdown: bool,
}

impl Default for BenchPlan {
    /// The fixed workload: prompts 64 / 512, generations 128 / 256, blocks of 32; every sampler; fast
    /// decoding with each cache mode at 1 / 2 / 4 tokens per step and threshold 0.9; batch 1; one
    /// warm-up and three repetitions.
    fn default() -> Self {
        Self {
            prompt_lengths: vec![64, 512],
            gen_lengths: vec![128, 256],
            block_length: 32,
            samplers: vec![SamplerKind::Llada, SamplerKind::Dream, SamplerKind::Fast],
            caches: vec![CacheKind::None, CacheKind::Prefix, CacheKind::Dual],
            tokens_per_step: vec![1, 2, 4],
            thresholds: vec![0.9],
            batches: vec![1],
            warmup: 1,
            repetitions: 3,
            breakdown: false,
        }
    }
}

impl BenchPlan {
    /// Every case of the plan, in a stable order.
    pub fn cases(&self) -> Vec<BenchCase> {
        let mut cases = Vec::new();
        for &prompt_length in &self.prompt_lengths {
            for &gen_length in &self.gen_lengths {
                for &batch in &self.batches {
                    let case = |sampler, cache, rule| BenchCase {
                        sampler,
                        cache,
                        rule,
                        prompt_length,
                        gen_length,
                        block_length: self.block_length.min(gen_length),
                        batch,
                    };
                    for &sampler in &self.samplers {
                        if sampler != SamplerKind::Fast {
                            cases.push(case(sampler, CacheKind::None, StepRule::Reference));
                            continue;
                        }
                        for &cache in &self.caches {
                            for &k in &self.tokens_per_step {
                                cases.push(case(sampler, cache, StepRule::TokensPerStep(k)));
                            }
                            for &threshold in &self.thresholds {
                                cases.push(case(sampler, cache, StepRule::Threshold(threshold)));
                            }
                        }
                    }
                }
            }
        }
        cases
    }
}

/// Runs `plan` on `model`, calling `on_result` after each case.
pub fn run(
    model: &mut dyn DiffusionModel,
    tokens: &TokenIds,
    plan: &BenchPlan,
    on_result: &mut dyn FnMut(&BenchResult),
) -> Result<Vec<BenchResult>> {
    if plan.repetitions == 0 {
        return Err(Error::InvalidInput("repetitions must be at least 1".into()));
    }
    let mut results = Vec::new();
    for case in plan.cases() {
        let result = run_case(model, tokens, &case, plan)?;
        on_result(&result);
        results.push(result);
    }
    Ok(results)
}

fn settings_for(case: &BenchCase) -> SamplerSettings {
    let mut settings = SamplerSettings {
        sampler: case.sampler,
        gen_length: case.gen_length,
        block_length: case.block_length,
        cache: case.cache,
        stop_at_eos: false,
        threshold: None,
        tokens_per_step: None,
        steps: Some(case.gen_length),
        ..SamplerSettings::default()
    };
    match case.rule {
        StepRule::Reference => {}
        StepRule::TokensPerStep(k) => settings.tokens_per_step = Some(k),
        StepRule::Threshold(t) => settings.threshold = Some(t),
    }
    settings
}

/// A seeded random prompt of ordinary ids (no mask / EOS / end-of-turn).
pub fn random_prompt(length: usize, vocab: usize, tokens: &TokenIds, seed: u64) -> Vec<u32> {
    let mut rng = SeededRng::new(seed);
    let specials = tokens.stop_ids();
    let upper = vocab.max(2) as u64;
    let mut prompt = Vec::with_capacity(length);
    while prompt.len() < length {
        let id = (rng.next_u64() % upper) as u32;
        if id != tokens.mask && !specials.contains(&id) {
            prompt.push(id);
        }
    }
    prompt
}

fn run_case(
    model: &mut dyn DiffusionModel,
    tokens: &TokenIds,
    case: &BenchCase,
    plan: &BenchPlan,
) -> Result<BenchResult> {
    let (warmup, repetitions) = (plan.warmup, plan.repetitions);
    profile::set_enabled(plan.breakdown);
    let result = time_case(model, tokens, case, warmup, repetitions);
    profile::set_enabled(false);
    let (mut result, times, wall) = result?;
    if plan.breakdown {
        result.breakdown = Some(StepBreakdown::new(
            times,
            wall,
            result.forwards * repetitions,
        ));
    }
    Ok(result)
}

/// The timed runs of a case, with the phase times and wall time of the timed runs together.
fn time_case(
    model: &mut dyn DiffusionModel,
    tokens: &TokenIds,
    case: &BenchCase,
    warmup: usize,
    repetitions: usize,
) -> Result<(BenchResult, profile::PhaseTimes, Duration)> {
    let info = model.info().clone();
    let settings = settings_for(case);
    settings.validate_generation(case.prompt_length, info.max_sequence_length)?;
    let mut total = Duration::ZERO;
    let mut forwards = 0;
    let mut generated = 0;
    for run in 0..warmup + repetitions {
        let requests: Vec<SequenceRequest> = (0..case.batch)
            .map(|i| {
                let prompt =
                    random_prompt(case.prompt_length, info.vocab_size, tokens, 1000 + i as u64);
                Layout::generation(&prompt, case.gen_length, case.block_length, tokens.mask).map(
                    |layout| SequenceRequest {
                        layout,
                        attention_mask: None,
                        settings: settings.clone(),
                        seed: i as u64,
                        tokens: tokens.clone(),
                    },
                )
            })
            .collect::<Result<_>>()?;
        let mut cohort = Cohort::new(&info, 0, requests)?;
        if run == warmup {
            profile::reset();
        }
        let started = Instant::now();
        let mut steps = 0;
        while !cohort.is_done() {
            cohort.step(model)?;
            steps += 1;
        }
        let elapsed = started.elapsed();
        if run >= warmup {
            total += elapsed;
            forwards = steps;
            generated = case.gen_length * case.batch;
        }
    }
    let times = profile::snapshot();
    let wall_seconds = total.as_secs_f64() / repetitions as f64;
    let result = BenchResult {
        case: case.clone(),
        forwards,
        tokens: generated,
        wall_seconds,
        step_ms: if forwards > 0 {
            wall_seconds * 1000.0 / forwards as f64
        } else {
            0.0
        },
        tokens_per_second: if wall_seconds > 0.0 {
            generated as f64 / wall_seconds
        } else {
            0.0
        },
        tokens_per_forward: if forwards > 0 {
            generated as f64 / forwards as f64
        } else {
            0.0
        },
        repetitions,
        breakdown: None,
    };
    Ok((result, times, total))
}
