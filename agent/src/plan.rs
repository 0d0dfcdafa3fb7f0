//! Reading the model's plan (`path:START-END: why`, one region a line) and checking it against the
//! repository, with the fallback used when the plan is unusable: the top of the context ranking and
//! the lines failing tests point at.

use hone_prompts::PlanItem;

/// Parse a plan answer. Accepts `path:12-30: why`, `path:12: why`, `path: why`, with optional list
/// markers or backticks; lines that name no known file are dropped. `line_count(path)` returns the
/// file's line count, or `None` when the file does not exist. Ranges are clamped to the file.
pub fn parse_plan(text: &str, line_count: impl Fn(&str) -> Option<usize>) -> Vec<PlanItem> {
    let mut items: Vec<PlanItem> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim().trim_start_matches(['-', '*', '•']).trim();
        let line = line
            .strip_prefix(|c: char| c.is_ascii_digit())
            .map_or(line, |rest| {
                rest.trim_start_matches(|c: char| c.is_ascii_digit())
                    .trim_start_matches(['.', ')'])
                    .trim()
            });
        let Some((location, why)) = split_location(line) else {
            continue;
        };
        let (path, range) = match location.split_once(':') {
            Some((path, range)) => (path, Some(range)),
            None => (location, None),
        };
        let path = path.trim().trim_matches('`').trim_start_matches("./");
        let Some(lines) = line_count(path) else {
            continue;
        };
        let (start, end) = match range.and_then(parse_range) {
            Some((start, end)) if lines > 0 => {
                let start = start.clamp(1, lines);
                (start, end.clamp(start, lines))
            }
            _ => (0, 0),
        };
        let item = PlanItem {
            path: path.to_owned(),
            start_line: start,
            end_line: end,
            why: why.trim().to_owned(),
        };
        if !items.contains(&item) {
            items.push(item);
        }
    }
    items
}

/// Split `location: why` where the location itself may contain `:` (path:range).
fn split_location(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_matches('`');
    // `path:1-2: why`: the separator is the first ": " (or ':' at the end) after the path.
    if let Some(index) = line.find(": ") {
        let location = line[..index].trim_matches('`');
        if location.is_empty() || location.contains(' ') {
            return None;
        }
        return Some((location, &line[index + 2..]));
    }
    let location = line.trim_end_matches(':').trim_matches('`');
    (!location.is_empty() && !location.contains(' ')).then_some((location, ""))
}

fn parse_range(range: &str) -> Option<(usize, usize)> {
    let range = range.trim().trim_matches('`').trim_start_matches('L');
    let (start, end) = match range.split_once(['-', '–']) {
        Some((start, end)) => (start, end.trim_start_matches('L')),
        None => (range, range),
    };
    let start = start.trim().parse::<usize>().ok()?;
    let end = end.trim().parse::<usize>().ok()?;
    Some((start.min(end), start.max(end)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn lines(path: &str) -> Option<usize> {
        match path {
            "src/lib.rs" => Some(40),
            "calc.py" => Some(3),
            _ => None,
        }
    }

    #[test]
    fn reads_ranges_and_drops_unknown_files() {
        let text = "Here is the plan:\n- `src/lib.rs:10-12`: add subtracts\n2. calc.py:2: wrong operator\nnope.rs:1-2: x\ncalc.py:1-99: clamp\n";
        let plan = parse_plan(text, lines);
        assert_eq!(plan.len(), 3, "{plan:?}");
        assert_eq!(
            (plan[0].path.as_str(), plan[0].start_line, plan[0].end_line),
            ("src/lib.rs", 10, 12)
        );
        assert_eq!(plan[0].why, "add subtracts");
        assert_eq!((plan[1].start_line, plan[1].end_line), (2, 2));
        assert_eq!(
            (plan[2].start_line, plan[2].end_line),
            (1, 3),
            "clamped to the file"
        );
    }

    #[test]
    fn whole_file_and_gibberish() {
        let plan = parse_plan("calc.py: rewrite\n", lines);
        assert_eq!((plan[0].start_line, plan[0].end_line), (0, 0));
        assert!(parse_plan("}{ ))(( random words here\n\0\0", lines).is_empty());
    }
}
