//! Kinds of files: source, tests, docs, config, templates (`.github/`), data and generated files,
//! told apart by path (and, for generated files, by a marker in the first lines). The ranking
//! weighs each kind by what the task is about: source first for a bug or feature, tests as
//! supporting context, prose only when the task is about prose.

/// What a file is, for ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileClass {
    /// Code of the project itself.
    Source,
    /// Tests, test helpers and fixtures written as code.
    Test,
    /// Prose: READMEs, changelogs, guides, `docs/`, and example programs.
    Docs,
    /// Build and tool configuration (`Cargo.toml`, `setup.cfg`, CI files, ...).
    Config,
    /// Issue and pull-request templates (`.github/`): reports written from them repeat their words.
    Template,
    /// Data: test data, fixtures, images, CSV, ...
    Data,
    /// Generated or vendored: lock files, minified bundles, protobuf output, `vendor/`.
    Generated,
}

impl FileClass {
    /// A short word for people (`--explain`).
    pub fn label(self) -> &'static str {
        match self {
            FileClass::Source => "source",
            FileClass::Test => "test",
            FileClass::Docs => "docs",
            FileClass::Config => "config",
            FileClass::Template => "template",
            FileClass::Data => "data",
            FileClass::Generated => "generated",
        }
    }

    /// The factor on this kind's text score for a task of `focus`.
    pub fn weight(self, focus: TaskFocus) -> f64 {
        match (focus, self) {
            (TaskFocus::Code, FileClass::Source) => 1.0,
            (TaskFocus::Code, FileClass::Test) => 0.45,
            (TaskFocus::Code, FileClass::Config) => 0.3,
            (TaskFocus::Code, FileClass::Docs) => 0.12,
            (TaskFocus::Code, FileClass::Data) => 0.1,
            (TaskFocus::Code, FileClass::Template | FileClass::Generated) => 0.03,
            (TaskFocus::Prose, FileClass::Docs) => 1.0,
            // Prose lives in source too (comments, help texts, docstrings): keep it close.
            (TaskFocus::Prose, FileClass::Source) => 0.85,
            (TaskFocus::Prose, FileClass::Config | FileClass::Test) => 0.3,
            (TaskFocus::Prose, FileClass::Template) => 0.3,
            (TaskFocus::Prose, FileClass::Data) => 0.1,
            (TaskFocus::Prose, FileClass::Generated) => 0.03,
        }
    }
}

/// What the task asks to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskFocus {
    /// A bug or a feature: the answer is code.
    Code,
    /// Documentation, a README, a changelog, a typo in prose.
    Prose,
}

const SOURCE_EXTENSIONS: &[&str] = &[
    "rs", "py", "pyi", "pyx", "go", "js", "mjs", "cjs", "jsx", "ts", "tsx", "mts", "cts", "java",
    "kt", "kts", "scala", "c", "h", "cc", "cpp", "cxx", "hpp", "hh", "hxx", "cs", "rb", "php",
    "swift", "m", "mm", "lua", "sh", "bash", "zsh", "pl", "pm", "ex", "exs", "erl", "hs", "ml",
    "mli", "clj", "dart", "r", "jl", "zig", "nim", "vue", "svelte", "sql", "fish", "ps1", "el",
    "vim",
];
const DOC_EXTENSIONS: &[&str] = &["md", "rst", "txt", "adoc", "asciidoc", "org", "rdoc", "tex"];
const CONFIG_EXTENSIONS: &[&str] = &[
    "toml",
    "yaml",
    "yml",
    "ini",
    "cfg",
    "conf",
    "json",
    "editorconfig",
    "gitignore",
    "gitattributes",
    "properties",
    "gradle",
    "cmake",
    "mk",
    "nix",
    "bzl",
    "mod",
    "sum",
];
const DOC_NAMES: &[&str] = &[
    "readme",
    "changes",
    "changelog",
    "history",
    "news",
    "authors",
    "contributors",
    "license",
    "licence",
    "copying",
    "notice",
    "contributing",
    "code_of_conduct",
    "security",
    "releasing",
    "faq",
    "todo",
];
const CONFIG_NAMES: &[&str] = &[
    "makefile",
    "dockerfile",
    "justfile",
    "conftest.py",
    "noxfile.py",
    "cmakelists.txt",
    "manifest.in",
    "requirements.txt",
    "go.mod",
    "go.sum",
    "pom.xml",
    "build.xml",
    "gemfile",
    "rakefile",
    "procfile",
    "vagrantfile",
    "build.gradle",
];
const GENERATED_NAMES: &[&str] = &[
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "cargo.lock",
    "poetry.lock",
    "pipfile.lock",
    "composer.lock",
    "gemfile.lock",
    "uv.lock",
];
const DATA_EXTENSIONS: &[&str] = &[
    "csv", "tsv", "jsonl", "ndjson", "xml", "svg", "dat", "log", "out", "snap", "golden", "pem",
    "crt", "key", "der", "patch", "diff", "po", "pot",
];

