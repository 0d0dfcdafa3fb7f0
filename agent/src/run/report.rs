//! Small text helpers of the loop: ranking failed candidates, one-line failure summaries, output
//! truncation, and the transcript rendering of a conversation.

use hone_tools::TestReport;

use crate::changes::ChangeSet;
use crate::model::Message;

/// Ordering of failed candidates: fewer failing tests first (timeouts and unparsed failures count
/// as many), then smaller diffs.
pub(super) fn failure_rank(report: &TestReport, changes: &ChangeSet) -> (usize, usize) {
    let failing = if report.timed_out {
        usize::MAX / 2
    } else {
        report
            .tests_failed
            .unwrap_or(report.failed_tests.len())
            .max(report.failed_tests.len())
            .max(1)
    };
    (failing, changes.changed_lines())
}

/// One line on why a test run failed.
pub(super) fn summarize_failure(report: &TestReport) -> String {
    if report.timed_out {
        return format!(
            "`{}` timed out after {:.0} s",
            report.command,
            report.duration.as_secs_f64()
        );
    }
    let mut text = format!(
        "`{}` failed (exit code {})",
        report.command,
        report.exit_code.map_or("none".into(), |c| c.to_string())
    );
    if !report.failed_tests.is_empty() {
        let names: Vec<&str> = report
            .failed_tests
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        text.push_str(&format!(": {}", names.join(", ")));
        if report.failed_tests.len() > 5 {
            text.push_str(&format!(" and {} more", report.failed_tests.len() - 5));
        }
    }
    text
}

pub(super) fn first_line(text: &str) -> &str {
    text.lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
}

pub(super) fn truncate_middle(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let head_end = (0..=limit / 3)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let tail_start = (text.len() - limit * 2 / 3..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    format!(
        "{}\n[... {} bytes omitted ...]\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

pub(super) fn render_messages(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|message| format!("===== {} =====\n{}", message.role.as_str(), message.content))
        .collect::<Vec<_>>()
        .join("\n")
}
