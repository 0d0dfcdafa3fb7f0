//! The repo map: the signatures of the top-ranked definitions of ranked files, as a compact
//! outline for the prompt (Aider's repo map), cut to a token budget. It shows what exists and
//! where, for files whose text the prompt does not show in full.

use super::RankedFile;

/// Characters per token for sizing (a conservative average for code with BPE tokenizers).
const CHARS_PER_TOKEN: usize = 4;

/// An outline of `files` (best first): each file's path, then its definitions' header lines with
/// their line numbers, within about `budget_tokens` tokens. Empty when nothing fits.
pub fn repo_map(files: &[RankedFile], budget_tokens: usize) -> String {
    let budget = budget_tokens.saturating_mul(CHARS_PER_TOKEN);
    let mut map = String::new();
    for file in files.iter().filter(|file| !file.symbols.is_empty()) {
        let header = format!("{}:\n", file.path);
        // A file with no room for at least one signature is left out whole.
        let first = file
            .symbols
            .first()
            .map_or(0, |symbol| symbol.signature.len() + 12);
        if map.len() + header.len() + first > budget {
            break;
        }
        map.push_str(&header);
        let mut shown = Vec::new();
        let mut used = map.len();
        for symbol in &file.symbols {
            let line = format!("{:>6}│ {}\n", symbol.line, symbol.signature);
            if used + line.len() > budget {
                break;
            }
            used += line.len();
            shown.push((symbol.line, line));
        }
        // In file order, so the outline reads like the file.
        shown.sort_by_key(|(line, _)| *line);
        for (_, line) in shown {
            map.push_str(&line);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Definition, FileClass};

    fn file(path: &str, names: &[&str]) -> RankedFile {
        RankedFile {
            path: path.into(),
            score: 1.0,
            reasons: Vec::new(),
            regions: Vec::new(),
            class: FileClass::Source,
            signals: Vec::new(),
            symbols: names
                .iter()
                .enumerate()
                .map(|(i, name)| Definition {
                    name: (*name).into(),
                    kind: "function",
                    line: 10 * (i + 1),
                    start_line: 10 * (i + 1),
                    end_line: 10 * (i + 1) + 5,
                    signature: format!("def {name}(self, value):"),
                })
                .collect(),
        }
    }

    #[test]
    fn the_map_lists_signatures_within_the_budget() {
        let files = [
            file("src/cart.py", &["total", "add_item"]),
            file("src/tax.py", &["compute_tax"]),
        ];
        let map = repo_map(&files, 1000);
        assert!(map.contains("src/cart.py:\n"));
        assert!(map.contains("    10│ def total(self, value):\n"));
        assert!(map.contains("src/tax.py:\n"));
        let small = repo_map(&files, 20);
        assert!(small.len() <= 80, "{small}");
        assert!(
            small.contains("src/cart.py") && !small.contains("src/tax.py"),
            "{small}"
        );
        assert_eq!(repo_map(&files, 0), "");
    }
}
