//! Fitting selected code into a prompt's token budget: files are taken in rank order, whole while they
//! fit, then cut down to the lines around their most relevant region, then left out (and named, so the
//! model knows they exist).

use crate::ContextFile;

/// Counts tokens the way the model will.
pub trait TokenCounter {
    fn count(&self, text: &str) -> usize;
}

/// An estimate for backends without a local tokenizer: one token per 3.5 characters, rounded up
/// (code under BPE tokenizers averages 3-4 characters per token; erring high keeps the prompt inside
/// the window).
#[derive(Debug, Clone, Copy, Default)]
pub struct CharEstimate;

impl TokenCounter for CharEstimate {
    fn count(&self, text: &str) -> usize {
        (text.chars().count() * 2).div_ceil(7)
    }
}

impl<F: Fn(&str) -> usize> TokenCounter for F {
    fn count(&self, text: &str) -> usize {
        self(text)
    }
}

/// The files that fit, and the paths left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fitted {
    pub files: Vec<ContextFile>,
    pub omitted: Vec<String>,
}

/// Keep files (ranked, most relevant first) while their tokens fit in `budget`; a file too big to fit
/// whole is narrowed to a window of lines around its region (`start_line..=end_line` as ranked)
/// before it is dropped.
pub fn fit_context(files: Vec<ContextFile>, budget: usize, counter: &dyn TokenCounter) -> Fitted {
    let mut fitted = Fitted::default();
    let mut left = budget;
    for file in files {
        // Path line and fences cost a few tokens too.
        let overhead = counter.count(&file.path) + 8;
        let cost = counter.count(&file.content) + overhead;
        if cost <= left {
            left -= cost;
            fitted.files.push(file);
            continue;
        }
        if let Some(narrowed) = narrow(&file, left.saturating_sub(overhead), counter) {
            left = left.saturating_sub(counter.count(&narrowed.content) + overhead);
            fitted.files.push(narrowed);
        } else {
            fitted.omitted.push(file.path);
        }
    }
    fitted
}

/// The largest window of lines centred on the file's region that fits in `budget` tokens; `None` when
/// not even a few lines fit.
fn narrow(file: &ContextFile, budget: usize, counter: &dyn TokenCounter) -> Option<ContextFile> {
    let lines: Vec<&str> = file.content.lines().collect();
    if lines.is_empty() || budget < 16 {
        return None;
    }
    // Lines of `content` are numbered from `file.start_line`.
    let first = file.start_line.max(1);
    let centre = lines.len() / 2;
    let (mut low, mut high) = (centre, centre + 1);
    let mut cost = counter.count(lines[centre]) + 1;
    if cost > budget {
        return None;
    }
    loop {
        let mut grew = false;
        for take_low in [true, false] {
            let next = if take_low {
                low.checked_sub(1)
            } else {
                (high < lines.len()).then_some(high)
            };
            if let Some(index) = next {
                let extra = counter.count(lines[index]) + 1;
                if cost + extra <= budget {
                    cost += extra;
                    if take_low {
                        low = index;
                    } else {
                        high = index + 1;
                    }
                    grew = true;
                }
            }
        }
        if !grew {
            break;
        }
    }
    if high - low < 3 {
        return None;
    }
    Some(ContextFile {
        path: file.path.clone(),
        content: lines[low..high].join("\n"),
        reason: file.reason.clone(),
        start_line: first + low,
        end_line: first + high - 1,
        whole: false,
    })
}

/// One part of a prompt that competes for the model's window (code, failing tests, the file list,
/// repository instructions, and any section a caller adds, such as a repository map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// Tokens the section would take whole.
    pub wanted: usize,
    /// Tokens it gets before any later section gets more than its own floor.
    pub floor: usize,
}

impl Section {
    pub fn new(name: impl Into<String>, wanted: usize, floor: usize) -> Self {
        Self {
            name: name.into(),
            wanted,
            floor,
        }
    }
}

/// Split `available` tokens between `sections`, given most important first: each gets its floor
/// (scaled down together when even the floors do not fit), then the rest tops the sections up to
/// what they want, in order. The result never exceeds `available` and never gives a section more
/// than it wants.
pub fn allot(available: usize, sections: &[Section]) -> Vec<usize> {
    let floors: Vec<usize> = sections
        .iter()
        .map(|section| section.floor.min(section.wanted))
        .collect();
    let floor_total: usize = floors.iter().sum();
    let mut given: Vec<usize> = if floor_total > available {
        floors
            .iter()
            .map(|floor| floor * available / floor_total.max(1))
            .collect()
    } else {
        floors
    };
    let mut left = available.saturating_sub(given.iter().sum());
    for (section, tokens) in sections.iter().zip(&mut given) {
        let more = section.wanted.saturating_sub(*tokens).min(left);
        *tokens += more;
        left -= more;
    }
    given
}

/// The longest head of `text`, cut at a line end, that fits in `budget` tokens, with a note saying
/// how many lines were cut; `text` itself when it fits.
pub fn cut_to_tokens(text: &str, budget: usize, counter: &dyn TokenCounter) -> String {
    if counter.count(text) <= budget {
        return text.to_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    let note_cost = 12;
    let mut used = 0;
    let mut kept = 0;
    for line in &lines {
        let cost = counter.count(line) + 1;
        if used + cost + note_cost > budget {
            break;
        }
        used += cost;
        kept += 1;
    }
    let mut out = lines[..kept].join("\n");
    if kept == 0 {
        // Not even the first line fits: keep the longest head of it that does.
        let first = lines.first().copied().unwrap_or("");
        let bounds: Vec<usize> = first.char_indices().map(|(at, _)| at).collect();
        let fits = |chars: usize| {
            let end = bounds.get(chars).copied().unwrap_or(first.len());
            counter.count(&first[..end]) + note_cost <= budget
        };
        let (mut low, mut high) = (0, bounds.len());
        while low < high {
            let middle = (low + high).div_ceil(2);
            if fits(middle) {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        if low > 0 {
            let end = bounds.get(low).copied().unwrap_or(first.len());
            out.push_str(&first[..end]);
            out.push_str(" [...]");
            kept = 1;
        }
    }
    if kept < lines.len() {
        if kept > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "[... {} more line(s) cut to fit the prompt]",
            lines.len() - kept
        ));
    }
    out
}
