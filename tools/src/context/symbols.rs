//! The symbol graph's parts: definitions (functions, classes, types, methods, impls, with their
//! whole extent) and references (names called or used) per file, read with tree-sitter tags for
//! Python, Rust, JavaScript/TypeScript, Go, Java and C/C++; and personalised PageRank over the
//! files linked by "uses a name the other defines", as Aider ranks its repo map. A task that names
//! only a caller thus reaches the callee. The same parse gives the regions (`Definition`'s lines).

use std::collections::HashMap;
use std::sync::LazyLock;

use tree_sitter_tags::{TagsConfiguration, TagsContext};

/// One definition: its name, kind (`function`, `class`, `method`, `impl`, ...), the 1-based line of
/// its name, the 1-based lines its whole definition spans, and the name's line as written
/// (trimmed): the signature the repo map shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Definition {
    pub name: String,
    pub kind: &'static str,
    pub line: usize,
    pub start_line: usize,
    pub end_line: usize,
    pub signature: String,
}

/// What one parse of a file gives: its definitions (in file order) and the names it references.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileTags {
    pub definitions: Vec<Definition>,
    /// Referenced names with how often each is used.
    pub references: Vec<(String, usize)>,
}

/// Rust impl blocks are regions (and define their type's methods' home); the shipped query only
/// references them.
const RUST_EXTRA: &str = "
(impl_item type: (type_identifier) @name) @definition.impl
(impl_item type: (generic_type type: (type_identifier) @name)) @definition.impl
";

/// C: whole function definitions (the shipped query tags only the declarator, one line) and calls.
const C_TAGS: &str = "
(function_definition declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))) @definition.function
(struct_specifier name: (type_identifier) @name body: (_)) @definition.class
(enum_specifier name: (type_identifier) @name body: (_)) @definition.type
(type_definition declarator: (type_identifier) @name) @definition.type
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
";

/// C++: C's, plus methods (in and out of class), classes and namespaces.
const CPP_TAGS: &str = "
(function_definition declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))) @definition.function
(function_definition declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method
(function_definition declarator: (function_declarator declarator: (qualified_identifier name: (identifier) @name))) @definition.method
(class_specifier name: (type_identifier) @name body: (_)) @definition.class
(struct_specifier name: (type_identifier) @name body: (_)) @definition.class
(enum_specifier name: (type_identifier) @name body: (_)) @definition.type
(namespace_definition name: (namespace_identifier) @name) @definition.module
(type_definition declarator: (type_identifier) @name) @definition.type
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (qualified_identifier name: (identifier) @name)) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Language {
    Python,
    Rust,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    Java,
    C,
    Cpp,
}

/// The language of `path` by its extension, when hone has a grammar for it.
fn language_for(path: &str) -> Option<Language> {
    let extension = path.rsplit_once('.').map(|(_, extension)| extension)?;
    Some(match extension {
        "py" | "pyi" => Language::Python,
        "rs" => Language::Rust,
        "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
        "ts" | "mts" | "cts" => Language::TypeScript,
        "tsx" => Language::Tsx,
        "go" => Language::Go,
        "java" => Language::Java,
        "c" | "h" => Language::C,
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => Language::Cpp,
        _ => return None,
    })
}

/// Whether hone can parse `path` (it has a grammar for the file's language).
pub fn has_grammar(path: &str) -> bool {
    language_for(path).is_some()
}

/// The tree-sitter grammar of `path`'s language, when hone has one (for parsing a file whole,
/// without the tag queries).
pub(super) fn grammar(path: &str) -> Option<tree_sitter::Language> {
    Some(match language_for(path)? {
        Language::Python => tree_sitter_python::LANGUAGE.into(),
        Language::Rust => tree_sitter_rust::LANGUAGE.into(),
        Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
        Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
        Language::Go => tree_sitter_go::LANGUAGE.into(),
        Language::Java => tree_sitter_java::LANGUAGE.into(),
        Language::C => tree_sitter_c::LANGUAGE.into(),
        Language::Cpp => tree_sitter_cpp::LANGUAGE.into(),
    })
}

fn configure(language: tree_sitter::Language, query: &str) -> Option<TagsConfiguration> {
    TagsConfiguration::new(language, query, "").ok()
}

