//! Sampler tests: parity with the reference samplers on the tiny checkpoints of `tests/fixtures/parity`,
//! and behaviour (batched == one by one, cache plumbing, infill, determinism, early stop,
//! streaming, the step-level decoder, bad settings) on a deterministic toy model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use hone_engine::generate::{self, GenerateEvent, GenerateRequest, Prompt, Segment, TokenCodec};
use hone_engine::model::{Architecture, CacheMode, DiffusionModel, ForwardInput, ModelInfo};
use hone_engine::sampling::cases::CaseFile;
use hone_engine::sampling::cohort::TokenIds;
use hone_engine::sampling::{
    BatchDecoder, CacheKind, Cohort, DreamAlgorithm, EosRules, FinishReason, Layout, Piece,
    SamplerKind, SamplerSettings, SequenceRequest,
};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// A toy model: bidirectional, deterministic, with a real (if trivial) key/value cache.
// ---------------------------------------------------------------------------------------------

const VOCAB: usize = 100;
const MASK: u32 = 99;
const EOS: u32 = 96;

struct ToyModel {
    info: ModelInfo,
    device: Device,
    /// EOS gets a large logit at positions >= this.
    eos_from: usize,
    forwards: usize,
    /// Positions run through the network (span lengths summed over forwards and rows).
    positions_computed: usize,
    /// Rows of logits returned (the output head's work), summed over forwards and batch rows.
    logit_rows: usize,
}

impl ToyModel {
    fn new(shift: bool) -> Self {
        Self {
            info: ModelInfo {
                architecture: if shift {
                    Architecture::Dream
                } else {
                    Architecture::Llada
                },
                vocab_size: VOCAB,
                logits_width: VOCAB,
                max_sequence_length: 256,
                shift_logits: shift,
                block_causal: false,
                total_parameters: 0,
                active_parameters: 0,
                num_layers: 1,
                hidden_size: 8,
                num_heads: 1,
                num_kv_heads: 1,
                head_dim: 1,
            },
            device: Device::Cpu,
            eos_from: usize::MAX,
            forwards: 0,
            positions_computed: 0,
            logit_rows: 0,
        }
    }

    /// A block-diffusion toy (LLaDA2-like): no shift, block-causal under `ForwardInput::block_causal`.
    fn block_causal() -> Self {
        let mut model = Self::new(false);
        model.info.architecture = Architecture::Llada2;
        model.info.block_causal = true;
        model
    }

    fn logits_at(
        &self,
        position: usize,
        keys: &[f32],
        key_mask: &[f32],
        block: Option<usize>,
    ) -> Vec<f32> {
        let mut context = 0f32;
        for (j, (&k, &m)) in keys.iter().zip(key_mask).enumerate() {
            if block.is_some_and(|b| j / b > position / b) {
                continue;
            }
            context += m * k / (1.0 + (position as f32 - j as f32).abs());
        }
        (0..VOCAB)
            .map(|v| {
                if v as u32 == MASK {
                    return -20.0;
                }
                if v as u32 == EOS && position >= self.eos_from {
                    return 30.0;
                }
                3.0 * (0.37 * v as f32 * (1.0 + (position % 5) as f32) + 0.013 * context).cos()
            })
            .collect()
    }
}

impl DiffusionModel for ToyModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn device(&self) -> &Device {
        &self.device
    }
    fn dtype(&self) -> DType {
        DType::F32
    }
    fn forward(&mut self, input: ForwardInput<'_>) -> hone_engine::Result<Tensor> {
        self.forwards += 1;
        let (batch, n) = input.input_ids.dims2()?;
        self.positions_computed += batch * n;
        assert_eq!(
            input.block_causal.is_some(),
            self.info.block_causal,
            "block-causal models get the block mask, others never"
        );
        let total = input.total_len;
        let ids = input.input_ids.to_vec2::<u32>()?;
        let fresh: Vec<Vec<f32>> = ids
            .iter()
            .map(|row| row.iter().map(|&t| t as f32).collect())
            .collect();
        let key_mask: Vec<Vec<f32>> = match input.attention_mask {
            Some(mask) => mask.to_dtype(DType::F32)?.to_vec2::<f32>()?,
            None => vec![vec![1.0; total]; batch],
        };
        let keys: Vec<Vec<f32>> = match input.cache {
            CacheMode::None => {
                assert_eq!((input.span_start, n), (0, total));
                fresh
            }
            CacheMode::Record(cache) => {
                assert_eq!((input.span_start, n), (0, total));
                let t = Tensor::new(fresh.clone(), &Device::Cpu)?.reshape((batch, 1, total, 1))?;
                cache.layers = vec![Some((t.clone(), t))];
                fresh
            }
            CacheMode::Prefix(cache) => {
                assert_eq!(input.span_start + n, total, "prefix spans run to the end");
                let (k, _) = cache.layers[0].as_ref().expect("recorded");
                let cached = k.reshape((batch, total))?.to_vec2::<f32>()?;
                cached
                    .iter()
                    .zip(&fresh)
                    .map(|(c, f)| c[..input.span_start].iter().chain(f).copied().collect())
                    .collect()
            }
            CacheMode::Extend(cache) => {
                assert_eq!(input.span_start + n, total, "extend spans run to the end");
                assert_eq!(
                    cache.len(),
                    input.span_start,
                    "the cache holds exactly the prefix"
                );
                let cached: Vec<Vec<f32>> = match cache.layers[0].as_ref() {
                    Some((k, _)) => k.reshape((batch, input.span_start))?.to_vec2::<f32>()?,
                    None => vec![Vec::new(); batch],
                };
                let keys: Vec<Vec<f32>> = cached
                    .iter()
                    .zip(&fresh)
                    .map(|(c, f)| c.iter().chain(f).copied().collect())
                    .collect();
                let t = Tensor::new(keys.clone(), &Device::Cpu)?.reshape((batch, 1, total, 1))?;
                cache.layers = vec![Some((t.clone(), t))];
                keys
            }
            CacheMode::Dual(cache) => {
                let (k, _) = cache.layers[0].as_ref().expect("recorded");
                let mut keys = k.reshape((batch, total))?.to_vec2::<f32>()?;
                for (row, f) in keys.iter_mut().zip(&fresh) {
                    row[input.span_start..input.span_start + n].copy_from_slice(f);
                }
                let t = Tensor::new(keys.clone(), &Device::Cpu)?.reshape((batch, 1, total, 1))?;
                cache.layers = vec![Some((t.clone(), t))];
                keys
            }
        };
        let rows: Vec<usize> = match input.logits_rows {
            Some(rows) => {
                assert!(
                    !rows.is_empty()
                        && rows.windows(2).all(|w| w[0] < w[1])
                        && rows[rows.len() - 1] < n,
                    "logits_rows {rows:?} must be ascending and inside the span of {n}"
                );
                rows.to_vec()
            }
            None => (0..n).collect(),
        };
        self.logit_rows += batch * rows.len();
        let mut out = Vec::with_capacity(batch * rows.len() * VOCAB);
        for b in 0..batch {
            for &r in &rows {
                let p = input.span_start + r;
                out.extend(self.logits_at(p, &keys[b], &key_mask[b], input.block_causal));
            }
        }
        Ok(Tensor::from_vec(
            out,
            (batch, rows.len(), VOCAB),
            &Device::Cpu,
        )?)
    }
}

