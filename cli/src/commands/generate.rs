//! `hone generate`: text generation (and infill) with the local diffusion engine. Prints the text
//! on stdout; `--json` prints the candidates with tokens, forward passes (NFE), tokens per forward,
//! wall time and tok/s; `--visual` redraws the canvas on stderr as it sharpens.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use hone_engine::generate::{
    self, Candidate, GenerateEvent, GenerateRequest, Prompt, Segment, TokenCodec,
};
use hone_engine::sampling::cohort::TokenIds;
use hone_engine::sampling::{family, SamplerOverrides, SamplerSettings};
use hone_engine::tokenizer::GenerationDefaults;

use crate::engine_options::EngineOptions;
use crate::exit::Hinted;
use crate::flags::{self, caps};

/// Marks a hole inside an `--infill` prompt (multi-segment infill).
pub const HOLE_MARKER: &str = "<|hole|>";

/// Sampler flags shared by `generate` (and reusable by other engine commands).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SamplerArgs {
    /// Tokens to generate (infill: the hole length unless --hole-lengths is given).
    #[arg(long)]
    pub gen_length: Option<usize>,
    /// Denoising steps in total (reference samplers; fast decoding without --threshold).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Semi-autoregressive block length.
    #[arg(long)]
    pub block_length: Option<usize>,
    /// llada | dream | fast | mdm | llada2 | llada21 (default: the model family's own: fast for
    /// LLaDA and Dream, mdm for Open-dCoder, llada2 / llada21 for LLaDA2.0 / 2.1).
    #[arg(long)]
    pub sampler: Option<String>,
    /// Dream's / mdm's unmasking order: origin | maskgit_plus | topk_margin | entropy | p2 (mdm).
    #[arg(long)]
    pub alg: Option<String>,
    /// Confidence measure: low_confidence | random.
    #[arg(long)]
    pub remasking: Option<String>,
    /// Fast decoding: commit every token at least this confident (0 < t <= 1); LLaDA2: commit every
    /// masked token more confident than this when at least the step's quota are.
    #[arg(long, conflicts_with = "tokens_per_step", value_parser = flags::probability_f64)]
    pub threshold: Option<f64>,
    /// Fast decoding: commit exactly this many tokens per step instead of a threshold.
    #[arg(long, value_parser = flags::count::<{ caps::STEPS }>)]
    pub tokens_per_step: Option<usize>,
    /// Fast decoding's KV cache: none | prefix | dual.
    #[arg(long)]
    pub cache: Option<String>,
    /// 0 = greedy.
    #[arg(long, value_parser = flags::temperature_f64)]
    pub temperature: Option<f64>,
    /// Nucleus sampling: sample among the most likely tokens whose probabilities add up to P.
    #[arg(long, value_name = "P", value_parser = flags::probability_f64)]
    pub top_p: Option<f64>,
    /// Sample among the K most likely tokens only.
    #[arg(long, value_name = "K", value_parser = flags::count::<{ caps::TOKENS }>)]
    pub top_k: Option<usize>,
    /// LLaDA classifier-free guidance scale.
    #[arg(long)]
    pub cfg_scale: Option<f64>,
    /// Keep generating past EOS (fast decoding stops at the first block containing EOS; LLaDA2's
    /// `eos_early_stop` is switched off).
    #[arg(long)]
    pub no_early_stop: bool,
    /// LLaDA2: denoising steps per block.
    #[arg(long, value_parser = flags::count::<{ caps::STEPS }>)]
    pub steps_per_block: Option<usize>,
    /// LLaDA2: caps the steps per block at gen_length / minimal_topk.
    #[arg(long, value_parser = flags::count::<{ caps::STEPS }>)]
    pub minimal_topk: Option<usize>,
    /// LLaDA2.1: rewrite a decoded token when the new argmax is more probable than this.
    #[arg(long, value_parser = flags::probability_f64)]
    pub editing_threshold: Option<f64>,
    /// LLaDA2.1: editing-only steps once a block has no mask left.
    #[arg(long, value_parser = flags::count_or_zero::<{ caps::STEPS }>)]
    pub max_post_steps: Option<usize>,
    /// LLaDA2.1: masked positions committed per step when fewer pass --threshold.
    #[arg(long, value_parser = flags::count::<{ caps::STEPS }>)]
    pub num_to_transfer: Option<usize>,
}