static PYTHON: LazyLock<Option<TagsConfiguration>> = LazyLock::new(|| {
    configure(
        tree_sitter_python::LANGUAGE.into(),
        tree_sitter_python::TAGS_QUERY,
    )
});
static RUST: LazyLock<Option<TagsConfiguration>> = LazyLock::new(|| {
    configure(
        tree_sitter_rust::LANGUAGE.into(),
        &format!("{RUST_EXTRA}\n{}", tree_sitter_rust::TAGS_QUERY),
    )
});
static JAVASCRIPT: LazyLock<Option<TagsConfiguration>> = LazyLock::new(|| {
    configure(
        tree_sitter_javascript::LANGUAGE.into(),
        tree_sitter_javascript::TAGS_QUERY,
    )
});
/// TypeScript's query covers what it adds to JavaScript; the two together cover the language.
static TYPESCRIPT: LazyLock<Option<TagsConfiguration>> = LazyLock::new(|| {
    configure(
        tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        &format!(
            "{}\n{}",
            tree_sitter_javascript::TAGS_QUERY,
            tree_sitter_typescript::TAGS_QUERY
        ),
    )
});
static TSX: LazyLock<Option<TagsConfiguration>> = LazyLock::new(|| {
    configure(
        tree_sitter_typescript::LANGUAGE_TSX.into(),
        &format!(
            "{}\n{}",
            tree_sitter_javascript::TAGS_QUERY,
            tree_sitter_typescript::TAGS_QUERY
        ),
    )
});
static GO: LazyLock<Option<TagsConfiguration>> =
    LazyLock::new(|| configure(tree_sitter_go::LANGUAGE.into(), tree_sitter_go::TAGS_QUERY));
static JAVA: LazyLock<Option<TagsConfiguration>> = LazyLock::new(|| {
    configure(
        tree_sitter_java::LANGUAGE.into(),
        tree_sitter_java::TAGS_QUERY,
    )
});
static C: LazyLock<Option<TagsConfiguration>> =
    LazyLock::new(|| configure(tree_sitter_c::LANGUAGE.into(), C_TAGS));
static CPP: LazyLock<Option<TagsConfiguration>> =
    LazyLock::new(|| configure(tree_sitter_cpp::LANGUAGE.into(), CPP_TAGS));

fn configuration(language: Language) -> Option<&'static TagsConfiguration> {
    let configuration = match language {
        Language::Python => &PYTHON,
        Language::Rust => &RUST,
        Language::JavaScript => &JAVASCRIPT,
        Language::TypeScript => &TYPESCRIPT,
        Language::Tsx => &TSX,
        Language::Go => &GO,
        Language::Java => &JAVA,
        Language::C => &C,
        Language::Cpp => &CPP,
    };
    configuration.as_ref()
}

/// Compile the tag queries of the languages of `paths` at once, one thread per language (a query
/// takes tens of milliseconds to compile; each is compiled once per process).
pub fn prepare<'a>(paths: impl Iterator<Item = &'a str>) {
    let mut languages: Vec<Language> = Vec::new();
    for language in paths.filter_map(language_for) {
        if !languages.contains(&language) {
            languages.push(language);
        }
    }
    std::thread::scope(|scope| {
        for language in languages {
            scope.spawn(move || configuration(language).is_some());
        }
    });
}

/// Compile, in the background of a ranking, the tag queries of the languages at least a tenth of
/// `paths` with a grammar are written in (those the symbol graph will surely parse); the rest are
/// compiled when a file of theirs is parsed.
pub fn prepare_main_languages<'a>(paths: impl Iterator<Item = &'a str>) {
    let mut counts: Vec<(Language, usize)> = Vec::new();
    let mut total = 0;
    for language in paths.filter_map(language_for) {
        total += 1;
        match counts.iter_mut().find(|(seen, _)| *seen == language) {
            Some((_, count)) => *count += 1,
            None => counts.push((language, 1)),
        }
    }
    std::thread::scope(|scope| {
        for (language, count) in counts {
            if count * 10 >= total {
                scope.spawn(move || configuration(language).is_some());
            }
        }
    });
}

/// Names too short or too common to say which definition is meant.
fn is_meaningful(name: &str) -> bool {
    name.len() >= 3 && !matches!(name, "main" | "init" | "new" | "__init__" | "constructor")
}