fn toy_tokens() -> TokenIds {
    TokenIds {
        mask: MASK,
        eos: Some(EOS),
        end_of_turn: vec![],
        pad: None,
    }
}

/// Printable ASCII as ids 0..95; 96.. are special.
struct CharCodec;

impl TokenCodec for CharCodec {
    fn encode(&self, text: &str) -> hone_engine::Result<Vec<u32>> {
        Ok(text
            .bytes()
            .map(|b| u32::from(b.clamp(32, 126) - 32))
            .collect())
    }
    fn decode(&self, ids: &[u32]) -> hone_engine::Result<String> {
        Ok(ids
            .iter()
            .filter(|&&id| id < 95)
            .map(|&id| char::from(id as u8 + 32))
            .collect())
    }
}

fn prompt(seed: u32, len: usize) -> Vec<u32> {
    (0..len as u32).map(|i| (i * 7 + seed * 13) % 90).collect()
}

fn request(prompt: &[u32], settings: &SamplerSettings, seed: u64) -> SequenceRequest {
    SequenceRequest {
        layout: Layout::generation(prompt, settings.gen_length, settings.block_length, MASK)
            .unwrap(),
        attention_mask: None,
        settings: settings.clone(),
        seed,
        tokens: toy_tokens(),
    }
}

fn run_cohort(model: &mut ToyModel, requests: Vec<SequenceRequest>) -> Vec<Vec<u32>> {
    let n = requests.len() as u64;
    let info = model.info().clone();
    let mut cohort = Cohort::new(&info, 0, requests).unwrap();
    while !cohort.is_done() {
        cohort.step(model).unwrap();
    }
    (0..n)
        .map(|id| cohort.canvas(id).unwrap().to_vec())
        .collect()
}

fn all_settings() -> Vec<(String, SamplerSettings, bool)> {
    let base = SamplerSettings {
        gen_length: 16,
        block_length: 8,
        stop_at_eos: false,
        ..SamplerSettings::default()
    };
    let mut out = Vec::new();
    for shift in [false, true] {
        out.push((
            "llada".into(),
            SamplerSettings {
                sampler: SamplerKind::Llada,
                steps: Some(8),
                threshold: None,
                ..base.clone()
            },
            shift,
        ));
        out.push((
            "llada-cfg".into(),
            SamplerSettings {
                sampler: SamplerKind::Llada,
                steps: Some(8),
                threshold: None,
                cfg_scale: 0.5,
                ..base.clone()
            },
            shift,
        ));
        for alg in [
            DreamAlgorithm::MaskgitPlus,
            DreamAlgorithm::TopkMargin,
            DreamAlgorithm::Entropy,
            DreamAlgorithm::Origin,
        ] {
            out.push((
                format!("dream-{alg:?}"),
                SamplerSettings {
                    sampler: SamplerKind::Dream,
                    steps: Some(6),
                    alg,
                    ..base.clone()
                },
                shift,
            ));
        }
        for alg in [DreamAlgorithm::P2, DreamAlgorithm::Entropy] {
            out.push((
                format!("mdm-{alg:?}"),
                SamplerSettings {
                    sampler: SamplerKind::Mdm,
                    steps: Some(6),
                    alg,
                    threshold: None,
                    ..base.clone()
                },
                shift,
            ));
        }
        for cache in [CacheKind::None, CacheKind::Prefix, CacheKind::Dual] {
            out.push((
                format!("fast-{cache:?}"),
                SamplerSettings {
                    cache,
                    threshold: Some(0.2),
                    ..base.clone()
                },
                shift,
            ));
            out.push((
                format!("fast-{cache:?}-k2"),
                SamplerSettings {
                    cache,
                    threshold: None,
                    tokens_per_step: Some(2),
                    ..base.clone()
                },
                shift,
            ));
        }
    }
    out
}

