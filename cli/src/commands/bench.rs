//! `hone bench`: the engine's fixed benchmark workload (`hone_engine::bench`) on a checkpoint
//! (`--model`) or a random-weight model of a config (`--random-config FILE|PRESET`), printing a
//! table (or `--json`) of step latency, tok/s and tokens per forward, plus the per-step speed-up the
//! caches give. Flags pick a subset so a quick check (e.g. on a GPU) runs only what it needs;
//! `--breakdown` adds where each step's time went (layers, head, scoring, host code).

use crate::flags::{self, caps};
use std::io::Write;
use std::process::ExitCode;

use hone_engine::bench::{self, BenchPlan, BenchResult, StepRule};
use hone_engine::model::DiffusionModel;
use hone_engine::sampling::cohort::TokenIds;
use hone_engine::sampling::{CacheKind, SamplerKind, SamplerOverrides, SamplerSettings};
use hone_engine::tokenizer::GenerationDefaults;

use crate::exit::Hinted;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A checkpoint folder or hub id.
    #[arg(
        long,
        short = 'm',
        required_unless_present = "random_config",
        conflicts_with = "random_config"
    )]
    pub model: Option<String>,

    /// A config.json to build a random-weight model from, or a preset name (llada-100m, dream-100m,
    /// llada-8b, dream-7b, llada-tiny, dream-tiny, llada-moe-7b, llada-moe-7b-dense, llada2-mini,
    /// llada-moe-tiny, llada2-tiny).
    #[arg(long)]
    pub random_config: Option<String>,

    /// Override architecture detection (llada, dream, open-dcoder, llada-moe, llada2).
    #[arg(long)]
    pub arch: Option<String>,

    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,

    /// f32, bf16 or f16 (default: f32 on CPU, bf16 on GPU).
    #[arg(long)]
    pub dtype: Option<String>,

    /// Quantize the linear layers at load (CPU; CUDA untested): q8_0 (8.5 bits a weight) or q4k
    /// (4.5 bits, coarser); the output head is then q8_0 and the embedding f16. none keeps every
    /// weight in --dtype. Activations stay in --dtype.
    #[arg(long, default_value = "none", value_parser = crate::flags::quantization)]
    pub quantize: hone_engine::models::Quantization,

    /// Prompt lengths (default 64,512).
    #[arg(long, value_delimiter = ',', value_parser = flags::count::<{ caps::TOKENS }>)]
    pub prompt_lengths: Vec<usize>,

    /// Generation lengths (default 128,256).
    #[arg(long, value_delimiter = ',', value_parser = flags::count::<{ caps::TOKENS }>)]
    pub gen_lengths: Vec<usize>,

    /// Diffusion block length of the block samplers.
    #[arg(long, default_value_t = 32, value_parser = flags::count::<{ caps::STEPS }>)]
    pub block_length: usize,

    /// Samplers (default llada,dream,fast).
    #[arg(long, value_delimiter = ',')]
    pub samplers: Vec<String>,

    /// Cache modes of fast decoding (default none,prefix,dual).
    #[arg(long, value_delimiter = ',')]
    pub caches: Vec<String>,

    /// Fixed tokens-per-step schedules of fast decoding (default 1,2,4).
    #[arg(long, value_delimiter = ',', value_parser = flags::count::<{ caps::STEPS }>)]
    pub tokens_per_step: Vec<usize>,

    /// Thresholds of fast decoding (default 0.9; pass `--thresholds none` for none).
    #[arg(long, value_delimiter = ',', value_parser = flags::probability_or_none)]
    pub thresholds: Vec<Option<f64>>,

    /// Batch sizes (default 1).
    #[arg(long, value_delimiter = ',', value_parser = flags::count::<{ caps::CANDIDATES }>)]
    pub batches: Vec<usize>,

    /// Untimed runs of each case before the timed ones.
    #[arg(long, default_value_t = 1, value_parser = flags::count_or_zero::<1000>)]
    pub warmup: usize,

    /// Timed runs of each case (the report gives their median).
    #[arg(long, default_value_t = 3, value_parser = flags::count::<1000>)]
    pub repetitions: usize,

    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Also time the parts of each step: transformer layers, output head, scoring, and the rest
    /// (host code), as ms per step and shares (synchronises a GPU around each part).
    #[arg(long)]
    pub breakdown: bool,

    /// One JSON document per case on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn plan(args: &BenchArgs) -> anyhow::Result<BenchPlan> {
    let mut plan = BenchPlan {
        block_length: args.block_length,
        warmup: args.warmup,
        repetitions: args.repetitions,
        breakdown: args.breakdown,
        ..BenchPlan::default()
    };
    if !args.prompt_lengths.is_empty() {
        plan.prompt_lengths = args.prompt_lengths.clone();
    }
    if !args.gen_lengths.is_empty() {
        plan.gen_lengths = args.gen_lengths.clone();
    }
    // Names go through the one resolution of sampler settings, as `hone generate --sampler` and
    // `--cache` do, so a bad one gets the same error (before any model loads).
    if !args.samplers.is_empty() {
        plan.samplers = args
            .samplers
            .iter()
            .map(|name| {
                resolve(SamplerOverrides {
                    sampler: Some(name.clone()),
                    ..SamplerOverrides::default()
                })
                .map(|settings| settings.sampler)
            })
            .collect::<Result<_, _>>()?;
    }
    if !args.caches.is_empty() {
        plan.caches = args
            .caches
            .iter()
            .map(|name| {
                resolve(SamplerOverrides {
                    cache: Some(name.clone()),
                    ..SamplerOverrides::default()
                })
                .map(|settings| settings.cache)
            })
            .collect::<Result<_, _>>()?;
    }
    if !args.tokens_per_step.is_empty() {
        plan.tokens_per_step = args
            .tokens_per_step
            .iter()
            .copied()
            .filter(|&k| k > 0)
            .collect();
    }
    if !args.thresholds.is_empty() {
        plan.thresholds = args.thresholds.iter().flatten().copied().collect();
    }
    if !args.batches.is_empty() {
        plan.batches = args.batches.clone();
    }
    if plan.batches.contains(&0) {
        anyhow::bail!("batch sizes must be at least 1");
    }
    Ok(plan)
}