/// Parses files for their tags; one per thread (the parser is reused across files).
pub struct Tagger {
    context: TagsContext,
}

impl std::fmt::Debug for Tagger {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Tagger")
    }
}

impl Default for Tagger {
    fn default() -> Self {
        Self {
            context: TagsContext::new(),
        }
    }
}

impl Tagger {
    /// The definitions and references of `text`, a file at `path` (empty for languages without a
    /// grammar, and for text the grammar cannot read at all).
    pub fn tags(&mut self, path: &str, text: &str) -> FileTags {
        let Some(configuration) = language_for(path).and_then(configuration) else {
            return FileTags::default();
        };
        let Ok((tags, _)) = self
            .context
            .generate_tags(configuration, text.as_bytes(), None)
        else {
            return FileTags::default();
        };
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        let line_of = |byte: usize| line_starts.partition_point(|&start| start <= byte);
        let mut found = FileTags::default();
        let mut references: HashMap<String, usize> = HashMap::new();
        let mut seen_names: Vec<usize> = Vec::new();
        for tag in tags.flatten() {
            let Some(name) = text.get(tag.name_range.clone()) else {
                continue;
            };
            if !is_meaningful(name) {
                continue;
            }
            if !tag.is_definition {
                *references.entry(name.to_string()).or_default() += 1;
                continue;
            }
            // One definition per name position (overlapping patterns tag a method twice).
            if seen_names.contains(&tag.name_range.start) {
                continue;
            }
            seen_names.push(tag.name_range.start);
            let signature = text
                .get(tag.line_range.clone())
                .unwrap_or(name)
                .trim()
                .chars()
                .take(160)
                .collect();
            let end = tag.range.end.max(tag.range.start + 1) - 1;
            found.definitions.push(Definition {
                name: name.to_string(),
                kind: configuration.syntax_type_name(tag.syntax_type_id),
                line: line_of(tag.name_range.start),
                start_line: line_of(tag.range.start),
                end_line: line_of(end),
                signature,
            });
        }
        found
            .definitions
            .sort_by_key(|definition| (definition.start_line, definition.line));
        found.references = references.into_iter().collect();
        found.references.sort();
        found
    }
}

/// The definitions in `text`, a file at `path` (empty for languages without a grammar).
pub fn definitions(path: &str, text: &str) -> Vec<Definition> {
    Tagger::default().tags(path, text).definitions
}

/// Personalised PageRank over `edges` (from, to, weight) with restart distribution `seeds`
/// (need not sum to 1). Returns one score per node, summing to about 1.
pub fn personalised_pagerank(
    nodes: usize,
    edges: &[(usize, usize, f64)],
    seeds: &[f64],
) -> Vec<f64> {
    const DAMPING: f64 = 0.85;
    const ITERATIONS: usize = 30;
    let total: f64 = seeds.iter().sum();
    if nodes == 0 || total <= 0.0 {
        return vec![0.0; nodes];
    }
    let restart: Vec<f64> = seeds.iter().map(|seed| seed / total).collect();
    let mut out_weight = vec![0.0; nodes];
    for &(from, _, weight) in edges {
        out_weight[from] += weight;
    }
    let mut rank = restart.clone();
    for _ in 0..ITERATIONS {
        let mut next: Vec<f64> = restart.iter().map(|r| (1.0 - DAMPING) * r).collect();
        let mut dangling = 0.0;
        for (node, &weight) in out_weight.iter().enumerate() {
            if weight <= 0.0 {
                dangling += rank[node];
            }
        }
        for (node, value) in next.iter_mut().enumerate() {
            *value += DAMPING * dangling * restart[node];
        }
        for &(from, to, weight) in edges {
            next[to] += DAMPING * rank[from] * weight / out_weight[from];
        }
        rank = next;
    }
    rank
}

