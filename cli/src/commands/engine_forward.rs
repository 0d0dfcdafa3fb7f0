//! `hone engine forward`: one forward pass of a checkpoint on ids read from a safetensors file
//! (`input_ids` i64 `[B, L]`, optional `attention_mask`), writing the raw, unshifted logits (f32
//! `[B, L, V]`) to another. The tool with which anyone can check parity on any checkpoint. Also
//! owns the translation of engine options and engine errors for the `engine` subcommands.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use candle_core::{Device, Tensor};
use hone_engine::model::{CacheMode, ForwardInput};
use hone_engine::{checkpoint, parity};

use crate::engine_options::{engine_error, model_spec, EngineOptions};
use crate::exit::{Hinted, FAILURE};

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    #[command(flatten)]
    pub engine: EngineOptions,

    /// Safetensors file with `input_ids` (integer [batch, len]) and optionally `attention_mask`
    /// (same shape, 1 = token, 0 = padding).
    #[arg(long)]
    pub input: PathBuf,

    /// Where to write `logits` (f32 [batch, len, vocab], raw: Dream's shift is not applied).
    #[arg(long)]
    pub output: PathBuf,

    /// Compare the logits with a tensor of this safetensors file (e.g. a parity `forward.safetensors`)
    /// and exit 1 when the error exceeds `--tolerance`.
    #[arg(long)]
    pub expect: Option<PathBuf>,

    /// Name of the expected tensor in `--expect`.
    #[arg(long, default_value = "logits", requires = "expect")]
    pub expect_key: String,

    /// Largest accepted error: max |out - ref| (or, with `--relative`, ||out - ref|| / ||ref||).
    #[arg(long, default_value_t = 1e-4, requires = "expect")]
    pub tolerance: f64,

    /// Compare by relative L2 error instead of max absolute error (for bf16 / f16 runs).
    #[arg(long, requires = "expect")]
    pub relative: bool,

    /// Block-causal attention with blocks of this many tokens, as block-diffusion samplers run
    /// LLaDA2 (position i attends to j iff j / B <= i / B); default: bidirectional.
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(1..))]
    pub block_causal: Option<u64>,
}

/// The input file's problems, with what the file must hold.
fn input_error(error: hone_engine::Error) -> anyhow::Error {
    match error {
        hone_engine::Error::InvalidInput(_) => Hinted::new(
            anyhow::Error::new(error),
            ["the input is a safetensors file with `input_ids` (i64 [batch, len]) and optionally `attention_mask`"],
        )
        .into(),
        other => engine_error(other),
    }
}

pub fn run(args: ForwardArgs) -> anyhow::Result<ExitCode> {
    let (ids, mask) = parity::read_forward_input(&args.input).map_err(input_error)?;
    let spec = model_spec(&args.engine)?;
    let loaded = checkpoint::load(&spec).map_err(engine_error)?;
    for warning in &loaded.warnings {
        note!("warning: {warning}");
    }
    let mut model = loaded.model;
    let device = model.device().clone();
    let ids = ids.to_device(&device)?;
    let mask = mask.map(|m| m.to_device(&device)).transpose()?;
    let total_len = ids.dim(1)?;
    let started = std::time::Instant::now();
    let logits = model
        .forward(ForwardInput {
            input_ids: &ids,
            attention_mask: mask.as_ref(),
            span_start: 0,
            total_len,
            cache: CacheMode::None,
            block_causal: args.block_causal.map(|b| b as usize),
            logits_rows: None,
        })
        .map_err(engine_error)?;
    let elapsed = started.elapsed();
    let logits = logits.to_device(&Device::Cpu)?;
    let dims = logits.dims().to_vec();
    let tensors = HashMap::from([("logits".to_string(), logits.clone())]);
    candle_core::safetensors::save(&tensors, &args.output).map_err(|e| {
        Hinted::new(
            anyhow::anyhow!("cannot write {}: {e}", args.output.display()),
            ["check that the folder exists and is writable"],
        )
    })?;
    note!(
        "wrote logits {dims:?} to {} ({:?}, forward {:.1} ms)",
        args.output.display(),
        model.info().architecture,
        elapsed.as_secs_f64() * 1e3
    );
    match &args.expect {
        Some(path) => compare(&logits, path, &args),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Compare `logits` with the expected tensor; prints one line on stdout and returns exit 1 when the
/// error is over the tolerance.
fn compare(logits: &Tensor, path: &Path, args: &ForwardArgs) -> anyhow::Result<ExitCode> {
    let mut expected = candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
        Hinted::new(
            anyhow::anyhow!("{} is not a readable safetensors file: {e}", path.display()),
            ["pass the file holding the reference logits, e.g. a parity forward.safetensors"],
        )
    })?;
    let Some(reference) = expected.remove(&args.expect_key) else {
        return Err(Hinted::new(
            anyhow::anyhow!("{} has no `{}` tensor", path.display(), args.expect_key),
            ["name the reference tensor with --expect-key"],
        )
        .into());
    };
    if reference.dims() != logits.dims() {
        return Err(Hinted::new(
            anyhow::anyhow!(
                "expected `{}` has shape {:?}, the logits have {:?}",
                args.expect_key,
                reference.dims(),
                logits.dims()
            ),
            ["compare logits computed from the same input_ids"],
        )
        .into());
    }
    let measured =
        parity::compare_logits(logits, &reference, args.relative).map_err(engine_error)?;
    let verdict = if measured.error.is_finite() && measured.error <= args.tolerance {
        "ok"
    } else {
        "FAIL"
    };
    writeln!(
        std::io::stdout().lock(),
        "{} {:.3e} (tolerance {:.1e}): {verdict}; argmax agrees at {}/{} positions",
        measured.kind(),
        measured.error,
        args.tolerance,
        measured.argmax_agreeing,
        measured.positions
    )?;
    Ok(if verdict == "ok" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}
