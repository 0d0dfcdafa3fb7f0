//! The symbol graph: definitions (functions, classes, types, methods) and references (identifiers
//! used) per file, for Python, Rust, JavaScript/TypeScript, Go, Java and C/C++, read with
//! per-language definition patterns; files are linked by "uses a name the other defines" and
//! ranked with personalised PageRank seeded by the first-stage ranking (task identifiers, named
//! files, trace frames), as Aider ranks its repo map. A task that names only a caller thus reaches
//! the callee. Not a parser: a definition is a header line, which is what the repo map shows.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

/// One definition: its name, 1-based line, and the header line as written (trimmed).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Definition {
    pub name: String,
    pub line: usize,
    pub signature: String,
}

static PYTHON: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?m)^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+([A-Za-z_]\w*)").ok()
});
static RUST: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?m)^[ \t]*(?:pub(?:\([^)]*\))?[ \t]+)?(?:(?:async|const|unsafe|extern(?:[ \t]+\S+)?)[ \t]+)*(?:fn|struct|enum|trait|type|union|mod|macro_rules!)[ \t]+([A-Za-z_]\w*)").ok()
});
static GO: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"(?m)^(?:func(?:[ \t]*\([^)]*\))?|type)[ \t]+([A-Za-z_]\w*)").ok()
});
static JAVASCRIPT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?m)^[ \t]*(?:export[ \t]+)?(?:default[ \t]+)?(?:(?:async[ \t]+)?function\*?|class|interface|type|enum)[ \t]+([A-Za-z_$][\w$]*)",
        r"|^[ \t]*(?:export[ \t]+)?(?:const|let|var)[ \t]+([A-Za-z_$][\w$]*)[ \t]*(?::[^=]*)?=[ \t]*(?:async[ \t]*)?(?:function|\([^)]*\)[^=]*=>|[A-Za-z_$][\w$]*[ \t]*=>)",
        r"|^[ \t]+(?:(?:public|private|protected|static|async|readonly|get|set)[ \t]+)*([A-Za-z_$][\w$]*)[ \t]*\([^)]*\)[ \t]*(?::[^{]*)?\{",
    ))
    .ok()
});
static C_LIKE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    // Java, C, C++, C#: `type name(args) {` headers and class/struct/interface/enum declarations.
    Regex::new(r"(?m)^[ \t]*(?:(?:public|private|protected|static|final|abstract|synchronized|native|virtual|inline|extern|const|override|template[ \t]*<[^>]*>)[ \t]+)*(?:(?:class|struct|interface|enum|record|union)[ \t]+([A-Za-z_]\w*)|[\w:<>,\[\]*& ]+?[ \t*&]([A-Za-z_]\w*)[ \t]*\([^;{)]*\)?[^;]*\{?[ \t]*$)").ok()
});

fn pattern_for(path: &str) -> Option<&'static Regex> {
    let extension = path.rsplit_once('.').map(|(_, extension)| extension)?;
    let pattern = match extension {
        "py" | "pyi" => &PYTHON,
        "rs" => &RUST,
        "go" => &GO,
        "js" | "mjs" | "cjs" | "jsx" | "ts" | "tsx" | "mts" | "cts" => &JAVASCRIPT,
        "java" | "kt" | "c" | "h" | "cc" | "cpp" | "cxx" | "hpp" | "hh" | "cs" | "scala" => &C_LIKE,
        _ => return None,
    };
    pattern.as_ref()
}

/// Keywords that definition patterns of C-like languages can catch as names.
const NOT_NAMES: &[&str] = &[
    "if",
    "for",
    "while",
    "switch",
    "catch",
    "return",
    "sizeof",
    "else",
    "do",
    "new",
    "delete",
    "function",
    "constructor",
    "super",
    "this",
    "typeof",
    "await",
    "yield",
    "main",
    "init",
    "new",
];

/// The definitions in `text`, a file at `path` (empty for languages without a pattern).
pub fn definitions(path: &str, text: &str) -> Vec<Definition> {
    let Some(pattern) = pattern_for(path) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut line = 1;
    let mut counted_to = 0;
    for captures in pattern.captures_iter(text) {
        let Some(name) = (1..captures.len()).find_map(|group| captures.get(group)) else {
            continue;
        };
        if name.as_str().len() < 3 || NOT_NAMES.contains(&name.as_str()) {
            continue;
        }
        let start = captures.get(0).map_or(name.start(), |whole| whole.start());
        line += text[counted_to..start]
            .bytes()
            .filter(|&b| b == b'\n')
            .count();
        counted_to = start;
        let header = text[start..].lines().next().unwrap_or("").trim();
        found.push(Definition {
            name: name.as_str().to_string(),
            line,
            signature: header.chars().take(160).collect(),
        });
    }
    found
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

/// Files linked by references: for each file in `referrers`, an edge to every file defining an
/// identifier it uses, weighted by uses and by how rare the name's definition is.
pub fn reference_edges(
    referrers: &[(usize, &str)],
    defined: &HashMap<&str, Vec<usize>>,
) -> Vec<(usize, usize, f64)> {
    let mut edges: HashMap<(usize, usize), f64> = HashMap::new();
    for &(from, text) in referrers {
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.len() >= 3 && defined.contains_key(word) {
                *uses.entry(word).or_default() += 1;
            }
        }
        for (name, count) in uses {
            let Some(definers) = defined.get(name) else {
                continue;
            };
            // A name defined in many files (`run`, `new`) says little about which one is meant.
            if definers.len() > 8 {
                continue;
            }
            let weight = (1.0 + count as f64).ln() / definers.len() as f64;
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
    use super::*;

    fn names(path: &str, text: &str) -> Vec<String> {
        definitions(path, text)
            .into_iter()
            .map(|definition| format!("{}@{}", definition.name, definition.line))
            .collect()
    }

    #[test]
    fn definitions_in_six_languages() {
        assert_eq!(
            names(
                "a.py",
                "import x\n\nclass Cart:\n    def total(self):\n        pass\n"
            ),
            ["Cart@3", "total@4"]
        );
        assert_eq!(
            names(
                "a.rs",
                "pub struct Cart;\nimpl Cart {\n    pub(crate) async fn total(&self) {}\n}\n"
            ),
            ["Cart@1", "total@3"]
        );
        assert_eq!(
            names(
                "a.go",
                "package x\n\nfunc (c *Cart) Total() int {\n}\ntype Cart struct{}\n"
            ),
            ["Total@3", "Cart@5"]
        );
        assert_eq!(
            names("a.ts", "export function total(cart) {\n}\nexport const price = (x) => x;\nclass Cart {\n  add(item: Item): void {\n  }\n}\n"),
            ["total@1", "price@3", "Cart@4", "add@5"]
        );
        assert_eq!(
            names("Cart.java", "public class Cart {\n    public int total(List<Item> items) {\n        if (x) {\n        }\n    }\n}\n"),
            ["Cart@1", "total@2"]
        );
        assert_eq!(
            names(
                "cart.c",
                "static int cart_total(struct cart *c)\n{\n    return 0;\n}\n"
            ),
            ["cart_total@1"]
        );
    }

    #[test]
    fn pagerank_flows_from_the_seed_to_what_it_uses() {
        // 0 uses 1; 2 is unrelated.
        let rank = personalised_pagerank(3, &[(0, 1, 1.0)], &[1.0, 0.0, 0.0]);
        assert!(rank[1] > 0.3, "{rank:?}");
        assert!(rank[2] < 1e-9, "{rank:?}");
    }
}
