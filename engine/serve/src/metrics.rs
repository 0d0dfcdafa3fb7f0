//! Server metrics in Prometheus' text exposition format (`GET /metrics`): request counts by endpoint
//! and status, queue depth and active sequences, batch sizes per step, prompt and generated tokens,
//! forward passes (NFE), and latency histograms. Plain atomics and short `std::sync::Mutex` sections
//! (never held across an `.await`); no metrics crate needed for a dozen series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A cumulative histogram with fixed upper bounds.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        for (bound, count) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if value <= *bound {
                *count += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// All of the server's metrics.
#[derive(Debug)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub queue_depth: AtomicU64,
    pub active_sequences: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub forward_passes: AtomicU64,
    pub steps: AtomicU64,
    pub cancelled: AtomicU64,
    batch_size: Mutex<Histogram>,
    request_seconds: Mutex<Histogram>,
    queue_seconds: Mutex<Histogram>,
    first_text_seconds: Mutex<Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            queue_depth: AtomicU64::new(0),
            active_sequences: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            generated_tokens: AtomicU64::new(0),
            forward_passes: AtomicU64::new(0),
            steps: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            batch_size: Mutex::new(Histogram::new(BATCH)),
            request_seconds: Mutex::new(Histogram::new(SECONDS)),
            queue_seconds: Mutex::new(Histogram::new(SECONDS)),
            first_text_seconds: Mutex::new(Histogram::new(SECONDS)),
        }
    }
}

fn observe(histogram: &Mutex<Histogram>, value: f64) {
    if let Ok(mut histogram) = histogram.lock() {
        histogram.observe(value);
    }
}

impl Metrics {
    /// A finished HTTP request (any outcome) on `endpoint`.
    /// `seconds` is the latency when it is known now (streams report theirs when they end).
    pub fn request(&self, endpoint: &'static str, status: u16, seconds: Option<f64>) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((endpoint, status)).or_default() += 1;
        }
        if let (true, Some(seconds)) = (status < 400, seconds) {
            self.observe_request_seconds(seconds);
        }
    }

    /// Latency of one successful request.
    pub fn observe_request_seconds(&self, seconds: f64) {
        observe(&self.request_seconds, seconds);
    }

    /// One decoding step over `batch` sequences.
    pub fn step(&self, batch: usize, forward_passes: u64) {
        self.steps.fetch_add(1, Ordering::Relaxed);
        self.forward_passes
            .fetch_add(forward_passes, Ordering::Relaxed);
        observe(&self.batch_size, batch as f64);
    }

    pub fn queue_wait(&self, seconds: f64) {
        observe(&self.queue_seconds, seconds);
    }

    pub fn first_text(&self, seconds: f64) {
        observe(&self.first_text_seconds, seconds);
    }

    pub fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP hone_requests_total HTTP requests by endpoint and status.\n");
        out.push_str("# TYPE hone_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((endpoint, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "hone_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {count}"
                );
            }
        }
        let gauges = [
            (
                "hone_queue_depth",
                "Sequences waiting for a batch slot.",
                &self.queue_depth,
            ),
            (
                "hone_active_sequences",
                "Sequences in the decoding batch.",
                &self.active_sequences,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let counters = [
            (
                "hone_prompt_tokens_total",
                "Prompt tokens of admitted sequences.",
                &self.prompt_tokens,
            ),
            (
                "hone_generated_tokens_total",
                "Completion tokens returned.",
                &self.generated_tokens,
            ),
            (
                "hone_forward_passes_total",
                "Model forward passes (NFE).",
                &self.forward_passes,
            ),
            (
                "hone_decode_steps_total",
                "Batched decoding steps.",
                &self.steps,
            ),
            (
                "hone_cancelled_sequences_total",
                "Sequences cancelled by a disconnect.",
                &self.cancelled,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let histograms = [
            (
                "hone_batch_size",
                "Sequences per decoding step.",
                &self.batch_size,
            ),
            (
                "hone_request_duration_seconds",
                "Latency of successful requests.",
                &self.request_seconds,
            ),
            (
                "hone_queue_wait_seconds",
                "Time from submission to a batch slot.",
                &self.queue_seconds,
            ),
            (
                "hone_time_to_first_text_seconds",
                "Time from submission to the first text.",
                &self.first_text_seconds,
            ),
        ];
        for (name, help, histogram) in histograms {
            if let Ok(histogram) = histogram.lock() {
                histogram.render(&mut out, name, help);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn render_is_prometheus_text() {
        let metrics = Metrics::default();
        metrics.request("chat", 200, Some(0.2));
        metrics.request("chat", 429, None);
        metrics.step(3, 1);
        metrics.step(1, 1);
        let text = metrics.render();
        assert!(text.contains("hone_requests_total{endpoint=\"chat\",status=\"200\"} 1\n"));
        assert!(text.contains("hone_requests_total{endpoint=\"chat\",status=\"429\"} 1\n"));
        assert!(text.contains("hone_forward_passes_total 2\n"));
        assert!(text.contains("hone_batch_size_bucket{le=\"2\"} 1\n"));
        assert!(text.contains("hone_batch_size_bucket{le=\"4\"} 2\n"));
        assert!(text.contains("hone_batch_size_sum 4\n"));
        assert!(text.contains("hone_request_duration_seconds_count 1\n"));
    }
}
