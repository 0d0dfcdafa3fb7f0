//! Turning a growing committed prefix into the text a client may see: deltas for streaming, stop-string
//! truncation, and holding back a tail that could still become a stop string (OpenAI never sends the
//! stop string, not even its first characters).

/// Tracks what was sent of one choice's text.
#[derive(Debug, Default)]
pub struct TextTracker {
    stop: Vec<String>,
    sent: String,
}

/// What a new committed prefix means for the client.
#[derive(Debug, PartialEq, Eq)]
pub struct TextUpdate {
    /// Text to send now (may be empty).
    pub delta: String,
    /// A stop string was found: the choice is complete, the text ends before it.
    pub stopped: bool,
}

impl TextTracker {
    pub fn new(stop: Vec<String>) -> Self {
        Self {
            stop,
            sent: String::new(),
        }
    }

    /// Everything sent so far.
    #[cfg(test)]
    pub fn sent(&self) -> &str {
        &self.sent
    }

    /// `text` is the committed prefix of the generation so far (it only grows); `finished` says no more
    /// text will come, so nothing needs holding back.
    pub fn update(&mut self, text: &str, finished: bool) -> TextUpdate {
        if !text.starts_with(self.sent.as_str()) {
            // A detokeniser may revise its last characters (a partial UTF-8 sequence becoming a
            // character); wait until the text agrees with what was sent again.
            return TextUpdate {
                delta: String::new(),
                stopped: false,
            };
        }
        let stop_at = self
            .stop
            .iter()
            .filter_map(|stop| text.find(stop.as_str()))
            .min();
        let (end, stopped) = match stop_at {
            Some(position) => (position, true),
            None if finished => (text.len(), false),
            None => (text.len() - self.held_back(text), false),
        };
        let end = end.max(self.sent.len());
        let delta = text
            .get(self.sent.len()..end)
            .unwrap_or_default()
            .to_string();
        self.sent.push_str(&delta);
        TextUpdate { delta, stopped }
    }

    /// Length of the longest tail of `text` that is a proper prefix of a stop string, snapped to a
    /// character boundary.
    fn held_back(&self, text: &str) -> usize {
        let mut longest = 0;
        for stop in &self.stop {
            for (index, _) in stop.char_indices().skip(1) {
                if index > longest && text.ends_with(&stop[..index]) {
                    longest = index;
                }
            }
        }
        longest.min(text.len() - self.sent.len().min(text.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(stop: &[&str], prefixes: &[&str]) -> (Vec<String>, bool) {
        let mut tracker = TextTracker::new(stop.iter().map(|s| s.to_string()).collect());
        let mut deltas = Vec::new();
        for (index, prefix) in prefixes.iter().enumerate() {
            let update = tracker.update(prefix, index + 1 == prefixes.len());
            deltas.push(update.delta);
            if update.stopped {
                return (deltas, true);
            }
        }
        (deltas, false)
    }

    #[test]
    fn without_stops_deltas_follow_the_prefix() {
        assert_eq!(
            feed(&[], &["a", "abc", "abc", "abcd"]).0,
            vec!["a", "bc", "", "d"]
        );
    }

    #[test]
    fn a_partial_stop_is_held_back_then_released() {
        let (deltas, stopped) = feed(&["END"], &["xE", "xEN", "xENx", "xENxy"]);
        assert_eq!(deltas, vec!["x", "", "ENx", "y"]);
        assert!(!stopped);
    }

    /// Moved from the local backend's former engine thread, whose streaming is now this one's: the
    /// text so far grows `fn f` → `fn f\nE` → `fn f\nEN`; the tails `\nE`, `\nEN` could become
    /// the stop string `\nEND`, so they are held back until the text is final.
    #[test]
    fn a_stop_string_split_across_chunks_is_never_streamed() {
        let (deltas, stopped) = feed(&["\nEND"], &["fn f", "fn f\nE", "fn f\nEN"]);
        let deltas: Vec<String> = deltas.into_iter().filter(|d| !d.is_empty()).collect();
        assert_eq!(deltas, vec!["fn f".to_owned(), "\nEN".to_owned()]);
        assert!(!stopped);
        let (deltas, _) = feed(&["\nEND"], &["a\nE", "a\nENx", "a\nENxy"]);
        assert_eq!(deltas.concat(), "a\nENxy");
    }

    #[test]
    fn text_stops_before_the_stop_string() {
        let (deltas, stopped) = feed(&["\n\n", "END"], &["ab", "ab\n", "ab\n\ncd"]);
        assert_eq!(deltas.concat(), "ab");
        assert!(stopped);
    }

    #[test]
    fn earliest_stop_wins_and_unicode_is_safe() {
        let (deltas, stopped) = feed(&["é!", "b"], &["aé", "aéé!b"]);
        assert_eq!(deltas.concat(), "aé");
        assert!(stopped);
    }

    #[test]
    fn revised_tail_waits() {
        let mut tracker = TextTracker::new(Vec::new());
        assert_eq!(tracker.update("ab\u{fffd}", false).delta, "ab\u{fffd}");
        assert_eq!(tracker.update("abc", false).delta, "");
        assert_eq!(tracker.sent(), "ab\u{fffd}");
    }
}