#[test]
fn batched_equals_one_by_one() {
    for (name, settings, shift) in all_settings() {
        for temperature in [0.0, 0.8] {
            let settings = SamplerSettings {
                temperature,
                ..settings.clone()
            };
            let prompts = [prompt(1, 6), prompt(2, 6), prompt(3, 6)];
            let requests: Vec<_> = prompts
                .iter()
                .enumerate()
                .map(|(i, p)| request(p, &settings, 10 + i as u64))
                .collect();
            let batched = run_cohort(&mut ToyModel::new(shift), requests.clone());
            for (i, single) in requests.into_iter().enumerate() {
                let alone = run_cohort(&mut ToyModel::new(shift), vec![single]);
                assert_eq!(
                    batched[i], alone[0],
                    "{name} shift={shift} t={temperature} row {i}"
                );
            }
            for canvas in &batched {
                assert!(!canvas.contains(&MASK), "{name}: every mask is filled");
            }
        }
    }
}

#[test]
fn same_seed_same_result_and_seeds_differ() {
    for (name, settings, shift) in all_settings() {
        let settings = SamplerSettings {
            temperature: 1.0,
            ..settings
        };
        let p = prompt(4, 5);
        let a = run_cohort(&mut ToyModel::new(shift), vec![request(&p, &settings, 1)]);
        let b = run_cohort(&mut ToyModel::new(shift), vec![request(&p, &settings, 1)]);
        assert_eq!(a, b, "{name}");
        let others: Vec<_> = (2..6)
            .map(|seed| {
                run_cohort(
                    &mut ToyModel::new(shift),
                    vec![request(&p, &settings, seed)],
                )
            })
            .collect();
        assert!(
            others.iter().any(|o| *o != a),
            "{name}: different seeds should give different samples"
        );
    }
}

#[test]
fn infill_never_changes_fixed_tokens() {
    for (name, settings, shift) in all_settings() {
        let pieces = [
            Piece::Ids(prompt(5, 4)),
            Piece::Hole(8),
            Piece::Ids(prompt(6, 3)),
            Piece::Hole(8),
            Piece::Ids(prompt(7, 2)),
        ];
        let layout = Layout::from_pieces(&pieces, settings.block_length, MASK).unwrap();
        let request = SequenceRequest {
            layout: layout.clone(),
            attention_mask: None,
            settings,
            seed: 3,
            tokens: toy_tokens(),
        };
        let out = run_cohort(&mut ToyModel::new(shift), vec![request]).remove(0);
        assert_eq!(out.len(), layout.canvas.len());
        for (position, (&before, &after)) in layout.canvas.iter().zip(&out).enumerate() {
            if before == MASK {
                assert_ne!(after, MASK, "{name}: hole position {position} filled");
            } else {
                assert_eq!(before, after, "{name}: fixed position {position} unchanged");
            }
        }
    }
}

/// Samplers ask the model for the rows they score (masked positions of the block), not every
/// position of the span; results are unchanged by that (the other tests).
#[test]
fn samplers_ask_only_for_the_logits_they_score() {
    let p = prompt(4, 6);
    for (name, settings, shift) in all_settings() {
        let mut model = ToyModel::new(shift);
        run_cohort(&mut model, vec![request(&p, &settings, 1)]);
        assert!(
            model.logit_rows < model.positions_computed,
            "{name}: {} logit rows for {} positions",
            model.logit_rows,
            model.positions_computed
        );
    }
}

/// Where fast decoding with `cache none` is defined to equal the fixed-schedule reference (see
/// the `sampling::fast` module docs).
#[test]
fn fast_without_cache_equals_the_llada_reference() {
    let p = prompt(8, 7);
    for (gen_length, block_length, steps) in [(16, 8, 8), (16, 16, 16), (24, 8, 12)] {
        let reference = SamplerSettings {
            sampler: SamplerKind::Llada,
            gen_length,
            block_length,
            steps: Some(steps),
            threshold: None,
            stop_at_eos: false,
            ..SamplerSettings::default()
        };
        let fast = SamplerSettings {
            sampler: SamplerKind::Fast,
            cache: CacheKind::None,
            ..reference.clone()
        };
        let a = run_cohort(&mut ToyModel::new(false), vec![request(&p, &reference, 0)]);
        let b = run_cohort(&mut ToyModel::new(false), vec![request(&p, &fast, 0)]);
        assert_eq!(
            a, b,
            "linear schedule, gen {gen_length} block {block_length} steps {steps}"
        );

        // A threshold nothing reaches commits one token per step: the reference with steps = gen.
        let one_per_step = SamplerSettings {
            steps: Some(gen_length),
            ..reference.clone()
        };
        let threshold = SamplerSettings {
            threshold: Some(1.0),
            steps: None,
            ..fast.clone()
        };
        let mut model = ToyModel::new(false);
        let c = run_cohort(&mut model, vec![request(&p, &threshold, 0)]);
        assert_eq!(model.forwards, gen_length, "one token per forward");
        let d = run_cohort(
            &mut ToyModel::new(false),
            vec![request(&p, &one_per_step, 0)],
        );
        assert_eq!(c, d, "threshold 1.0, gen {gen_length} block {block_length}");
    }
}

