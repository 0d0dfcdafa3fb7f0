//! `hone engine forward`: one forward pass of a checkpoint on ids read from a safetensors file
//! (`input_ids` i64 `[B, L]`, optional `attention_mask`), writing the raw, unshifted logits (f32
//! `[B, L, V]`) to another. The tool with which anyone can check parity on any checkpoint. Also
//! owns the translation of engine options and engine errors for the `engine` subcommands.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use candle_core::{DType, Device, Tensor};
use hone_engine::checkpoint;
use hone_engine::model::{CacheMode, ForwardInput};

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

fn bad_input(message: String) -> anyhow::Error {
    Hinted::new(anyhow::anyhow!(message), ["the input is a safetensors file with `input_ids` (i64 [batch, len]) and optionally `attention_mask`"]).into()
}

/// Read and check the input file: ids as u32 `[B, L]` and the optional mask.
fn read_input(path: &Path) -> anyhow::Result<(Tensor, Option<Tensor>)> {
    if !path.exists() {
        return Err(bad_input(format!(
            "input file {} does not exist",
            path.display()
        )));
    }
    let mut tensors: HashMap<String, Tensor> = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| {
        bad_input(format!(
            "{} is not a readable safetensors file (truncated?): {e}",
            path.display()
        ))
    })?;
    let Some(ids) = tensors.remove("input_ids") else {
        let mut found: Vec<&String> = tensors.keys().collect();
        found.sort();
        return Err(bad_input(format!(
            "{} has no `input_ids` tensor (found: {found:?})",
            path.display()
        )));
    };
    let ids = integer_matrix(&ids, "input_ids")?;
    let (batch, len) = ids.dims2()?;
    if batch == 0 || len == 0 {
        return Err(bad_input(format!(
            "`input_ids` is empty (shape [{batch}, {len}])"
        )));
    }
    let mask = match tensors.remove("attention_mask") {
        Some(mask) => {
            let mask = integer_matrix(&mask, "attention_mask")?;
            if mask.dims() != ids.dims() {
                return Err(bad_input(format!(
                    "`attention_mask` has shape {:?}, `input_ids` has {:?}: they must match",
                    mask.dims(),
                    ids.dims()
                )));
            }
            Some(mask)
        }
        None => None,
    };
    Ok((ids, mask))
}

/// An integer `[B, L]` tensor as u32, refusing floats, other ranks and negative values.
fn integer_matrix(tensor: &Tensor, name: &str) -> anyhow::Result<Tensor> {
    if tensor.rank() != 2 {
        return Err(bad_input(format!(
            "`{name}` must be 2-D [batch, len], got shape {:?}",
            tensor.dims()
        )));
    }
    if !matches!(
        tensor.dtype(),
        DType::I64 | DType::U32 | DType::U8 | DType::I32 | DType::I16
    ) {
        return Err(bad_input(format!(
            "`{name}` must hold integers, got {:?}",
            tensor.dtype()
        )));
    }
    let wide = tensor.to_dtype(DType::I64)?;
    if tensor.elem_count() > 0 && wide.min_all()?.to_scalar::<i64>()? < 0 {
        return Err(bad_input(format!("`{name}` holds negative values")));
    }
    if tensor.elem_count() > 0 && wide.max_all()?.to_scalar::<i64>()? > i64::from(u32::MAX) {
        return Err(bad_input(format!("`{name}` holds values beyond u32")));
    }
    Ok(wide.to_dtype(DType::U32)?)
}

pub fn run(args: ForwardArgs) -> anyhow::Result<ExitCode> {
    let (ids, mask) = read_input(&args.input)?;
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
    let reference = reference.to_dtype(DType::F64)?;
    let difference = (logits.to_dtype(DType::F64)? - &reference)?;
    let (kind, error) = if args.relative {
        let norm = |t: &Tensor| -> anyhow::Result<f64> {
            Ok(t.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt())
        };
        let reference_norm = norm(&reference)?;
        (
            "relative L2 error",
            norm(&difference)? / reference_norm.max(f64::MIN_POSITIVE),
        )
    } else {
        (
            "max abs error",
            difference.abs()?.max_all()?.to_scalar::<f64>()?,
        )
    };
    // The token each position would take: how many keep the reference's (a quantized run's
    // practical error).
    let argmax = |t: &Tensor| -> anyhow::Result<Vec<u32>> {
        let last = t.rank().saturating_sub(1);
        Ok(t.argmax(last)?.flatten_all()?.to_vec1::<u32>()?)
    };
    let (got, want) = (argmax(logits)?, argmax(&reference)?);
    let same = got.iter().zip(&want).filter(|(a, b)| a == b).count();
    let verdict = if error.is_finite() && error <= args.tolerance {
        "ok"
    } else {
        "FAIL"
    };
    writeln!(
        std::io::stdout().lock(),
        "{kind} {error:.3e} (tolerance {:.1e}): {verdict}; argmax agrees at {same}/{} positions",
        args.tolerance,
        want.len()
    )?;
    Ok(if verdict == "ok" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}