/// Files linked by references: for each file in `referrers` (with the names it references and
/// how often), an edge to every file defining one of them, weighted by uses and by how rare the
/// name's definition is.
pub fn reference_edges(
    referrers: &[(usize, &[(String, usize)])],
    defined: &HashMap<&str, Vec<usize>>,
) -> Vec<(usize, usize, f64)> {
    let mut edges: HashMap<(usize, usize), f64> = HashMap::new();
    for &(from, references) in referrers {
        for (name, count) in references {
            let Some(definers) = defined.get(name.as_str()) else {
                continue;
            };
            // A name defined in many files (`run`, `parse`) says little about which one is meant.
            if definers.len() > 8 {
                continue;
            }
            let weight = (1.0 + *count as f64).ln() / definers.len() as f64;
            for &to in definers {
                if to != from {
                    *edges.entry((from, to)).or_default() += weight;
                }
            }
        }
    }
    let mut edges: Vec<(usize, usize, f64)> = edges
        .into_iter()
        .map(|((from, to), weight)| (from, to, weight))
        .collect();
    edges.sort_by_key(|edge| (edge.0, edge.1));
    edges
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn names(path: &str, text: &str) -> Vec<String> {
        definitions(path, text)
            .into_iter()
            .map(|definition| {
                format!(
                    "{}@{}-{}",
                    definition.name, definition.start_line, definition.end_line
                )
            })
            .collect()
    }

    #[test]
    fn definitions_and_their_extent_in_every_language() {
        assert_eq!(
            names(
                "a.py",
                "import x\n\nclass Cart:\n    def total(self):\n        pass\n\n    async def pay(self):\n        return 1\n"
            ),
            ["Cart@3-8", "total@4-5", "pay@7-8"]
        );
        assert_eq!(
            names(
                "a.rs",
                "pub struct Cart;\nimpl Cart {\n    pub(crate) async fn total(&self) {\n    }\n}\n"
            ),
            ["Cart@1-1", "Cart@2-5", "total@3-4"]
        );
        assert_eq!(
            names(
                "a.go",
                "package x\n\nfunc (c *Cart) Total() int {\n\treturn 0\n}\ntype Cart struct{}\n"
            ),
            ["Total@3-5", "Cart@6-6"]
        );
        assert_eq!(
            names("a.ts", "export function total(cart) {\n}\nexport const price = (x) => x;\nclass Cart {\n  add(item: Item): void {\n  }\n}\ninterface Item {\n  price: number;\n}\n"),
            ["total@1-2", "price@3-3", "Cart@4-7", "add@5-6", "Item@8-10"]
        );
        assert_eq!(
            names("a.js", "function total(cart) {\n  return sum(cart);\n}\n"),
            ["total@1-3"]
        );
        assert_eq!(
            names("Cart.java", "public class Cart {\n    public int total(List<Item> items) {\n        if (x) {\n        }\n        return 0;\n    }\n}\n"),
            ["Cart@1-7", "total@2-6"]
        );
        assert_eq!(
            names(
                "cart.c",
                "struct cart { int n; };\nstatic int cart_total(struct cart *c)\n{\n    return 0;\n}\n"
            ),
            ["cart@1-1", "cart_total@2-5"]
        );
        assert_eq!(
            names(
                "cart.cpp",
                "namespace shop {\nclass Cart {\n  int total() { return 0; }\n};\n}\nint Cart::pay() {\n  return total();\n}\n"
            ),
            ["shop@1-5", "Cart@2-4", "total@3-3", "pay@6-8"]
        );
        assert!(definitions("notes.md", "# def total(x):\n").is_empty());
    }

    #[test]
    fn references_are_the_names_called() {
        let tags = Tagger::default().tags(
            "checkout.py",
            "from pricing import apply_rules\n\ndef checkout(cart):\n    total = apply_rules(cart)\n    return cart.finish(apply_rules(total))\n",
        );
        assert!(tags.references.contains(&("apply_rules".to_string(), 2)));
        assert!(tags.references.contains(&("finish".to_string(), 1)));
        let tags = Tagger::default().tags(
            "main.go",
            "package main\n\nfunc main() {\n\tcart.Total(parseItems())\n}\n",
        );
        let names: Vec<&str> = tags
            .references
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(names, ["Total", "parseItems"]);
    }

    #[test]
    fn pagerank_flows_from_the_seed_to_what_it_uses() {
        // 0 uses 1; 2 is unrelated.
        let rank = personalised_pagerank(3, &[(0, 1, 1.0)], &[1.0, 0.0, 0.0]);
        assert!(rank[1] > 0.3, "{rank:?}");
        assert!(rank[2] < 1e-9, "{rank:?}");
    }
}