#[test]
fn threshold_decoding_commits_at_least_one_and_uses_fewer_forwards() {
    let p = prompt(9, 6);
    for cache in [CacheKind::None, CacheKind::Prefix, CacheKind::Dual] {
        let settings = SamplerSettings {
            gen_length: 32,
            block_length: 8,
            threshold: Some(0.025),
            cache,
            stop_at_eos: false,
            ..SamplerSettings::default()
        };
        let mut model = ToyModel::new(false);
        let out = run_cohort(&mut model, vec![request(&p, &settings, 0)]);
        assert!(!out[0].contains(&MASK));
        assert!(
            model.forwards >= 4 && model.forwards < 32,
            "{cache:?}: {} forwards",
            model.forwards
        );
    }
}

#[test]
fn fast_decoding_stops_at_the_block_with_eos() {
    let p = prompt(10, 4);
    let settings = SamplerSettings {
        gen_length: 32,
        block_length: 8,
        tokens_per_step: Some(2),
        threshold: None,
        ..SamplerSettings::default()
    };
    for shift in [false, true] {
        let mut model = ToyModel::new(shift);
        model.eos_from = p.len() + 10; // inside the second block
        let info = model.info().clone();
        let mut cohort = Cohort::new(&info, 0, vec![request(&p, &settings, 0)]).unwrap();
        let mut last = None;
        while !cohort.is_done() {
            for event in cohort.step(&mut model).unwrap() {
                if event.finished.is_some() {
                    last = event.finished;
                }
            }
        }
        assert_eq!(last, Some(FinishReason::Stop));
        let canvas = cohort.canvas(0).unwrap();
        assert!(
            canvas[p.len() + 16..].iter().all(|&t| t == MASK),
            "blocks after the EOS block are never decoded"
        );
        // LLaDA: two blocks of four steps; Dream: the first-token rule adds a step per block.
        assert_eq!(model.forwards, if shift { 10 } else { 8 });
    }
}

#[test]
fn decoder_adds_and_removes_between_steps() {
    let settings = SamplerSettings {
        gen_length: 16,
        block_length: 8,
        tokens_per_step: Some(1),
        threshold: None,
        stop_at_eos: false,
        temperature: 0.7,
        ..SamplerSettings::default()
    };
    let mut model = ToyModel::new(true);
    let info = model.info().clone();
    let mut decoder = BatchDecoder::new(&info, 8);
    let a = decoder.add(request(&prompt(1, 5), &settings, 1)).unwrap();
    let c = decoder.add(request(&prompt(3, 5), &settings, 3)).unwrap();
    decoder.step(&mut model).unwrap();
    decoder.step(&mut model).unwrap();
    let b = decoder.add(request(&prompt(2, 5), &settings, 2)).unwrap();
    let cancelled = decoder.remove(a).unwrap();
    assert_eq!(cancelled.finished, Some(FinishReason::Cancelled));
    assert!(decoder.remove(a).is_none(), "already cancelled");
    let mut finished = Vec::new();
    let mut committed: std::collections::HashMap<u64, Vec<usize>> = Default::default();
    while !decoder.is_idle() {
        for event in decoder.step(&mut model).unwrap() {
            committed
                .entry(event.sequence)
                .or_default()
                .extend(event.committed.iter().map(|(p, _)| *p));
            if event.finished.is_some() {
                finished.push(event.sequence);
            }
        }
    }
    assert!(finished.contains(&b) && finished.contains(&c) && !finished.contains(&a));
    for (id, (p, seed)) in [(b, (prompt(2, 5), 2)), (c, (prompt(3, 5), 3))] {
        let alone = run_cohort(&mut ToyModel::new(true), vec![request(&p, &settings, seed)]);
        assert_eq!(
            decoder.canvas(id).unwrap(),
            alone[0].as_slice(),
            "sequence {id} unaffected by the others"
        );
    }
    // b's events name every generated position exactly once.
    let mut positions = committed[&b].clone();
    positions.sort_unstable();
    assert_eq!(positions, (5..21).collect::<Vec<_>>());
}

