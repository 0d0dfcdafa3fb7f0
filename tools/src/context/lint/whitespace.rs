//! The text checks of [`super`] that every file gets, whatever its language: trailing
//! whitespace (W291/W293), the file's end (W292/W391) and indentation that mixes tabs and spaces
//! (W191/E101), each left out where the file's kind makes the whitespace content (a Markdown hard
//! break, a Makefile's tabs, a certificate's missing final newline).

use super::{finding, Finding, MAX_PER_FILE};

/// Longest run of lines indented the other way than the lines around them that is taken as a
/// slip outside Python; a longer one is embedded text (a script in a string, a data block).
const MAX_SLIP_RUN: usize = 3;

/// How a line's indentation starts, for telling a slip from a file's style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lead {
    Tab,
    Spaces,
    /// Not indented (or by one space), or inside a string: belongs to neither side.
    Neither,
}

/// A non-blank line, for the mixed-indentation check.
#[derive(Debug, Clone, Copy)]
struct Indented {
    line: usize,
    lead: Lead,
    /// The line may open or close a multi-line string (an odd number of backticks, a triple
    /// quote): the lines past it can be embedded text with an indentation of its own.
    string_edge: bool,
}

/// Whether trailing whitespace is meaningful in the file (a Markdown hard break, a diff's blank
/// context line), and whether its indentation is: required tabs (a Makefile's recipes), data (a
/// TSV's columns), or prose whose code samples keep their own language's style.
fn whitespace_is_content(name: &str, extension: &str) -> (bool, bool) {
    let trailing = matches!(extension, "md" | "markdown" | "diff" | "patch");
    let indentation = matches!(
        extension,
        "mk" | "tsv"
            | "diff"
            | "patch"
            | "md"
            | "markdown"
            | "rst"
            | "txt"
            | "adoc"
            | "tex"
            | "sty"
    ) || name.eq_ignore_ascii_case("makefile")
        || name == "GNUmakefile";
    (trailing, indentation)
}

/// Whether how the file ends says nothing: documents, data and configuration (a `.svg` on one
/// line, an `.rst` ending in a blank line, a `.coveragerc`) end either way, while a missing or
/// doubled final newline in code or a script is what a linter reports.
fn ending_is_content(name: &str, extension: &str, text: &str) -> bool {
    // A file without an extension is a script when it says so (`#!/bin/sh`, zsh's `#compdef`);
    // otherwise data or prose (`LICENSE`, a certificate).
    let no_extension = !name.trim_start_matches('.').contains('.');
    (no_extension && !text.starts_with("#!") && !text.starts_with("#compdef"))
        || matches!(
            extension,
            "md" | "markdown"
                | "rst"
                | "txt"
                | "adoc"
                | "html"
                | "htm"
                | "xml"
                | "svg"
                | "json"
                | "lock"
                | "csv"
                | "tsv"
                | "yml"
                | "yaml"
                | "toml"
                | "ini"
                | "cfg"
                | "in"
                | "golden"
                | "pem"
                | "crt"
                | "key"
                | "diff"
                | "patch"
        )
}

