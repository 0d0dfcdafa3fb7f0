//! Static findings, for tasks about lint, style or syntax ("fix empty lines for flake8", "Fix an
//! invalid escape sequence", "Fix syntax error", "fix mixed tab/spaces indentation"): such a task
//! rarely names a place, so its words match nothing; the files holding such a defect are where the
//! answer most likely is, as `spelling` does for typos.
//!
//! Three groups of checks, each run only when the task asks for it ([`checks_for`]):
//! - style: in every text file trailing whitespace (W291/W293) and tabs among space-indented
//!   lines or the reverse (W191/E101); in code and scripts (not documents, data or
//!   configuration, which commonly end either way) no newline at the end (W292) and blank lines
//!   at the end (W391); in Python also pycodestyle's blank-line rules (E301-E306) and E111;
//! - escapes: invalid escape sequences in non-raw Python strings (W605);
//! - syntax: tree-sitter ERROR and MISSING nodes, in files hone has a grammar for
//!   (tree-sitter-python also reads Python 2's print and exec statements and `except X, e`, so an
//!   old code base does not flood a syntax task).
//!
//! A finding pushes its file up the ranking, so a false one in a clean repository misleads: the
//! checks follow pycodestyle's rules where they reproduce them, and skip what they cannot tell
//! apart (a two-space-indented file is its style, not an E111 slip; a Makefile needs its tabs).

mod python;
mod whitespace;

use std::cell::RefCell;

/// Findings kept per file (the rest cannot change its rank).
const MAX_PER_FILE: usize = 16;
/// Syntax errors reported per file: the first is the one that matters, and a parser that lost
/// its footing reports many more.
const MAX_SYNTAX: usize = 3;
/// Files larger than this are not parsed for syntax errors (minified or generated code, which
/// no one fixes by hand, and whose parse would cost more than the rest of the ranking).
const MAX_PARSE_BYTES: usize = 1 << 20;

/// Task words that ask for style checks (the task's terms, lowercased).
const STYLE_WORDS: &[&str] = &[
    "flake8",
    "pycodestyle",
    "pep8",
    "lint",
    "linter",
    "linting",
    "whitespace",
    "whitespaces",
    "trailing",
    "eof",
    "indent",
    "indentation",
    "tabs",
    "w191",
    "e101",
    "e111",
    "w291",
    "w292",
    "w293",
    "w391",
    "e301",
    "e302",
    "e303",
    "e304",
    "e305",
    "e306",
];
/// Words that, beside "escape", make a task about invalid escape sequences.
const ESCAPE_WORDS: &[&str] = &[
    "invalid",
    "sequence",
    "sequences",
    "deprecationwarning",
    "deprecationwarnings",
];

/// Which checks a task asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Checks {
    pub(super) style: bool,
    pub(super) escapes: bool,
    pub(super) syntax: bool,
}

impl Checks {
    /// Whether any check runs.
    /// The checks run as each file is read: all but syntax, which parses, and so runs later on
    /// a budget.
    pub(super) fn while_reading(self) -> Checks {
        Checks {
            syntax: false,
            ..self
        }
    }

    pub(super) fn any(self) -> bool {
        self.style || self.escapes || self.syntax
    }
}

/// The checks a task asks for, from its lowercased terms (split on non-identifier characters) and
/// its raw text (for phrases: "blank lines", "pep 8", "syntax error", "fails to parse").
pub(super) fn checks_for(terms: &[String], task: &str) -> Checks {
    let lower = task.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .collect();
    let has = |word: &str| words.contains(&word) || terms.iter().any(|term| term == word);
    let any_of = |list: &[&str]| list.iter().any(|word| has(word));
    let pair = |first: &[&str], second: &[&str]| {
        words
            .windows(2)
            .any(|two| first.contains(&two[0]) && second.contains(&two[1]))
    };
    let newline_at_end = words
        .windows(3)
        .any(|three| three == ["newline", "at", "end"]);
    let style = any_of(STYLE_WORDS)
        || pair(&["pep"], &["8"])
        || pair(&["blank", "empty"], &["line", "lines"])
        || newline_at_end;
    let escapes = has("w605")
        || (any_of(&["escape", "escapes", "escaped", "escaping"]) && any_of(ESCAPE_WORDS));
    let syntax = any_of(&["syntaxerror", "syntaxerrors"])
        || pair(&["syntax", "parse", "parsing"], &["error", "errors"])
        || pair(&["invalid"], &["syntax"])
        || words.windows(3).any(|three| {
            ["fails", "failed", "failing", "unable"].contains(&three[0])
                && three[1] == "to"
                && three[2] == "parse"
        });
    Checks {
        style,
        escapes,
        syntax,
    }
}