#[test]
fn generate_streams_the_committed_prefix_and_applies_stop_strings() {
    let mut model = ToyModel::new(false);
    let settings = SamplerSettings {
        gen_length: 16,
        block_length: 4,
        tokens_per_step: Some(1),
        threshold: None,
        stop_at_eos: false,
        ..SamplerSettings::default()
    };
    let request = GenerateRequest {
        prompt: Prompt::Text("def f(x):".into()),
        settings,
        candidates: 3,
        seed: 5,
        stop: vec![],
    };
    let mut streamed: Vec<Vec<String>> = vec![Vec::new(); 3];
    let mut on_event = |event: &GenerateEvent<'_>| {
        if let GenerateEvent::Step {
            candidate,
            text_so_far,
            ..
        } = event
        {
            streamed[*candidate].push(text_so_far.to_string());
        }
    };
    let output = generate::generate(
        &mut model,
        Some(&CharCodec),
        &toy_tokens(),
        &request,
        &mut on_event,
        None,
    )
    .unwrap();
    assert_eq!(output.candidates.len(), 3);
    assert_eq!(output.usage.prompt_tokens, 9);
    assert_eq!(
        output.usage.forward_passes, 16,
        "three candidates share every forward"
    );
    for (i, candidate) in output.candidates.iter().enumerate() {
        let texts = &streamed[i];
        for pair in texts.windows(2) {
            assert!(
                pair[1].starts_with(&pair[0]),
                "the streamed prefix only grows: {pair:?}"
            );
        }
        assert_eq!(texts.last().unwrap(), &candidate.text);
    }

    // A stop string cuts the text and ends the candidate.
    let first = output.candidates[0].text.clone();
    let stop: String = first.chars().skip(3).take(2).collect();
    let request = GenerateRequest {
        stop: vec![stop.clone()],
        candidates: 1,
        seed: 5,
        ..request
    };
    let output = generate::generate(
        &mut ToyModel::new(false),
        Some(&CharCodec),
        &toy_tokens(),
        &request,
        &mut |_| {},
        None,
    )
    .unwrap();
    assert_eq!(output.candidates[0].finish_reason, FinishReason::Stop);
    assert!(!output.candidates[0].text.contains(&stop));
    assert!(first.starts_with(&output.candidates[0].text));
}

#[test]
fn generate_infills_several_lengths_in_one_call() {
    let settings = SamplerSettings {
        block_length: 4,
        threshold: Some(0.3),
        ..SamplerSettings::default()
    };
    let request = GenerateRequest {
        prompt: Prompt::Segments(vec![
            Segment::Text("fn main() {".into()),
            Segment::Hole {
                lengths: vec![4, 8, 12],
            },
            Segment::Text("} ".into()),
            Segment::Hole { lengths: vec![4] },
        ]),
        settings,
        candidates: 2,
        seed: 0,
        stop: vec![],
    };
    let output = generate::generate(
        &mut ToyModel::new(true),
        Some(&CharCodec),
        &toy_tokens(),
        &request,
        &mut |_| {},
        None,
    )
    .unwrap();
    assert_eq!(output.candidates.len(), 6);
    let lengths: Vec<Vec<usize>> = output
        .candidates
        .iter()
        .map(|c| c.hole_lengths.clone())
        .collect();
    assert_eq!(
        lengths,
        vec![
            vec![4, 4],
            vec![4, 4],
            vec![8, 4],
            vec![8, 4],
            vec![12, 4],
            vec![12, 4]
        ]
    );
    for candidate in &output.candidates {
        let filled = candidate.filled.as_ref().unwrap();
        assert!(filled.starts_with("fn main() {"), "{filled}");
        assert_eq!(candidate.holes.len(), 2);
        assert_eq!(candidate.text, candidate.holes.concat());
        let middle = &filled["fn main() {".len()..];
        assert!(middle.starts_with(&candidate.holes[0]));
        assert!(middle[candidate.holes[0].len()..].starts_with("} "));
    }
}

/// A generation that is not a whole number of blocks ends with a short block, as a server's
/// `max_tokens` hole does: 16 tokens in blocks of 5 (5, 5, 5, 1), or of 32 (one block of 16).
#[test]
fn a_short_last_block_is_accepted_and_the_length_honoured() {
    let tokens = toy_tokens();
    for block_length in [5, 32] {
        let request = GenerateRequest {
            prompt: Prompt::Text("abc".into()),
            settings: SamplerSettings {
                gen_length: 16,
                block_length,
                ..SamplerSettings::default()
            },
            candidates: 1,
            seed: 0,
            stop: vec![],
        };
        let output = generate::generate(
            &mut ToyModel::new(false),
            Some(&CharCodec),
            &tokens,
            &request,
            &mut |_| {},
            None,
        )
        .unwrap();
        assert_eq!(
            output.candidates[0].hole_lengths,
            vec![16],
            "{block_length}"
        );
    }
}

#[test]
fn bad_requests_are_clear_errors() {
    let tokens = toy_tokens();
    let run = |request: GenerateRequest| {
        generate::generate(
            &mut ToyModel::new(false),
            Some(&CharCodec),
            &tokens,
            &request,
            &mut |_| {},
            None,
        )
        .unwrap_err()
        .to_string()
    };
    let ok = GenerateRequest {
        prompt: Prompt::Text("abc".into()),
        settings: SamplerSettings {
            gen_length: 16,
            block_length: 8,
            ..SamplerSettings::default()
        },
        candidates: 1,
        seed: 0,
        stop: vec![],
    };
    assert!(run(GenerateRequest {
        candidates: 0,
        ..ok.clone()
    })
    .contains("zero candidates"));
    assert!(run(GenerateRequest {
        settings: SamplerSettings {
            threshold: Some(1.5),
            ..ok.settings.clone()
        },
        ..ok.clone()
    })
    .contains("(0, 1]"));
    assert!(run(GenerateRequest {
        settings: SamplerSettings {
            sampler: SamplerKind::Llada,
            steps: Some(3),
            ..ok.settings.clone()
        },
        ..ok.clone()
    })
    .contains("split evenly"));
    assert!(run(GenerateRequest {
        prompt: Prompt::Text("x".repeat(250)),
        ..ok.clone()
    })
    .contains("context"));
    assert!(run(GenerateRequest {
        prompt: Prompt::Segments(vec![Segment::Text("a".into())]),
        ..ok.clone()
    })
    .contains("hole"));
}

