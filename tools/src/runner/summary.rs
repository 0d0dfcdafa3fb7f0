//! Test reports rendered for people: the failing tests, then the end of the output. Used by the
//! hooks, `hone batch` and `hone refactor` when they say why a check failed.

use super::TestReport;

/// A few lines for people about a failed report: the failing tests, then the end of the output.
pub fn describe_failure(report: &TestReport) -> String {
    let mut text = String::new();
    if report.timed_out {
        text.push_str(&format!(
            "`{}` did not finish within {:.0} s\n",
            report.command,
            report.duration.as_secs_f64()
        ));
    } else {
        let code = report
            .exit_code
            .map_or_else(|| "a signal".to_owned(), |code| code.to_string());
        text.push_str(&format!("`{}` failed (exit {code})\n", report.command));
    }
    if !report.failed_tests.is_empty() {
        text.push_str("failing tests:\n");
        for name in report.failed_tests.iter().take(20) {
            text.push_str(&format!("  {name}\n"));
        }
    }
    let lines: Vec<&str> = report.output.lines().collect();
    let tail = &lines[lines.len().saturating_sub(30)..];
    if !tail.is_empty() {
        text.push_str("output (last lines):\n");
        for line in tail {
            text.push_str(&format!("  | {line}\n"));
        }
    }
    text
}
