//! `hone engine sample --model DIR --cases FILE [--json]`: runs every sampler case of a file in the
//! format of `tests/fixtures/parity/*/generate.json` or `tests/fixtures/parity-v2/*/generate.json`
//! (ids in, ids out; samplers `llada`, `dream`, `mdm`, `llada2`, `llada21`, read by
//! `hone_engine::sampling::cases`) and says per case whether the ids equal `expected_ids` (and, for
//! LLaDA2 cases, whether the `generate` output equals `expected_generate_ids`). Exit 1 on any
//! mismatch: this is how anyone checks sampler parity on any checkpoint.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hone_engine::sampling::cases::{CaseFile, SamplerCase};
use hone_engine::sampling::cohort::TokenIds;

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

/// Reads a cases file.
pub fn read_cases(path: &std::path::Path) -> anyhow::Result<Vec<SamplerCase>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: CaseFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a sampler cases file", path.display()))?;
    Ok(file.cases)
}

pub fn run(args: SampleArgs) -> anyhow::Result<ExitCode> {
    let cases = read_cases(&args.cases).map_err(|e| {
        Hinted::new(
            e,
            ["pass a file like tests/fixtures/parity/llada-tiny/generate.json"],
        )
    })?;
    let mut loaded = crate::engine_options::load_model(&args.engine)?;
    let tokens = TokenIds::from(&loaded.special);
    let mut stdout = std::io::stdout().lock();
    let mut all_match = true;
    let (mut matched, mut mismatched) = (0usize, 0usize);
    let mut reports = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        case.settings()
            .map_err(|e| Hinted::new(e, [format!("case {index} has bad settings")]))?;
        let output = case
            .run(loaded.model.as_mut(), &tokens)
            .map_err(|e| Hinted::new(e, [format!("case {index} could not run")]))?;
        let produced = &output.ids;
        let matches = output.matches(case);
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
                "produced_generate_ids": output.generate_ids,
                "expected_generate_ids": case.expected_generate_ids,
                "match": matches,
            }));
        } else {
            let verdict = match matches {
                Some(true) => "match".to_string(),
                Some(false) => {
                    let first = match (&case.expected_ids, &case.expected_generate_ids) {
                        (Some(expected), _) if expected != produced => {
                            first_difference(expected, produced)
                        }
                        (_, Some(expected)) => format!(
                            "generate output: {}",
                            first_difference(
                                expected,
                                output.generate_ids.as_deref().unwrap_or(&[])
                            )
                        ),
                        _ => "differs".to_string(),
                    };
                    format!("MISMATCH ({first})")
                }
                None => "no expected_ids".to_string(),
            };
            writeln!(stdout, "case {index} ({}): {verdict}", case.sampler)?;
            for row in produced {
                writeln!(stdout, "  {row:?}")?;
            }
            for row in output.generate_ids.iter().flatten() {
                writeln!(stdout, "  generate: {row:?}")?;
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
