//! `hone engine sample --model DIR --cases FILE [--json]`: runs every sampler case of a file in the
//! format of `tests/fixtures/parity/*/generate.json` (ids in, ids out) and says per case whether the ids
//! equal `expected_ids`. Exit 1 on any mismatch: this is how anyone checks sampler parity on any
//! checkpoint.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hone_engine::generate::sample_ids;
use hone_engine::sampling::cohort::TokenIds;
use hone_engine::sampling::SamplerSettings;
use serde::Deserialize;

use crate::engine_options::EngineOptions;
use crate::exit::{Hinted, FAILURE};

#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub engine: EngineOptions,

    /// A JSON file `{"cases": [...]}` (the parity `generate.json` format).
    #[arg(long)]
    pub cases: PathBuf,

    /// Print one JSON object with every case's produced ids and verdict.
    #[arg(long)]
    pub json: bool,
}

/// One case of a `generate.json` file.
#[derive(Debug, Clone, Deserialize)]
pub struct SamplerCase {
    pub sampler: String,
    pub prompt_ids: Vec<Vec<u32>>,
    pub attention_mask: Option<Vec<Vec<u32>>>,
    pub expected_ids: Option<Vec<Vec<u32>>>,
    pub steps: usize,
    pub temperature: Option<f64>,
    // llada
    pub gen_length: Option<usize>,
    pub block_length: Option<usize>,
    pub remasking: Option<String>,
    pub cfg_scale: Option<f64>,
    // dream
    pub max_new_tokens: Option<usize>,
    pub alg: Option<String>,
    pub eps: Option<f64>,
    pub alg_temp: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct CaseFile {
    cases: Vec<SamplerCase>,
}

impl SamplerCase {
    /// The sampler settings the case describes.
    pub fn settings(&self) -> anyhow::Result<SamplerSettings> {
        let mut settings = SamplerSettings {
            sampler: self.sampler.parse()?,
            steps: Some(self.steps),
            temperature: self.temperature.unwrap_or(0.0),
            top_p: self.top_p,
            top_k: self.top_k,
            cfg_scale: self.cfg_scale.unwrap_or(0.0),
            alg_temp: self.alg_temp.unwrap_or(0.0),
            eps: self.eps.unwrap_or(1e-3),
            threshold: None,
            stop_at_eos: false,
            ..SamplerSettings::default()
        };
        let gen_length = self
            .gen_length
            .or(self.max_new_tokens)
            .context("the case has no gen_length / max_new_tokens")?;
        settings.gen_length = gen_length;
        settings.block_length = self.block_length.unwrap_or(gen_length);
        if let Some(remasking) = &self.remasking {
            settings.remasking = remasking.parse()?;
        }
        if let Some(alg) = &self.alg {
            settings.alg = alg.parse()?;
        }
        Ok(settings)
    }
}

/// Reads a cases file.
pub fn read_cases(path: &std::path::Path) -> anyhow::Result<Vec<SamplerCase>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: CaseFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a sampler cases file", path.display()))?;
    Ok(file.cases)
}

#[allow(clippy::print_stdout)]
pub fn run(args: SampleArgs) -> anyhow::Result<ExitCode> {
    let cases = read_cases(&args.cases).map_err(|e| {
        Hinted::new(
            e,
            ["pass a file like tests/fixtures/parity/llada-tiny/generate.json"],
        )
    })?;
    let mut loaded = super::generate::load_model(&args.engine)?;
    let tokens = TokenIds::from(&loaded.special);
    let mut stdout = std::io::stdout().lock();
    let mut all_match = true;
    let (mut matched, mut mismatched) = (0usize, 0usize);
    let mut reports = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let settings = case
            .settings()
            .map_err(|e| Hinted::new(e, [format!("case {index} has bad settings")]))?;
        let produced = sample_ids(
            loaded.model.as_mut(),
            &tokens,
            &case.prompt_ids,
            case.attention_mask.as_deref(),
            &settings,
            case.seed.unwrap_or(0),
        )
        .map_err(|e| Hinted::new(e, [format!("case {index} could not run")]))?;
        let matches = case
            .expected_ids
            .as_ref()
            .map(|expected| *expected == produced);
        all_match &= matches != Some(false);
        match matches {
            Some(true) => matched += 1,
            Some(false) => mismatched += 1,
            None => {}
        }
        if args.json {
            reports.push(serde_json::json!({
                "case": index,
                "sampler": case.sampler,
                "produced_ids": produced,
                "expected_ids": case.expected_ids,
                "match": matches,
            }));
        } else {
            let verdict = match matches {
                Some(true) => "match".to_string(),
                Some(false) => {
                    let first =
                        first_difference(case.expected_ids.as_deref().unwrap_or(&[]), &produced);
                    format!("MISMATCH ({first})")
                }
                None => "no expected_ids".to_string(),
            };
            writeln!(
                stdout,
                "case {index} ({}, steps {}): {verdict}",
                case.sampler, case.steps
            )?;
            for row in &produced {
                writeln!(stdout, "  {row:?}")?;
            }
        }
    }
    if args.json {
        let value =
            serde_json::json!({ "model": loaded.name, "all_match": all_match, "cases": reports });
        writeln!(stdout, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(stdout, "{matched} cases match, {mismatched} mismatch")?;
    }
    Ok(if all_match {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FAILURE)
    })
}

fn first_difference(expected: &[Vec<u32>], produced: &[Vec<u32>]) -> String {
    for (row, (e, p)) in expected.iter().zip(produced).enumerate() {
        if let Some(position) = e.iter().zip(p).position(|(a, b)| a != b) {
            return format!(
                "row {row}, position {position}: expected {}, got {}",
                e[position], p[position]
            );
        }
        if e.len() != p.len() {
            return format!("row {row}: expected {} ids, got {}", e.len(), p.len());
        }
    }
    format!("expected {} rows, got {}", expected.len(), produced.len())
}