impl SamplerArgs {
    /// The flags as the engine's overrides (resolved with the checkpoint's and the family's
    /// defaults by `SamplerSettings::resolve`).
    pub fn overrides(&self) -> SamplerOverrides {
        SamplerOverrides {
            sampler: self.sampler.clone(),
            gen_length: self.gen_length,
            steps: self.steps,
            block_length: self.block_length,
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            remasking: self.remasking.clone(),
            alg: self.alg.clone(),
            cache: self.cache.clone(),
            cfg_scale: self.cfg_scale,
            threshold: self.threshold,
            tokens_per_step: self.tokens_per_step,
            early_stop: self.no_early_stop.then_some(false),
            steps_per_block: self.steps_per_block,
            minimal_topk: self.minimal_topk,
            editing_threshold: self.editing_threshold,
            max_post_steps: self.max_post_steps,
            num_to_transfer: self.num_to_transfer,
        }
    }

    /// Flags first, then the checkpoint's generation_config.json, then the family's defaults
    /// (`base`, from `hone_engine::sampling::family::base_settings`).
    pub fn settings(
        &self,
        defaults: &GenerationDefaults,
        base: SamplerSettings,
    ) -> anyhow::Result<SamplerSettings> {
        SamplerSettings::resolve(&self.overrides(), defaults, &base)
            .map_err(crate::engine_options::engine_error)
    }
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub engine: EngineOptions,

    /// The prompt (read from stdin when absent or `-`).
    pub prompt: Option<String>,

    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    pub chat: bool,

    #[command(flatten)]
    pub sampler: SamplerArgs,

    /// Seed of the first candidate (candidate i uses seed + i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Infill: the prompt is the text before the hole (or contains `<|hole|>` markers).
    #[arg(long)]
    pub infill: bool,

    /// Infill: a file with the text after the hole.
    #[arg(long, requires = "infill")]
    pub suffix: Option<std::path::PathBuf>,

    /// Infill: candidate hole lengths in tokens (comma separated), decoded in one batch.
    #[arg(long, value_delimiter = ',', requires = "infill")]
    pub hole_lengths: Vec<usize>,

    /// Independent samples (different seeds) decoded in one batch.
    #[arg(long, short = 'n', default_value_t = 1)]
    pub candidates: usize,

    /// Stop strings (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,

    /// Print JSON with the text, tokens, NFE, tokens per forward, wall time and tok/s.
    #[arg(long)]
    pub json: bool,

    /// Show the canvas sharpening on stderr, step by step.
    #[arg(long)]
    pub visual: bool,
}

/// Most candidates one `hone generate` decodes in one batch (each is a whole sequence of
/// activations and logits).
pub const MAX_CANDIDATES: usize = 64;

/// Bounds before allocation: every length the user chose must fit the model's context window
/// (the canvas of masks is allocated from them), and more steps than tokens only burns time.
fn check_sizes(
    args: &GenerateArgs,
    settings: &SamplerSettings,
    max_sequence_length: usize,
) -> anyhow::Result<()> {
    let too_long = |flag: &str, value: usize| {
        Hinted::new(
            anyhow::anyhow!(
                "{flag} {value} exceeds the model's context of {max_sequence_length} tokens"
            ),
            [format!("pass {flag} {max_sequence_length} or less")],
        )
    };
    if settings.gen_length > max_sequence_length {
        return Err(too_long("--gen-length", settings.gen_length).into());
    }
    let holes = args
        .prompt
        .as_deref()
        .map_or(1, |prompt| prompt.matches(HOLE_MARKER).count().max(1));
    for &length in &args.hole_lengths {
        if length == 0 {
            return Err(Hinted::new(
                anyhow::anyhow!("--hole-lengths has a zero length"),
                ["every hole length must be at least 1"],
            )
            .into());
        }
        if length.saturating_mul(holes) > max_sequence_length {
            return Err(too_long("--hole-lengths", length).into());
        }
    }
    if let Some(steps) = args.sampler.steps {
        let tokens = args
            .hole_lengths
            .iter()
            .copied()
            .max()
            .unwrap_or(settings.gen_length)
            .saturating_mul(holes);
        if steps > tokens {
            return Err(Hinted::new(
                anyhow::anyhow!("--steps {steps} is more than the {tokens} tokens to generate"),
                [format!(
                    "pass --steps {tokens} or less (each step commits at least one token)"
                )],
            )
            .into());
        }
    }
    Ok(())
}

