//! Renderings of an `ApplyReport`: one for people (terminal: a line per block, reasons, "did you
//! mean" lines), one for the model (plain text that says exactly which blocks to resend and how).

use std::fmt::Write as _;

use super::apply::{
    ApplyReport, BlockFailure, BlockOutcome, BlockStatus, FailureReason, MatchRule,
};

fn rule_note(rule: MatchRule) -> &'static str {
    match rule {
        MatchRule::Exact => "",
        MatchRule::TrailingWhitespace => " (matched ignoring trailing whitespace)",
        MatchRule::Indentation => " (matched ignoring indentation; re-indented)",
        MatchRule::Unicode => " (matched after normalising quotes, dashes and spaces)",
    }
}

/// A report for people: one line per block, failures with reasons and "did you mean" lines.
pub fn render_for_people(report: &ApplyReport) -> String {
    let mut out = String::new();
    let total = report.blocks.len();
    let failed = report.failures().count();
    if failed == 0 {
        let _ = writeln!(out, "all {total} edit block(s) applied");
    } else {
        let _ = writeln!(
            out,
            "{failed} of {total} edit block(s) failed; nothing was written"
        );
    }
    for block in &report.blocks {
        match &block.status {
            BlockStatus::Applied { rule, line } => {
                let _ = writeln!(
                    out,
                    "  ok    #{} {} {} at line {line}{}",
                    block.index + 1,
                    block.operation,
                    block.path,
                    rule_note(*rule)
                );
            }
            BlockStatus::Failed(failure) => {
                let _ = writeln!(
                    out,
                    "  FAIL  #{} {} {}: {}",
                    block.index + 1,
                    block.operation,
                    block.path,
                    failure.reason.describe()
                );
                if let Some(closest) = &failure.closest {
                    let _ = writeln!(
                        out,
                        "        did you mean (line {}, {:.0}% similar):",
                        closest.line,
                        closest.similarity * 100.0
                    );
                    for line in closest.text.lines() {
                        let _ = writeln!(out, "        | {line}");
                    }
                }
                if failure.replacement_present && failure.reason != FailureReason::AlreadyApplied {
                    let _ = writeln!(
                        out,
                        "        note: the replacement text is already in the file"
                    );
                }
            }
        }
    }
    out
}

/// A report for the model: which blocks applied, which failed and why, the closest actual lines,
/// and what to send next. Nothing was written when any block failed, so the model must resend
/// every block (corrected ones and the ones that applied).
pub fn render_for_model(report: &ApplyReport) -> String {
    let mut out = String::new();
    let failures: Vec<(&BlockOutcome, &BlockFailure)> = report.failures().collect();
    if failures.is_empty() {
        let _ = writeln!(out, "All {} edit blocks applied.", report.blocks.len());
        return out;
    }
    let _ = writeln!(
        out,
        "{} of your {} edit blocks did not apply, so NO change was made to any file.",
        failures.len(),
        report.blocks.len()
    );
    for (block, failure) in &failures {
        let _ = writeln!(
            out,
            "\n## Block {} ({} {}) failed",
            block.index + 1,
            block.operation,
            block.path
        );
        let _ = writeln!(out, "Reason: {}.", failure.reason.describe());
        match &failure.reason {
            FailureReason::NotFound | FailureReason::AnchorNotFound { .. } => {
                if let Some(closest) = &failure.closest {
                    let _ = writeln!(
                        out,
                        "The closest lines in {} are (line {}):",
                        block.path, closest.line
                    );
                    let _ = writeln!(out, "```\n{}\n```", closest.text);
                    let _ = writeln!(out, "Copy the SEARCH lines exactly from the file, including whitespace and comments.");
                } else {
                    let _ = writeln!(
                        out,
                        "Nothing similar is in {}; check the file path and its current content.",
                        block.path
                    );
                }
            }
            FailureReason::NotUnique { .. } => {
                let _ = writeln!(out, "Include more unchanged lines around the change so the SEARCH text occurs only once.");
            }
            FailureReason::FileMissing => {
                let _ = writeln!(
                    out,
                    "To create it, use an empty SEARCH section; otherwise use an existing path."
                );
            }
            FailureReason::AlreadyApplied => {
                let _ = writeln!(out, "Do not resend this block.");
            }
            _ => {}
        }
    }
    let applied: Vec<String> = report
        .blocks
        .iter()
        .filter(|block| matches!(block.status, BlockStatus::Applied { .. }))
        .map(|block| format!("{} ({})", block.index + 1, block.path))
        .collect();
    if !applied.is_empty() {
        let _ = writeln!(
            out,
            "\nBlocks that matched: {}. Resend them too, together with the corrected blocks.",
            applied.join(", ")
        );
    }
    out
}
