//! `hone engine info`: what a checkpoint is (family, shapes, total and active parameters, the
//! samplers it runs, stored dtype, special ids and their load warnings, tokenizer, generation
//! defaults) and the memory it needs, read from its config and weight headers. With `--load` it also builds the model and reports the process's peak resident memory,
//! which stays near the weights' size because the files are memory-mapped and released as read.

use std::process::ExitCode;

use hone_engine::checkpoint;
use serde_json::json;

use crate::engine_options::EngineOptions;
use crate::engine_options::{engine_error, model_spec};

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub engine: EngineOptions,

    /// Also load the weights (on --device, in --dtype) and report peak memory.
    #[arg(long)]
    pub load: bool,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn run(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let spec = model_spec(&args.engine)?;
    let opened = checkpoint::open(&spec).map_err(engine_error)?;
    let (info, weights) = (&opened.info, &opened.weights);
    let warnings: Vec<String> = opened.warnings.iter().map(|w| w.to_string()).collect();
    let dtype = checkpoint::OpenedCheckpoint::dtype(&spec);
    let parameters = weights.parameter_count();
    let stored_bytes = weights.data_bytes();
    let stored_dtype = weights.stored_dtype().map(|d| d.as_str().to_string());
    // A GGUF's quantized tensors stay as stored whatever --quantize says.
    let loaded_quantization = weights.loaded_quantization(spec.quantization);
    let weight_bytes = hone_engine::memory::weight_bytes(
        info,
        parameters,
        dtype.size_in_bytes() as u64,
        loaded_quantization,
    );
    // Keys and values of every layer for 1,024 positions of one sequence.
    let kv_bytes_per_1k = 2
        * info.num_layers as u64
        * (info.num_kv_heads * info.head_dim) as u64
        * dtype.size_in_bytes() as u64
        * 1024;

    let mut report = json!({
        "model": spec.model,
        "source": opened.source.display().to_string(),
        "architecture": info.architecture,
        "block_causal": info.block_causal,
        "total_parameters": info.total_parameters,
        "active_parameters": info.active_parameters,
        "samplers": hone_engine::sampling::family::supported_samplers(info)
            .into_iter()
            .map(|kind| kind.name())
            .collect::<Vec<_>>(),
        "warnings": warnings,
        "layers": info.num_layers,
        "hidden_size": info.hidden_size,
        "heads": info.num_heads,
        "kv_heads": info.num_kv_heads,
        "head_dim": info.head_dim,
        "vocab_size": info.vocab_size,
        "logits_width": info.logits_width,
        "max_sequence_length": info.max_sequence_length,
        "shift_logits": info.shift_logits,
        "parameters": parameters,
        "stored_dtype": stored_dtype,
        "stored_bytes": stored_bytes,
        "weight_files": opened.files.weights.len(),
        "device": hone_engine::device::describe(&spec.device),
        "dtype": dtype.as_str(),
        "quantization": spec.quantization,
        "weights_bytes_in_dtype": weight_bytes,
        "kv_cache_bytes_per_1k_tokens": kv_bytes_per_1k,
        "special_tokens": opened.special,
        "tokenizer": opened.tokenizer.as_ref().map(|t| json!({
            "vocab_size": t.vocab_size(),
            "chat_template": if t.chat_template().1 { "built-in fallback" } else { "checkpoint's own" },
        })),
        "generation_defaults": opened.files.generation_defaults(),
    });

    if args.load {
        let before = hone_engine::memory::process_memory();
        let started = std::time::Instant::now();
        // The one loader: the memory check, then the build (`checkpoint::load`'s second half).
        let loaded = opened.build(&spec).map_err(engine_error)?;
        let load_seconds = started.elapsed().as_secs_f64();
        let after = hone_engine::memory::process_memory();
        report["load_seconds"] = json!(load_seconds);
        if let (Some((_, rss_before)), Some((peak, rss))) = (before, after) {
            report["rss_before_load_bytes"] = json!(rss_before);
            report["peak_rss_bytes"] = json!(peak);
            report["rss_after_load_bytes"] = json!(rss);
        }
        drop(loaded);
    }

    let mut out = std::io::stdout().lock();
    if args.json {
        use std::io::Write;
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write_text(&mut out, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_text(out: &mut impl std::io::Write, r: &serde_json::Value) -> anyhow::Result<()> {
    let s = |key: &str| r[key].to_string().trim_matches('"').to_string();
    let bytes = |key: &str| r[key].as_u64().map(mib).unwrap_or_else(|| "-".into());
    writeln!(out, "model:          {} ({})", s("model"), s("source"))?;
    let attention = if r["block_causal"] == true {
        "block diffusion, block-causal attention"
    } else {
        "bidirectional attention"
    };
    writeln!(out, "architecture:   {} ({attention})", s("architecture"))?;
    writeln!(
        out,
        "shape:          {} layers, hidden {}, {} heads ({} kv) of {}, vocab {} (logits {}), max length {}",
        s("layers"), s("hidden_size"), s("heads"), s("kv_heads"), s("head_dim"), s("vocab_size"), s("logits_width"), s("max_sequence_length")
    )?;
    let params = r["parameters"].as_u64().unwrap_or(0);
    writeln!(
        out,
        "parameters:     {params} ({:.2} B) stored",
        params as f64 / 1e9
    )?;
    let total = r["total_parameters"].as_u64().unwrap_or(0);
    let active = r["active_parameters"].as_u64().unwrap_or(0);
    writeln!(
        out,
        "per config:     {total} total ({:.2} B), {active} active per token ({:.2} B)",
        total as f64 / 1e9,
        active as f64 / 1e9
    )?;
    let samplers: Vec<&str> = r["samplers"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    writeln!(out, "samplers:       {}", samplers.join(", "))?;
    writeln!(
        out,
        "stored:         {} in {} file(s), {}",
        s("stored_dtype"),
        s("weight_files"),
        bytes("stored_bytes")
    )?;
    writeln!(
        out,
        "runs as:        {} on {}, linear layers {}",
        s("dtype"),
        s("device"),
        s("quantization")
    )?;
    writeln!(
        out,
        "memory needed:  weights {} + KV cache {} per 1k tokens per sequence",
        bytes("weights_bytes_in_dtype"),
        bytes("kv_cache_bytes_per_1k_tokens")
    )?;
    writeln!(out, "special ids:    {}", r["special_tokens"])?;
    for warning in r["warnings"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "warning:        {}",
            warning.as_str().unwrap_or_default()
        )?;
    }
    writeln!(out, "tokenizer:      {}", r["tokenizer"])?;
    // Only the settings the checkpoint actually suggests.
    let generation: serde_json::Map<String, serde_json::Value> = r["generation_defaults"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    writeln!(
        out,
        "generation:     {}",
        serde_json::Value::Object(generation)
    )?;
    if r.get("peak_rss_bytes").is_some() {
        writeln!(
            out,
            "loaded in:      {:.2} s; resident before {}, peak {}, after {}",
            r["load_seconds"].as_f64().unwrap_or(0.0),
            bytes("rss_before_load_bytes"),
            bytes("peak_rss_bytes"),
            bytes("rss_after_load_bytes")
        )?;
    }
    Ok(())
}