/// The kind of the file at `path`; `head` is the start of its text (generated markers).
pub fn classify_path(path: &str, head: &str) -> FileClass {
    let lower = path.to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let directories: Vec<&str> = lower.split('/').rev().skip(1).collect();
    let in_directory = |names: &[&str]| directories.iter().any(|dir| names.contains(dir));
    let extension = name.rsplit_once('.').map(|(_, extension)| extension);

    if lower.starts_with(".github/")
        || lower.starts_with(".gitlab/")
        || name.contains("template") && in_directory(&[".github", ".gitlab"])
    {
        return if lower.contains("workflows/") || lower.contains("actions/") {
            FileClass::Config
        } else {
            FileClass::Template
        };
    }
    if GENERATED_NAMES.contains(&name)
        || name.ends_with(".min.js")
        || name.ends_with(".min.css")
        || name.ends_with("_pb2.py")
        || name.ends_with("_pb2_grpc.py")
        || name.ends_with(".pb.go")
        || name.contains(".generated.")
        || name.contains("_generated.")
        || in_directory(&[
            "vendor",
            "node_modules",
            "third_party",
            "dist",
            "_vendor",
            "vendored",
        ])
        || is_generated_text(head)
    {
        return FileClass::Generated;
    }
    if in_directory(&[
        "testdata",
        "fixtures",
        "test_data",
        "test-data",
        "snapshots",
        "__snapshots__",
    ]) || extension.is_some_and(|extension| DATA_EXTENSIONS.contains(&extension))
    {
        return FileClass::Data;
    }
    if CONFIG_NAMES.contains(&name)
        || name.starts_with('.') && !name[1..].contains('.')
        || name.starts_with("tox.")
        || name.starts_with("pyproject.")
        // `setup.py` and `build.rs` are build scripts: code, where bugs get fixed.
        || name.starts_with("setup.") && name != "setup.py"
        || lower.starts_with(".circleci/")
        || lower.starts_with(".ci/")
    {
        return FileClass::Config;
    }
    let is_source = extension.is_some_and(|extension| SOURCE_EXTENSIONS.contains(&extension));
    if is_source && is_test_path(name, &directories) {
        return FileClass::Test;
    }
    let stem = name.split('.').next().unwrap_or(name);
    if DOC_NAMES.contains(&stem)
        || extension.is_some_and(|extension| DOC_EXTENSIONS.contains(&extension))
        || in_directory(&[
            "doc",
            "docs",
            "documentation",
            "examples",
            "example",
            "man",
            "book",
        ])
    {
        return FileClass::Docs;
    }
    if is_source {
        return FileClass::Source;
    }
    if extension.is_some_and(|extension| CONFIG_EXTENSIONS.contains(&extension)) {
        return FileClass::Config;
    }
    if extension.is_some_and(|extension| {
        [
            "html", "htm", "css", "scss", "j2", "jinja", "tmpl", "hbs", "erb",
        ]
        .contains(&extension)
    }) {
        // Web templates and styles are source of a kind, but rarely the answer to a code task.
        return FileClass::Config;
    }
    FileClass::Data
}

/// What a Python package's `__init__.py` declares, for telling vendored packages apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PackageInit {
    /// A package of the project's own.
    Plain,
    /// A package that sets its own `__version__`: a distribution of its own.
    Versioned,
    /// A namespace package (`pkgutil.extend_path`, `pkg_resources.declare_namespace`): its
    /// subpackages are distributions of their own by design, not copies.
    Namespace,
}