// ---------------------------------------------------------------------------------------------
// Parity with the reference samplers on the tiny checkpoints.
// ---------------------------------------------------------------------------------------------
// Block diffusion (LLaDA2.0 / 2.1) on the block-causal toy.
// ---------------------------------------------------------------------------------------------

fn block_request(prompt: &[u32], settings: &SamplerSettings, seed: u64) -> SequenceRequest {
    SequenceRequest {
        layout: Layout::block_aligned(prompt, settings.gen_length, settings.block_length, MASK)
            .unwrap(),
        attention_mask: None,
        settings: settings.clone(),
        seed,
        tokens: toy_tokens(),
    }
}

fn block_settings() -> Vec<(String, SamplerSettings)> {
    let mut out = Vec::new();
    for sampler in [SamplerKind::Llada2, SamplerKind::Llada21] {
        for (gen_length, block_length) in [(16, 4), (20, 8), (9, 4)] {
            for eos_early_stop in [false, true] {
                for eos_rules in [EosRules::Generate, EosRules::Sampler] {
                    out.push((
                        format!(
                            "{sampler:?} gen {gen_length} block {block_length} early {eos_early_stop} {eos_rules:?}"
                        ),
                        SamplerSettings {
                            sampler,
                            gen_length,
                            block_length,
                            steps_per_block: 4,
                            threshold: Some(0.3),
                            editing_threshold: 0.2,
                            max_post_steps: 2,
                            num_to_transfer: 2,
                            eos_early_stop,
                            eos_rules,
                            cache: CacheKind::None,
                            ..SamplerSettings::default()
                        },
                    ));
                }
            }
        }
    }
    out
}

/// The acceptance test of the per-block KV cache: finished blocks' keys and values never change
/// under the block-causal mask, so decoding with the cache gives exactly the tokens of recomputing
/// the prefix every step, with the same number of forwards and fewer positions computed.
#[test]
fn block_diffusion_cache_equals_recomputing_the_prefix() {
    for (name, settings) in block_settings() {
        for eos_from in [usize::MAX, 13] {
            for temperature in [0.0, 0.8] {
                let uncached = SamplerSettings {
                    temperature,
                    ..settings.clone()
                };
                let cached = SamplerSettings {
                    cache: CacheKind::Prefix,
                    ..uncached.clone()
                };
                let p = prompt(3, 6);
                let mut plain = ToyModel::block_causal();
                plain.eos_from = eos_from;
                let a = run_cohort(&mut plain, vec![block_request(&p, &uncached, 5)]);
                let mut fast = ToyModel::block_causal();
                fast.eos_from = eos_from;
                let b = run_cohort(&mut fast, vec![block_request(&p, &cached, 5)]);
                assert_eq!(a, b, "{name} eos_from {eos_from} t={temperature}");
                assert_eq!(plain.forwards, fast.forwards, "{name}: same steps");
                assert!(
                    fast.positions_computed < plain.positions_computed,
                    "{name}: the cache saves work ({} vs {})",
                    fast.positions_computed,
                    plain.positions_computed
                );
                assert_eq!(a[0][..6], p[..], "{name}: the prompt is never touched");
            }
        }
    }
}

#[test]
fn block_diffusion_batched_equals_one_by_one() {
    for (name, settings) in block_settings() {
        for cache in [CacheKind::None, CacheKind::Prefix] {
            let settings = SamplerSettings {
                cache,
                temperature: 0.5,
                ..settings.clone()
            };
            let prompts = [prompt(1, 6), prompt(2, 6), prompt(3, 6)];
            let requests: Vec<_> = prompts
                .iter()
                .enumerate()
                .map(|(i, p)| block_request(p, &settings, 20 + i as u64))
                .collect();
            let mut model = ToyModel::block_causal();
            model.eos_from = 12;
            let batched = run_cohort(&mut model, requests.clone());
            for (i, single) in requests.into_iter().enumerate() {
                let mut model = ToyModel::block_causal();
                model.eos_from = 12;
                let alone = run_cohort(&mut model, vec![single]);
                assert_eq!(batched[i], alone[0], "{name} {cache:?} row {i}");
            }
        }
    }
}

#[test]
fn block_diffusion_generate_stops_after_the_block_with_eos() {
    let settings = SamplerSettings {
        sampler: SamplerKind::Llada2,
        gen_length: 24,
        block_length: 4,
        steps_per_block: 4,
        threshold: Some(0.95),
        eos_rules: EosRules::Generate,
        cache: CacheKind::Prefix,
        ..SamplerSettings::default()
    };
    let mut model = ToyModel::block_causal();
    model.eos_from = 14;
    let request = GenerateRequest {
        prompt: Prompt::Ids(prompt(4, 6)),
        settings,
        candidates: 1,
        seed: 0,
        stop: vec![],
    };
    let out = generate::generate(
        &mut model,
        Some(&CharCodec),
        &toy_tokens(),
        &request,
        &mut |_| {},
        None,
    )
    .unwrap();
    let candidate = &out.candidates[0];
    assert_eq!(candidate.finish_reason, FinishReason::Stop);
    // Position 14 (the first EOS) is generated position 8: the text is cut there.
    assert_eq!(candidate.ids.len(), 8, "{:?}", candidate.ids);
    // Blocks 4..8, 8..12, 12..16 ran (4 steps each at most); nothing after the EOS block.
    assert!(model.forwards <= 12, "{} forwards", model.forwards);
}