/// A defect a linter or parser would report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// 1-based line.
    pub line: usize,
    /// The linter's code (`W605`, `E302`, ...), or `syntax` for a parse error.
    pub code: &'static str,
    /// For people: `invalid escape sequence '\d'`.
    pub message: String,
}

impl Finding {
    /// `findings` for people: `lint: W605 invalid escape sequence '\d' (line 12), ...`.
    pub fn describe(findings: &[Finding]) -> String {
        let listed: Vec<String> = findings.iter().map(ToString::to_string).collect();
        format!("lint: {}", listed.join(", "))
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} (line {})", self.code, self.message, self.line)
    }
}

/// Findings of `checks` in the file `path` with text `text`: in line order, at most
/// [`MAX_PER_FILE`].
pub(super) fn check(path: &str, text: &str, checks: Checks) -> Vec<Finding> {
    if !checks.any() || text.as_bytes().contains(&0) {
        return Vec::new();
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let extension = name.rsplit_once('.').map_or("", |(_, extension)| extension);
    let is_python = matches!(extension, "py" | "pyi");
    let mut groups: Vec<Vec<Finding>> = Vec::new();
    let scan =
        (is_python && (checks.style || checks.escapes)).then(|| python::scan(text, checks.escapes));
    if let Some(scan) = &scan {
        groups.push(scan.escapes.clone());
    }
    if checks.style {
        let in_string = scan.as_ref().map_or(&[][..], |scan| &scan.in_string[..]);
        groups.push(whitespace::check(
            name, extension, text, in_string, is_python,
        ));
        if let Some(scan) = &scan {
            groups.push(scan.blank_line_findings(text, extension == "pyi"));
            groups.push(scan.indent_findings(text));
        }
    }
    if checks.syntax {
        groups.push(syntax(path, text));
    }
    let mut findings: Vec<Finding> = groups
        .into_iter()
        .flat_map(|group| group.into_iter().take(MAX_PER_FILE))
        .collect();
    findings.sort_by_key(|finding| finding.line);
    // The same escape twice on a line says nothing more.
    findings.dedup();
    findings.truncate(MAX_PER_FILE);
    findings
}

fn finding(line: usize, code: &'static str, message: &str) -> Finding {
    Finding {
        line,
        code,
        message: message.to_string(),
    }
}

thread_local! {
    /// One parser per thread, its language set per file.
    static PARSER: RefCell<tree_sitter::Parser> = RefCell::new(tree_sitter::Parser::new());
}

/// The first [`MAX_SYNTAX`] ERROR or MISSING nodes of `text` parsed with `path`'s grammar.
fn syntax(path: &str, text: &str) -> Vec<Finding> {
    if text.len() > MAX_PARSE_BYTES {
        return Vec::new();
    }
    let Some(language) = super::symbols::grammar(path) else {
        return Vec::new();
    };
    let tree = PARSER.with(|parser| {
        let mut parser = parser.borrow_mut();
        parser.set_language(&language).ok()?;
        parser.parse(text, None)
    });
    let Some(tree) = tree else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    let mut cursor = tree.walk();
    let mut descend = tree.root_node().has_error();
    // Depth-first, into only the subtrees that hold an error.
    while findings.len() < MAX_SYNTAX {
        if descend && cursor.goto_first_child() {
            // Entered a child.
        } else {
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    return findings;
                }
            }
        }
        let node = cursor.node();
        descend = false;
        if node.is_error() {
            findings.push(finding(
                node.start_position().row + 1,
                "syntax",
                "parse error",
            ));
        } else if node.is_missing() {
            let message = format!("missing {}", node.kind());
            findings.push(finding(node.start_position().row + 1, "syntax", &message));
        } else {
            descend = node.has_error();
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style() -> Checks {
        Checks {
            style: true,
            ..Checks::default()
        }
    }

    fn escapes() -> Checks {
        Checks {
            escapes: true,
            ..Checks::default()
        }
    }

    fn syntax_only() -> Checks {
        Checks {
            syntax: true,
            ..Checks::default()
        }
    }

    fn codes(path: &str, text: &str, checks: Checks) -> Vec<(usize, &'static str)> {
        check(path, text, checks)
            .into_iter()
            .map(|finding| (finding.line, finding.code))
            .collect()
    }

    fn checks_of(task: &str) -> Checks {
        let terms: Vec<String> = task
            .to_lowercase()
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|term| !term.is_empty())
            .map(str::to_string)
            .collect();
        checks_for(&terms, task)
    }

    #[test]
    fn tasks_ask_for_the_checks_they_name() {
        let style_tasks = [
            "fix empty lines for flake8",
            "fix flake8 for EOF in __init__.py",
            "Fix trailing whitespace in the powershell completion script",
            "completions: fix mixed tab/spaces indentation",
            "Conform to PEP 8",
            "Add blank lines between functions",
            "style: fix rust-analyzer lint warnings",
        ];
        for task in style_tasks {
            assert_eq!(
                checks_of(task),
                Checks {
                    style: true,
                    ..Checks::default()
                },
                "{task}"
            );
        }
        for task in [
            "Fix an invalid escape sequence",
            "Fixes DeprecationWarnings in Python 3.6 due to invalid escape sequences",
        ] {
            assert_eq!(checks_of(task), escapes(), "{task}");
        }
        assert_eq!(checks_of("Fix syntax error"), syntax_only());
        assert_eq!(checks_of("the config fails to parse"), syntax_only());
        assert!(!checks_of("fix the crash in the parser").any());
        assert!(!checks_of("escape the user's input in the shell command").any());
        assert!(!checks_of("add a line to the help text").any());
    }

    #[test]
    fn top_level_definitions_want_two_blank_lines() {
        let one = "class A:\n    pass\n\nclass B:\n    pass\n";
        assert_eq!(codes("a.py", one, style()), vec![(4, "E302")]);
        let two = "class A:\n    pass\n\n\nclass B:\n    pass\n";
        assert_eq!(codes("a.py", two, style()), vec![]);
        let decorated = "import x\n\n\n@x.y\n@x.z(1)\nclass B:\n    pass\n";
        assert_eq!(codes("a.py", decorated, style()), vec![]);
        let undecorated_gap = "import x\n\n@x.y\n\nclass B:\n    pass\n";
        assert_eq!(
            codes("a.py", undecorated_gap, style()),
            vec![(3, "E302"), (5, "E304")]
        );
        let commented = "import x\n\n\n# A comment.\ndef f():\n    pass\n";
        assert_eq!(codes("a.py", commented, style()), vec![]);
        let first = "# Header.\ndef f():\n    pass\n";
        assert_eq!(codes("a.py", first, style()), vec![]);
        let after_body = "def f():\n    pass\nx = f()\n";
        assert_eq!(codes("a.py", after_body, style()), vec![(3, "E305")]);
        let too_many = "x = 1\n\n\n\ny = 2\n";
        assert_eq!(codes("a.py", too_many, style()), vec![(5, "E303")]);
        let method = "class A:\n    x = 1\n    def f(self):\n        pass\n";
        assert_eq!(codes("a.py", method, style()), vec![(3, "E301")]);
        let overloads = concat!(
            "import t\n",
            "\n",
            "\n",
            "@t.overload\n",
            "def f(x: int) -> int: ...\n",
            "@t.overload\n",
            "def f(x: str) -> str: ...\n",
        );
        assert_eq!(codes("a.py", overloads, style()), vec![]);
        let stubs = concat!(
            "import t\n",
            "\n",
            "\n",
            "@t.overload\n",
            "def f(\n",
            "    x: int,\n",
            ") -> int: ...\n",
            "@t.overload\n",
            "def f(x: str) -> str: ...  # text\n",
            "def f(x):\n",
            "    return x\n",
        );
        assert_eq!(codes("a.py", stubs, style()), vec![]);
        let methods = concat!(
            "class A:\n",
            "    @t.overload\n",
            "    def f(\n",
            "        self, x: int\n",
            "    ) -> int: ...\n",
            "    @t.overload\n",
            "    def f(self, x: str) -> str: ...\n",
            "    def f(self, x):\n",
            "        return x\n",
        );
        assert_eq!(codes("a.py", methods, style()), vec![]);
        let noqa = "x = 1\ndef f():  # noqa: E302\n    pass\n";
        assert_eq!(codes("a.py", noqa, style()), vec![]);
        // Stubs keep definitions together.
        assert_eq!(codes("a.pyi", one, style()), vec![]);
    }

    #[test]
    fn blank_lines_in_strings_and_brackets_are_not_blank_lines() {
        let docstring = "def f():\n    \"\"\"Doc.\n\n\n    More.\n    \"\"\"\n    return 1\n";
        assert_eq!(codes("a.py", docstring, style()), vec![]);
        let call = "x = f(\n    1,\n\n\n    2,\n)\n";
        assert_eq!(codes("a.py", call, style()), vec![]);
        let inside = "def f():\n    x = 1\n\n\n    return x\n";
        assert_eq!(codes("a.py", inside, style()), vec![(5, "E303")]);
        // Trailing whitespace in a docstring still counts, as pycodestyle has it.
        let trailing = "def f():\n    \"\"\"Doc. \n    \"\"\"\n";
        assert_eq!(codes("a.py", trailing, style()), vec![(2, "W291")]);
    }

    #[test]
    fn file_ends_are_checked() {
        assert_eq!(codes("a.py", "x = 1\n\n", style()), vec![(2, "W391")]);
        assert_eq!(codes("a.py", "x = 1", style()), vec![(1, "W292")]);
        assert_eq!(codes("a.py", "x = 1\n", style()), vec![]);
        // Documents and configuration end either way.
        assert_eq!(codes("docs/index.rst", "Title\n\n", style()), vec![]);
        assert_eq!(codes(".coveragerc", "[run]", style()), vec![]);
        assert_eq!(codes("install.ps1", "exit 0", style()), vec![(1, "W292")]);
        assert_eq!(codes("tests/certs/ca", "-----END-----", style()), vec![]);
        assert_eq!(
            codes("bin/run", "#!/bin/sh\nexit 0", style()),
            vec![(2, "W292")]
        );
        assert_eq!(codes("a.py", "", style()), vec![]);
        assert_eq!(codes("a.go", "x\n  \n", style()), vec![(2, "W293")]);
    }

    #[test]
    fn indentation_off_four_is_found_only_where_it_is_a_slip() {
        let slip =
            "def f():\n    if x:\n        a = 1\n        b = 2\n        c = 3\n      d = 4\n";
        assert_eq!(codes("a.py", slip, style()), vec![(6, "E111")]);
        let two_space = "def f():\n  if x:\n    a = 1\n  return 2\n";
        assert_eq!(codes("a.py", two_space, style()), vec![]);
        let continued = "x = f(a,\n      b)\ny = \"\"\"\n  text\n\"\"\"\n";
        assert_eq!(codes("a.py", continued, style()), vec![]);
    }

    #[test]
    fn trailing_whitespace_and_mixed_indentation_in_any_text() {
        let go = "func f() {\n\tx := 1 \n\tif x {\n        return\n\t}\n}\n";
        assert_eq!(codes("a.go", go, style()), vec![(2, "W291"), (4, "E101")]);
        // A space-indented script in a raw string is embedded text, not a slip.
        let embedded = "func f() {\n\tx()\n    a\n    b\n    c\n    d\n\ty()\n}\n";
        assert_eq!(codes("a.go", embedded, style()), vec![]);
        let ps1 = "function F {\n    $a = 1\n\t$b = 2\n    $c = 3\n  \t$d = 4\n}\n";
        assert_eq!(codes("a.ps1", ps1, style()), vec![(3, "W191"), (5, "E101")]);
        let python = "def f():\n    a = 1\n    b = 2\n\treturn a\n";
        assert_eq!(codes("a.py", python, style()), vec![(4, "W191")]);
        let literal = "def f():\n    return '''\n\ta\n'''\n";
        assert_eq!(codes("a.py", literal, style()), vec![]);
        let makefile = "all:\n\tcc -o x x.c\nX = a \\\n    b\nY = 1\n";
        assert_eq!(codes("Makefile", makefile, style()), vec![]);
        let markdown = "A line  \nbreak.\n";
        assert_eq!(codes("README.md", markdown, style()), vec![]);
        let crlf = "x = 1\r\ny = 2\r\n";
        assert_eq!(codes("a.py", crlf, style()), vec![]);
    }

    #[test]
    fn invalid_escapes_are_found_in_strings_that_are_not_raw() {
        assert_eq!(
            codes("a.py", "p = \"\\d+\"\n", escapes()),
            vec![(1, "W605")]
        );
        assert_eq!(codes("a.py", "p = r\"\\d+\"\n", escapes()), vec![]);
        assert_eq!(codes("a.py", "p = Rb'\\d+'\n", escapes()), vec![]);
        assert_eq!(
            codes("a.py", "p = \"\\n\\t\\\\\\x41\\u00e9\"\n", escapes()),
            vec![]
        );
        assert_eq!(
            codes("a.py", "p = b\"\\u00e9\"\n", escapes()),
            vec![(1, "W605")]
        );
        assert_eq!(codes("a.py", "# a \\d comment\np = 1\n", escapes()), vec![]);
        let docstring = "def f():\n    \"\"\"Match.\n\n    \\s+ spaces\n    \"\"\"\n";
        assert_eq!(codes("a.py", docstring, escapes()), vec![(4, "W605")]);
        let fstring = "p = f'{x}\\.txt'\n";
        assert_eq!(codes("a.py", fstring, escapes()), vec![(1, "W605")]);
        assert_eq!(codes("a.js", "p = \"\\d+\"\n", escapes()), vec![]);
        let found = check("a.py", "x = 1\np = '\\d'\n", escapes());
        assert_eq!(
            Finding::describe(&found),
            "lint: W605 invalid escape sequence '\\d' (line 2)"
        );
    }

    #[test]
    fn syntax_errors_are_found_where_a_grammar_parses() {
        let broken = "x = 1\nif not if not x:\n    pass\n";
        let found = check("a.py", broken, syntax_only());
        assert!(!found.is_empty());
        assert_eq!((found[0].line, found[0].code), (2, "syntax"));
        let valid = "import os\n\n\ndef f(x):\n    return [y for y in x if y]\n";
        assert_eq!(codes("a.py", valid, syntax_only()), vec![]);
        assert_eq!(
            codes("a.rs", "fn main() { let x = ; }\n", syntax_only()).len(),
            1
        );
        assert_eq!(codes("a.txt", "if if if\n", syntax_only()), vec![]);
        // Nothing runs unless asked.
        assert_eq!(codes("a.py", broken, Checks::default()), vec![]);
    }

    #[test]
    fn python_two_statements_parse() {
        // tree-sitter-python keeps Python 2's print and exec statements and `except X, e`, so an
        // old code base does not flood a syntax task with findings.
        let python2 = concat!(
            "print 'hello'\n",
            "exec code in scope\n",
            "try:\n",
            "    pass\n",
            "except ValueError, e:\n",
            "    print >>sys.stderr, e\n",
            "x = 0777\n",
            "y = ur'a'\n",
            "z = `x`\n",
        );
        assert_eq!(codes("old.py", python2, syntax_only()), vec![]);
    }
}