/// What the `__init__.py` text `text` declares.
pub(super) fn package_init(text: &str) -> PackageInit {
    if text.contains("extend_path(") || text.contains("declare_namespace(") {
        return PackageInit::Namespace;
    }
    // `__version__ = "1.16"`, or taken from a module of its own (`from .version import
    // __version__`, `from ._version import __version__ as __version__`).
    let sets_version = text.lines().any(|line| {
        let assigned = line
            .strip_prefix("__version__")
            .is_some_and(|rest| rest.trim_start().starts_with('=') && !rest.contains("=="));
        // From its own module (`.`), not the enclosing package's (`..`): a subpackage may
        // re-export its parent's version.
        let imported = line.starts_with("from .")
            && !line.starts_with("from ..")
            && line
                .split_once(" import ")
                .is_some_and(|(_, names)| names.contains("__version__"));
        assigned || imported
    });
    if sets_version {
        PackageInit::Versioned
    } else {
        PackageInit::Plain
    }
}

/// The directories (with a trailing `/`) of Python packages vendored into another package:
/// a package nested in a regular package that sets its own `__version__` is another
/// distribution copied in (`requests/packages/urllib3`, `requests/packages/chardet`), whatever
/// its directory is called. `inits` holds each `__init__.py`'s path and declaration.
pub(super) fn vendored_python_packages(inits: &[(&str, PackageInit)]) -> Vec<String> {
    let declared: std::collections::HashMap<&str, PackageInit> = inits
        .iter()
        .filter_map(|(path, init)| Some((path.strip_suffix("__init__.py")?, *init)))
        .collect();
    let mut vendored: Vec<String> = declared
        .iter()
        .filter(|(_, init)| **init == PackageInit::Versioned)
        .filter(|(directory, _)| {
            // `a/b/` -> `a/`: the enclosing directory must be a regular package.
            let inside = directory.trim_end_matches('/');
            let parent = inside.rfind('/').map_or("", |at| &inside[..=at]);
            !parent.is_empty()
                && matches!(
                    declared.get(parent),
                    Some(PackageInit::Plain | PackageInit::Versioned)
                )
        })
        .map(|(directory, _)| directory.to_string())
        .collect();
    vendored.sort();
    vendored
}

fn is_test_path(name: &str, directories: &[&str]) -> bool {
    const TEST_DIRECTORIES: &[&str] = &[
        "test",
        "tests",
        "testing",
        "__tests__",
        "spec",
        "specs",
        "e2e",
        "integration_tests",
        "benches",
    ];
    let stem = name.split('.').next().unwrap_or(name);
    directories.iter().any(|dir| TEST_DIRECTORIES.contains(dir))
        || stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_tests")
        || stem.ends_with("test") && name.ends_with(".java")
        || stem.ends_with("tests") && name.ends_with(".java")
        || stem == "conftest"
        || name.contains(".test.")
        || name.contains(".spec.")
}

fn is_generated_text(head: &str) -> bool {
    let head = &head[..head.len().min(600)];
    head.lines().take(5).any(|line| {
        line.contains("@generated")
            || line.contains("Code generated")
            || line.contains("DO NOT EDIT")
            || line.contains("Generated by")
            || line.contains("autogenerated")
    })
}

impl TaskFocus {
    /// A short word for people (`--explain`).
    pub fn label(self) -> &'static str {
        match self {
            TaskFocus::Code => "code",
            TaskFocus::Prose => "prose",
        }
    }
}

/// Words that say a task is about prose rather than code.
const PROSE_WORDS: &[&str] = &[
    "docs",
    "documentation",
    "readme",
    "changelog",
    "typo",
    "typos",
    "spelling",
    "wording",
    "tutorial",
    "guide",
    "grammar",
    "rst",
    "sphinx",
    "markdown",
];