/// The text checks every file gets: W291/W293, W292, W391 and mixed indentation. `in_string`
/// lists the lines (ascending) that start inside a string, whose indentation is content; `python`
/// says the file is Python, where any minority of tab-led or space-led lines is a slip.
pub(super) fn check(
    name: &str,
    extension: &str,
    text: &str,
    in_string: &[usize],
    python: bool,
) -> Vec<Finding> {
    let (trailing_is_content, indentation_is_content) = whitespace_is_content(name, extension);
    let mut findings = Vec::new();
    // How each non-blank line's indentation starts.
    let mut leads: Vec<Indented> = Vec::new();
    let mut strings = in_string.iter().peekable();
    let mut last_physical = "";
    let mut line = 0;
    for physical in text.split_inclusive('\n') {
        line += 1;
        let body = physical.trim_end_matches('\n').trim_end_matches('\r');
        let body = body.trim_end_matches('\x0c');
        let stripped = body.trim_end_matches([' ', '\t', '\x0b']);
        last_physical = physical;
        if stripped.len() < body.len() {
            let hard_break =
                trailing_is_content && (body.len() - stripped.len() == 2 || stripped.is_empty());
            if !hard_break {
                findings.push(if stripped.is_empty() {
                    finding(line, "W293", "whitespace on a blank line")
                } else {
                    finding(line, "W291", "trailing whitespace")
                });
            }
        }
        while strings.next_if(|&&at| at < line).is_some() {}
        if stripped.is_empty() || indentation_is_content {
            continue;
        }
        if strings.peek() == Some(&&line) {
            leads.push(Indented {
                line,
                lead: Lead::Neither,
                string_edge: false,
            });
            continue;
        }
        let indent = &stripped[..stripped.len() - stripped.trim_start_matches([' ', '\t']).len()];
        if indent.contains(" \t") {
            findings.push(finding(
                line,
                "E101",
                "indentation contains mixed spaces and tabs",
            ));
        }
        let lead = if indent.starts_with('\t') {
            Lead::Tab
        } else if indent.len() >= 2 {
            Lead::Spaces
        } else {
            Lead::Neither
        };
        let string_edge = opens_or_closes_a_string(stripped.as_bytes());
        leads.push(Indented {
            line,
            lead,
            string_edge,
        });
    }
    if !ending_is_content(name, extension, text) && !text.is_empty() && !text.ends_with('\n') {
        findings.push(finding(line, "W292", "no newline at end of file"));
    } else if !ending_is_content(name, extension, text)
        && !text.is_empty()
        && last_physical.trim_end_matches(['\n', '\r']).is_empty()
    {
        findings.push(finding(line, "W391", "blank line at end of file"));
    }
    let mixed = mixed_indentation(&leads, python);
    findings.sort_by_key(|finding| finding.line);
    for slip in mixed {
        // A line already found mixing both in its own indent is not reported twice.
        let at = findings.partition_point(|finding| finding.line < slip.line);
        let already = findings[at..]
            .iter()
            .take_while(|finding| finding.line == slip.line)
            .any(|finding| finding.code == "E101");
        if !already {
            findings.insert(at, slip);
        }
    }
    findings
}

/// Whether `line` opens or closes a multi-line string: an odd number of backticks (a Go raw
/// string), or a triple quote. One pass over the bytes: this runs on every line of every file.
fn opens_or_closes_a_string(line: &[u8]) -> bool {
    let mut backticks = 0;
    for (at, &byte) in line.iter().enumerate() {
        match byte {
            b'`' => backticks += 1,
            b'"' | b'\'' if line.get(at + 1) == Some(&byte) && line.get(at + 2) == Some(&byte) => {
                return true;
            }
            _ => {}
        }
    }
    backticks % 2 == 1
}

/// Lines indented with the other character than their surroundings. In Python (strings already
/// left out) that is the file's minority, as pycodestyle's W191/E101 see it. Elsewhere a file may
/// embed another language (a Go file's raw string holding a space-indented shell script, a test's
/// tab-indented data), so only a short run of lines whose neighbours above and below are both
/// indented the other way counts: the slip a mixed-indentation fix is about.
fn mixed_indentation(leads: &[Indented], python: bool) -> Vec<Finding> {
    let finding_for = |line: &Indented| match line.lead {
        Lead::Tab => finding(line.line, "W191", "indentation contains tabs"),
        _ => finding(
            line.line,
            "E101",
            "indentation contains spaces among tab-indented lines",
        ),
    };
    if python {
        let count = |wanted: Lead| leads.iter().filter(|line| line.lead == wanted).count();
        let (tabs, spaces) = (count(Lead::Tab), count(Lead::Spaces));
        let minority = match tabs.cmp(&spaces) {
            std::cmp::Ordering::Less => Lead::Tab,
            std::cmp::Ordering::Greater => Lead::Spaces,
            std::cmp::Ordering::Equal => return Vec::new(),
        };
        return leads
            .iter()
            .filter(|line| line.lead == minority)
            .take(MAX_PER_FILE)
            .map(finding_for)
            .collect();
    }
    let mut findings = Vec::new();
    let mut start = 0;
    while start < leads.len() {
        let lead = leads[start].lead;
        let end = leads[start..]
            .iter()
            .position(|other| other.lead != lead)
            .map_or(leads.len(), |offset| start + offset);
        let other = match lead {
            Lead::Tab => Lead::Spaces,
            Lead::Spaces => Lead::Tab,
            Lead::Neither => Lead::Neither,
        };
        let surrounded = other != Lead::Neither
            && start > 0
            && end < leads.len()
            && leads[start - 1].lead == other
            && leads[end].lead == other;
        let embedded = surrounded && leads[start - 1..=end].iter().any(|line| line.string_edge);
        if surrounded && !embedded && end - start <= MAX_SLIP_RUN {
            findings.extend(leads[start..end].iter().map(finding_for));
        }
        start = end;
    }
    findings
}