/// On the CPU, refuse a batch whose activations and caches cannot fit in the memory left after
/// loading the weights (the estimate is `hone_engine::memory`'s).
fn check_memory(
    args: &GenerateArgs,
    settings: &SamplerSettings,
    prompt: &str,
    info: &hone_engine::model::ModelInfo,
) -> anyhow::Result<()> {
    let on_cpu = hone_engine::device::select_device(&args.engine.device).is_ok_and(|d| d.is_cpu());
    if !on_cpu {
        return Ok(());
    }
    let generated = args
        .hole_lengths
        .iter()
        .copied()
        .max()
        .unwrap_or(settings.gen_length);
    // Every token covers at least one byte of text, so the byte length bounds the prompt.
    let batch = args.candidates * args.hole_lengths.len().max(1);
    hone_engine::memory::check_activations(
        "this generation",
        info,
        batch,
        prompt.len() + generated,
    )
    .map_err(|error| Hinted::new(error, ["lower -n, --gen-length or --hole-lengths"]))?;
    Ok(())
}

fn read_prompt(prompt: Option<&str>) -> anyhow::Result<String> {
    match prompt {
        Some(text) if text != "-" => Ok(text.to_string()),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the prompt from stdin")?;
            Ok(text)
        }
    }
}

fn build_prompt(args: &GenerateArgs, text: String, gen_length: usize) -> anyhow::Result<Prompt> {
    if !args.infill {
        return Ok(if args.chat {
            Prompt::Chat(vec![("user".into(), text)])
        } else {
            Prompt::Text(text)
        });
    }
    let lengths = if args.hole_lengths.is_empty() {
        vec![gen_length]
    } else {
        args.hole_lengths.clone()
    };
    let suffix = match &args.suffix {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading --suffix {}", path.display()))?,
        None => String::new(),
    };
    let mut segments = Vec::new();
    let parts: Vec<&str> = text.split(HOLE_MARKER).collect();
    for (i, part) in parts.iter().enumerate() {
        if !part.is_empty() {
            segments.push(Segment::Text((*part).to_string()));
        }
        if i + 1 < parts.len() {
            segments.push(Segment::Hole {
                lengths: lengths.clone(),
            });
        }
    }
    if parts.len() == 1 {
        segments.push(Segment::Hole { lengths });
    }
    if !suffix.is_empty() {
        segments.push(Segment::Text(suffix));
    }
    Ok(Prompt::Segments(segments))
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    if args.candidates == 0 {
        return Err(Hinted::new(
            anyhow::anyhow!("zero candidates requested"),
            ["pass --candidates 1 or more"],
        )
        .into());
    }
    if args.candidates > MAX_CANDIDATES {
        return Err(Hinted::new(
            anyhow::anyhow!(
                "-n {} is over the limit of {MAX_CANDIDATES} candidates per run",
                args.candidates
            ),
            ["run several times with different --seed values for more samples"],
        )
        .into());
    }
    let text = read_prompt(args.prompt.as_deref())?;
    let mut loaded = crate::engine_options::load_model(&args.engine)?;
    let base = family::base_settings(loaded.model.info(), &loaded.name);
    let settings = args.sampler.settings(&loaded.generation, base)?;
    check_sizes(&args, &settings, loaded.model.info().max_sequence_length)?;
    check_memory(&args, &settings, &text, loaded.model.info())?;
    let prompt = build_prompt(&args, text, settings.gen_length)?;
    let request = GenerateRequest {
        prompt,
        settings,
        candidates: args.candidates,
        seed: args.seed,
        stop: args.stop.clone(),
    };
    let tokens = TokenIds::from(&loaded.special);
    let codec: Option<&dyn TokenCodec> = loaded.tokenizer.as_ref().map(|t| t as &dyn TokenCodec);
    if codec.is_none() {
        return Err(Hinted::new(
            anyhow::anyhow!("{} has no tokenizer.json", loaded.name),
            ["use a checkpoint folder with tokenizer.json"],
        )
        .into());
    }
    let visual = args.visual;
    let terminal = std::io::stderr().is_terminal();
    let mask = tokens.mask;
    let mut on_event = |event: &GenerateEvent<'_>| {
        if let (
            true,
            GenerateEvent::Step {
                candidate: 0,
                event,
                canvas,
                ..
            },
        ) = (visual, event)
        {
            draw_canvas(codec, canvas, mask, event.step, terminal);
        }
    };
    let output = generate::generate(
        loaded.model.as_mut(),
        codec,
        &tokens,
        &request,
        &mut on_event,
        None,
    )
    .map_err(|error| match error {
        hone_engine::Error::InvalidSetting { .. } => crate::engine_options::engine_error(error),
        error => Hinted::new(
            error,
            ["check --gen-length, --block-length, --steps and --threshold"],
        )
        .into(),
    })?;

    let mut stdout = std::io::stdout().lock();
    if args.json {
        let usage = &output.usage;
        let seconds = usage.wall_time.as_secs_f64();
        let forwards = usage.forward_passes.max(1);
        let value = serde_json::json!({
            "model": loaded.name,
            "settings": request.settings,
            "candidates": output.candidates.iter().map(candidate_json).collect::<Vec<_>>(),
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "generated_tokens": usage.generated_tokens,
                "forward_passes": usage.forward_passes,
                "nfe": usage.nfe,
                "tokens_per_forward": usage.generated_tokens as f64 / forwards as f64,
                "wall_seconds": seconds,
                "tokens_per_second": if seconds > 0.0 { usage.generated_tokens as f64 / seconds } else { 0.0 },
            },
        });
        writeln!(stdout, "{}", serde_json::to_string_pretty(&value)?)?;
    } else if output.candidates.len() == 1 {
        let candidate = &output.candidates[0];
        writeln!(
            stdout,
            "{}",
            candidate.filled.as_deref().unwrap_or(&candidate.text)
        )?;
    } else {
        for candidate in &output.candidates {
            writeln!(
                stdout,
                "--- candidate {} (seed {}, hole lengths {:?}, {:?}) ---",
                candidate.index, candidate.seed, candidate.hole_lengths, candidate.finish_reason
            )?;
            writeln!(
                stdout,
                "{}",
                candidate.filled.as_deref().unwrap_or(&candidate.text)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn candidate_json(candidate: &Candidate) -> serde_json::Value {
    serde_json::json!({
        "index": candidate.index,
        "seed": candidate.seed,
        "hole_lengths": candidate.hole_lengths,
        "text": candidate.text,
        "holes": candidate.holes,
        "filled": candidate.filled,
        "tokens": candidate.ids.len(),
        "ids": candidate.ids,
        "finish_reason": candidate.finish_reason,
        "nfe": candidate.forwards,
        "tokens_per_forward": if candidate.forwards > 0 { candidate.ids.len() as f64 / candidate.forwards as f64 } else { 0.0 },
    })
}

/// Redraws the canvas: committed tokens as text, masks as `░`.
fn draw_canvas(
    codec: Option<&dyn TokenCodec>,
    canvas: &[u32],
    mask: u32,
    step: usize,
    terminal: bool,
) {
    let Some(codec) = codec else { return };
    let mut shown = String::new();
    let mut run = Vec::new();
    for &token in canvas {
        if token == mask {
            if !run.is_empty() {
                shown.push_str(&codec.decode(&run).unwrap_or_default());
                run.clear();
            }
            shown.push('░');
        } else {
            run.push(token);
        }
    }
    shown.push_str(&codec.decode(&run).unwrap_or_default());
    if terminal {
        crate::output::stderr_text(format_args!("\x1b[2J\x1b[H[step {step}]\n{shown}\n"));
    } else {
        note!("[step {step}] {}", shown.replace('\n', "⏎"));
    }
}