#[test]
fn block_diffusion_and_bidirectional_samplers_refuse_the_wrong_model() {
    let llada2 = SamplerSettings {
        sampler: SamplerKind::Llada2,
        gen_length: 8,
        block_length: 4,
        ..SamplerSettings::default()
    };
    let info = ToyModel::new(false).info().clone();
    let err = Cohort::new(&info, 0, vec![block_request(&prompt(1, 4), &llada2, 0)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("block-diffusion models"), "{err}");
    let info = ToyModel::block_causal().info().clone();
    let fast = SamplerSettings {
        gen_length: 8,
        block_length: 4,
        ..SamplerSettings::default()
    };
    let err = Cohort::new(&info, 0, vec![request(&prompt(1, 4), &fast, 0)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("block-causal"), "{err}");
    // Infill before a suffix is refused for block-causal models, with the reason.
    let request = GenerateRequest {
        prompt: Prompt::Segments(vec![
            Segment::Text("ab".into()),
            Segment::Hole { lengths: vec![4] },
            Segment::Text("cd".into()),
        ]),
        settings: llada2.clone(),
        candidates: 1,
        seed: 0,
        stop: vec![],
    };
    let err = generate::generate(
        &mut ToyModel::block_causal(),
        Some(&CharCodec),
        &toy_tokens(),
        &request,
        &mut |_| {},
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot infill before a suffix"), "{err}");
}

// ---------------------------------------------------------------------------------------------

fn parity_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/parity"
    ))
}

#[test]
fn every_parity_case_matches_token_for_token() {
    let mut checked = 0;
    for case_dir in ["llada-tiny", "llada-tied", "dream-tiny", "dream-tied"] {
        let dir = parity_dir().join(case_dir);
        let spec = hone_engine::checkpoint::ModelSpec {
            model: dir.display().to_string(),
            arch: None,
            device: Device::Cpu,
            dtype: Some(DType::F32),
            quantization: Default::default(),
        };
        let mut loaded = hone_engine::checkpoint::load(&spec).unwrap();
        let tokens = TokenIds::from(&loaded.special);
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("generate.json")).unwrap())
                .unwrap();
        for (index, case) in file["cases"].as_array().unwrap().iter().enumerate() {
            let ids = |v: &Value| -> Vec<Vec<u32>> { serde_json::from_value(v.clone()).unwrap() };
            let prompts = ids(&case["prompt_ids"]);
            let mask = (!case["attention_mask"].is_null()).then(|| ids(&case["attention_mask"]));
            let expected = ids(&case["expected_ids"]);
            let sampler = case["sampler"].as_str().unwrap();
            let get = |k: &str| case[k].as_u64().map(|v| v as usize);
            let gen_length = get("gen_length").or(get("max_new_tokens")).unwrap();
            let mut settings = SamplerSettings {
                sampler: sampler.parse().unwrap(),
                gen_length,
                block_length: get("block_length").unwrap_or(gen_length),
                steps: get("steps"),
                temperature: case["temperature"].as_f64().unwrap(),
                cfg_scale: case["cfg_scale"].as_f64().unwrap_or(0.0),
                eps: case["eps"].as_f64().unwrap_or(1e-3),
                threshold: None,
                stop_at_eos: false,
                ..SamplerSettings::default()
            };
            if let Some(alg) = case["alg"].as_str() {
                settings.alg = alg.parse().unwrap();
            }
            if let Some(remasking) = case["remasking"].as_str() {
                settings.remasking = remasking.parse().unwrap();
            }
            let produced = generate::sample_ids(
                loaded.model.as_mut(),
                &tokens,
                &prompts,
                mask.as_deref(),
                &settings,
                0,
            )
            .unwrap();
            assert_eq!(produced, expected, "{case_dir} case {index} ({sampler})");
            checked += 1;
        }
    }
    assert_eq!(checked, 18);
}

fn parity_v2_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/parity-v2"
    ))
}

/// Runs every sampler case of one `tests/fixtures/parity-v2` folder; returns how many it checked.
fn check_parity_v2(case_dir: &str) -> usize {
    let dir = parity_v2_dir().join(case_dir);
    let spec = hone_engine::checkpoint::ModelSpec {
        model: dir.display().to_string(),
        arch: None,
        device: Device::Cpu,
        dtype: Some(DType::F32),
        quantization: Default::default(),
    };
    let mut loaded = hone_engine::checkpoint::load(&spec).unwrap();
    let tokens = TokenIds::from(&loaded.special);
    let file: CaseFile =
        serde_json::from_str(&std::fs::read_to_string(dir.join("generate.json")).unwrap()).unwrap();
    for (index, case) in file.cases.iter().enumerate() {
        let out = case.run(loaded.model.as_mut(), &tokens).unwrap();
        assert_eq!(
            Some(&out.ids),
            case.expected_ids.as_ref(),
            "{case_dir} case {index} ({}): canvas",
            case.sampler
        );
        if let Some(expected) = &case.expected_generate_ids {
            assert_eq!(
                out.generate_ids.as_ref(),
                Some(expected),
                "{case_dir} case {index} ({}): generate output",
                case.sampler
            );
        }
        assert_eq!(out.matches(case), Some(true));
        // Block diffusion: the per-block cache is exact, so recomputing the prefix every step
        // (cache none) gives the same golden tokens as the cached default.
        let settings = case.settings().unwrap();
        if settings.sampler.is_block_causal() {
            for cache in [CacheKind::None, CacheKind::Prefix] {
                let settings = SamplerSettings {
                    cache,
                    ..settings.clone()
                };
                let again = case
                    .run_with(loaded.model.as_mut(), &tokens, settings)
                    .unwrap();
                assert_eq!(again, out, "{case_dir} case {index}: cache {cache:?}");
            }
        }
    }
    file.cases.len()
}