/// `overrides` resolved over the engine's defaults (`SamplerSettings::resolve`).
fn resolve(overrides: SamplerOverrides) -> anyhow::Result<SamplerSettings> {
    SamplerSettings::resolve(
        &overrides,
        &GenerationDefaults::default(),
        &SamplerSettings::default(),
    )
    .map_err(crate::engine_options::engine_error)
}

fn load(
    args: &BenchArgs,
    plan: &BenchPlan,
) -> anyhow::Result<(Box<dyn DiffusionModel>, TokenIds, String)> {
    // The one ModelSpec builder, as for every engine command (a checkpoint's name is only read when
    // there is no --random-config).
    let spec = crate::engine_options::spec_on(
        args.model.clone().unwrap_or_default(),
        args.arch.as_deref(),
        crate::engine_options::device(&args.device)?,
        args.dtype.as_deref(),
        args.quantize,
    )?;
    let (device, arch) = (&spec.device, spec.arch);
    let dtype = hone_engine::checkpoint::OpenedCheckpoint::dtype(&spec);
    if let Some(config) = &args.random_config {
        let (detected, value) = crate::engine_options::read_random_config(config)?;
        let arch = arch.unwrap_or(detected);
        let special = hone_engine::tokenizer::special_tokens(&value, None, None, None)?;
        if device.is_cpu() {
            let batch = plan.batches.iter().copied().max().unwrap_or(1);
            let length = plan.prompt_lengths.iter().copied().max().unwrap_or(0)
                + plan.gen_lengths.iter().copied().max().unwrap_or(0);
            hone_engine::memory::check_random_model(
                config,
                arch,
                &value,
                dtype,
                args.quantize,
                batch,
                length,
            )?;
        }
        let model = hone_engine::random::random_model(
            arch,
            &value,
            args.seed,
            device,
            dtype,
            args.quantize,
        )?;
        return Ok((model, TokenIds::from(&special), format!("random {config}")));
    }
    let loaded = crate::engine_options::load_spec(&spec)?;
    let tokens = TokenIds::from(&loaded.special);
    Ok((loaded.model, tokens, loaded.name))
}