/// Code when the task is about behaviour (the usual case); prose when it is mostly about documents.
/// A task that asks for a test is about code, even when it also mentions the changelog or docs.
pub fn task_focus(task_terms: &[String], names_prose_file: bool) -> TaskFocus {
    let prose = task_terms
        .iter()
        .filter(|term| PROSE_WORDS.contains(&term.as_str()))
        .count();
    let asks_for_tests = task_terms
        .iter()
        .any(|term| matches!(term.as_str(), "test" | "tests"));
    if names_prose_file || (prose >= 1 && task_terms.len() < 40 && !asks_for_tests) || prose >= 3 {
        TaskFocus::Prose
    } else {
        TaskFocus::Code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_files_by_path() {
        let cases = [
            ("src/flask/app.py", FileClass::Source),
            ("tools/src/context/mod.rs", FileClass::Source),
            ("cmd/root.go", FileClass::Source),
            ("tests/test_basic.py", FileClass::Test),
            ("src/lib_test.go", FileClass::Test),
            ("web/sum.test.ts", FileClass::Test),
            ("src/test/java/com/x/FooTest.java", FileClass::Test),
            ("conftest.py", FileClass::Config),
            ("docs/quickstart.rst", FileClass::Docs),
            ("CHANGES.rst", FileClass::Docs),
            ("README.md", FileClass::Docs),
            ("docs/conf.py", FileClass::Docs),
            ("examples/tutorial/flaskr/db.py", FileClass::Docs),
            ("setup.cfg", FileClass::Config),
            ("setup.py", FileClass::Source),
            ("build.rs", FileClass::Source),
            ("Cargo.toml", FileClass::Config),
            ("pyproject.toml", FileClass::Config),
            (".github/ISSUE_TEMPLATE/bug-report.md", FileClass::Template),
            (".github/pull_request_template.md", FileClass::Template),
            (".github/workflows/tests.yaml", FileClass::Config),
            ("tests/testdata/sample.json", FileClass::Data),
            ("data/points.csv", FileClass::Data),
            ("Cargo.lock", FileClass::Generated),
            ("static/app.min.js", FileClass::Generated),
            ("api/service.pb.go", FileClass::Generated),
            ("vendor/github.com/x/y.go", FileClass::Generated),
        ];
        for (path, expected) in cases {
            assert_eq!(classify_path(path, ""), expected, "{path}");
        }
        assert_eq!(
            classify_path("src/parser.rs", "// @generated by lalrpop\nuse x;\n"),
            FileClass::Generated
        );
    }

    #[test]
    fn a_versioned_package_inside_another_package_is_vendored() {
        let urllib3 = "\"\"\"urllib3\"\"\"\nfrom .poolmanager import PoolManager\n\n__author__ = 'A'\n__version__ = '1.16'\n";
        assert_eq!(package_init(urllib3), PackageInit::Versioned);
        assert_eq!(package_init("from . import urllib3\n"), PackageInit::Plain);
        let chardet = "from .compat import PY2\nfrom .version import __version__, VERSION\n";
        assert_eq!(package_init(chardet), PackageInit::Versioned);
        for other in [
            "from urllib3 import __version__\n",
            "from ..version import __version__\n",
        ] {
            assert_eq!(package_init(other), PackageInit::Plain, "{other}");
        }
        assert_eq!(
            package_init("if __version__ == '1':\n    pass\n"),
            PackageInit::Plain
        );
        let namespace = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n";
        assert_eq!(package_init(namespace), PackageInit::Namespace);
        let inits = [
            // The project's own package sets a version too; it is not inside another package.
            ("requests/__init__.py", PackageInit::Versioned),
            ("requests/packages/__init__.py", PackageInit::Plain),
            (
                "requests/packages/urllib3/__init__.py",
                PackageInit::Versioned,
            ),
            (
                "requests/packages/urllib3/util/__init__.py",
                PackageInit::Plain,
            ),
            (
                "requests/packages/chardet/__init__.py",
                PackageInit::Versioned,
            ),
            // Subpackages of a namespace package are distributions by design.
            ("google/__init__.py", PackageInit::Namespace),
            ("google/cloud/__init__.py", PackageInit::Versioned),
            // A src layout: `src/` is no package.
            ("src/flask/__init__.py", PackageInit::Versioned),
            ("src/flask/json/__init__.py", PackageInit::Plain),
        ];
        assert_eq!(
            vendored_python_packages(&inits),
            ["requests/packages/chardet/", "requests/packages/urllib3/"]
        );
    }

    #[test]
    fn source_outweighs_prose_for_code_tasks_and_not_for_prose_tasks() {
        let code = task_focus(&["crash".into(), "session".into()], false);
        assert_eq!(code, TaskFocus::Code);
        assert!(FileClass::Source.weight(code) > 5.0 * FileClass::Docs.weight(code));
        assert!(FileClass::Test.weight(code) > FileClass::Docs.weight(code));
        let prose = task_focus(&["typo".into(), "quickstart".into()], false);
        assert_eq!(prose, TaskFocus::Prose);
        assert!(FileClass::Docs.weight(prose) > FileClass::Source.weight(prose));
        // A changelog entry that comes with a test is a code change.
        let terms: Vec<String> = ["add", "changelog", "entry", "admonition", "test"]
            .iter()
            .map(|term| term.to_string())
            .collect();
        assert_eq!(task_focus(&terms, false), TaskFocus::Code);
        assert_eq!(task_focus(&terms[..4], false), TaskFocus::Prose);
    }
}