#[test]
fn parity_v2_open_dcoder_mdm_cases_match() {
    assert_eq!(check_parity_v2("odc-tiny"), 6);
}

#[test]
fn parity_v2_llada2_block_sampler_and_generate_match() {
    assert_eq!(check_parity_v2("llada2-tiny"), 5);
}

#[test]
fn parity_v2_llada21_editing_sampler_and_generate_match() {
    assert_eq!(check_parity_v2("llada21-tiny"), 5);
}

#[test]
fn parity_v2_llada_moe_cases_match() {
    assert_eq!(check_parity_v2("llada-moe-tiny"), 5);
}

/// The closing-note workload on the ~100M random shapes (slow; run on demand):
/// `cargo test -p hone-engine --test sampling -- --ignored bench_100m_shapes --nocapture`.
#[test]
#[ignore = "benchmark: minutes of CPU"]
#[allow(clippy::print_stdout)]
fn bench_100m_shapes() {
    use hone_engine::bench::{self, BenchPlan};
    for preset in ["llada-100m", "dream-100m"] {
        let (arch, config) = hone_engine::random::preset(preset).unwrap();
        let special = hone_engine::tokenizer::special_tokens(&config, None, None, None).unwrap();
        let mut model = hone_engine::random::random_model(
            arch,
            &config,
            0,
            &Device::Cpu,
            DType::F32,
            Default::default(),
        )
        .unwrap();
        let plan = BenchPlan {
            prompt_lengths: vec![64],
            gen_lengths: vec![256],
            block_length: 32,
            samplers: vec![SamplerKind::Fast],
            caches: vec![CacheKind::None, CacheKind::Prefix, CacheKind::Dual],
            tokens_per_step: vec![2, 4],
            thresholds: vec![],
            batches: vec![1],
            warmup: 0,
            repetitions: 1,
            breakdown: false,
        };
        bench::run(model.as_mut(), &TokenIds::from(&special), &plan, &mut |r| {
            println!(
                "{preset} {:?} {:?} prompt {} gen {}: nfe {} step {:.1} ms, {:.1} tok/s, {:.2} tok/fwd",
                r.case.cache, r.case.rule, r.case.prompt_length, r.case.gen_length, r.forwards, r.step_ms, r.tokens_per_second, r.tokens_per_forward
            );
        })
        .unwrap();
    }
}

/// `hone bench --breakdown`: every case reports the time of its layers, head and scoring, and the
/// host remainder; the parts add up to the step.
#[test]
fn bench_breakdown_accounts_for_the_step() {
    use hone_engine::bench::{self, BenchPlan};
    let (arch, config) = hone_engine::random::preset("llada-tiny").unwrap();
    let special = hone_engine::tokenizer::special_tokens(&config, None, None, None).unwrap();
    let mut model = hone_engine::random::random_model(
        arch,
        &config,
        0,
        &Device::Cpu,
        DType::F32,
        hone_engine::models::Quantization::None,
    )
    .unwrap();
    let plan = BenchPlan {
        prompt_lengths: vec![8],
        gen_lengths: vec![16],
        block_length: 8,
        samplers: vec![SamplerKind::Fast],
        caches: vec![CacheKind::None, CacheKind::Dual],
        tokens_per_step: vec![2],
        thresholds: vec![],
        batches: vec![1],
        warmup: 0,
        repetitions: 1,
        breakdown: true,
    };
    let results = bench::run(
        model.as_mut(),
        &TokenIds::from(&special),
        &plan,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(results.len(), 2);
    for r in &results {
        let b = r.breakdown.expect("breakdown asked for");
        assert!(
            b.layers_ms > 0.0 && b.head_ms > 0.0 && b.scoring_ms > 0.0,
            "{b:?}"
        );
        let parts = b.layers_ms + b.head_ms + b.scoring_ms + b.host_ms;
        // The host part is the remainder, so the parts cover the step.
        assert!(parts >= r.step_ms * 0.999, "{b:?} vs {}", r.step_ms);
        let shares = b.layers_share + b.head_share + b.scoring_share + b.host_share;
        assert!(shares > 0.99, "{b:?}");
    }
    // Off unless asked for.
    let plain = BenchPlan {
        breakdown: false,
        ..plan
    };
    let results = bench::run(
        model.as_mut(),
        &TokenIds::from(&special),
        &plain,
        &mut |_| {},
    )
    .unwrap();
    assert!(results.iter().all(|r| r.breakdown.is_none()));
}