fn rule_name(rule: StepRule) -> String {
    match rule {
        StepRule::Reference => "reference".into(),
        StepRule::TokensPerStep(k) => format!("{k}/step"),
        StepRule::Threshold(t) => format!("thr {t}"),
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let plan = plan(&args).map_err(|e| Hinted::new(e, ["see `hone bench --help`"]))?;
    let (mut model, tokens, name) = load(&args, &plan)?;
    let device = hone_engine::device::describe(model.device());
    let dtype = hone_engine::device::dtype_name(model.dtype());
    note!(
        "bench: {name} on {device} ({dtype}), {} cases",
        plan.cases().len()
    );
    let json = args.json;
    let mut stdout = std::io::stdout().lock();
    if !json {
        writeln!(
            stdout,
            "{:<6} {:<7} {:<10} {:>6} {:>5} {:>5} {:>4} {:>6} {:>9} {:>9} {:>8}",
            "sampler",
            "cache",
            "rule",
            "prompt",
            "gen",
            "block",
            "bs",
            "nfe",
            "step ms",
            "tok/s",
            "tok/fwd"
        )?;
    }
    let mut on_result = |r: &BenchResult| {
        if json {
            // One compact line per finished case on stderr, so a run stopped by a time budget
            // (scripts/gpu-check.sh) still leaves every finished case behind.
            if let Ok(line) = serde_json::to_string(r) {
                note!("{line}");
            }
        } else {
            let c = &r.case;
            let _ = writeln!(
                stdout,
                "{:<6} {:<7} {:<10} {:>6} {:>5} {:>5} {:>4} {:>6} {:>9.2} {:>9.1} {:>8.2}",
                format!("{:?}", c.sampler).to_lowercase(),
                format!("{:?}", c.cache).to_lowercase(),
                rule_name(c.rule),
                c.prompt_length,
                c.gen_length,
                c.block_length,
                c.batch,
                r.forwards,
                r.step_ms,
                r.tokens_per_second,
                r.tokens_per_forward
            );
            if let Some(b) = &r.breakdown {
                let part = |ms: f64, share: f64| format!("{ms:.2} ms ({:.0}%)", share * 100.0);
                let _ = writeln!(
                    stdout,
                    "  per step: layers {}, head {}, scoring {}, host {}",
                    part(b.layers_ms, b.layers_share),
                    part(b.head_ms, b.head_share),
                    part(b.scoring_ms, b.scoring_share),
                    part(b.host_ms, b.host_share)
                );
            }
            let _ = stdout.flush();
        }
    };
    let results = bench::run(model.as_mut(), &tokens, &plan, &mut on_result).map_err(|e| {
        Hinted::new(
            e,
            ["pick lengths that fit the model's context (--prompt-lengths, --gen-lengths)"],
        )
    })?;
    let speedups = cache_speedups(&results);
    if json {
        let value = serde_json::json!({ "model": name, "device": device, "dtype": dtype, "results": results, "cache_speedups": speedups });
        writeln!(stdout, "{}", serde_json::to_string_pretty(&value)?)?;
    } else if !speedups.is_empty() {
        writeln!(
            stdout,
            "\nper-step speed-up over cache none (same prompt, gen, rule, batch):"
        )?;
        for s in &speedups {
            writeln!(stdout, "  {}", s["summary"].as_str().unwrap_or_default())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Step latency of cache none divided by that of prefix / dual, for matching cases.
fn cache_speedups(results: &[BenchResult]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for none in results
        .iter()
        .filter(|r| r.case.sampler == SamplerKind::Fast && r.case.cache == CacheKind::None)
    {
        for cached in results.iter().filter(|r| {
            r.case.sampler == SamplerKind::Fast
                && r.case.cache != CacheKind::None
                && r.case.rule == none.case.rule
                && r.case.prompt_length == none.case.prompt_length
                && r.case.gen_length == none.case.gen_length
                && r.case.batch == none.case.batch
        }) {
            if cached.step_ms <= 0.0 {
                continue;
            }
            let speedup = none.step_ms / cached.step_ms;
            let cache = format!("{:?}", cached.case.cache).to_lowercase();
            out.push(serde_json::json!({
                "prompt_length": none.case.prompt_length,
                "gen_length": none.case.gen_length,
                "batch": none.case.batch,
                "rule": rule_name(none.case.rule),
                "cache": cache,
                "step_speedup": speedup,
                "summary": format!(
                    "prompt {} gen {} bs {} {}: {cache} {:.2}x ({:.2} ms -> {:.2} ms per step)",
                    none.case.prompt_length, none.case.gen_length, none.case.batch, rule_name(none.case.rule), speedup, none.step_ms, cached.step_ms
                ),
            }));
        }
    }
    out
}
