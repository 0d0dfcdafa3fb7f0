//! Typed values of command-line flags, shared by every command so that one kind of value reads the
//! same way everywhere: durations (`90s`, `5m`, `1h`, `1.5m`, `250ms`, or plain seconds), counts
//! that must be at least 1 and at most a sane cap, and probabilities. A value out of range is a
//! clap error (one line, exit 2) naming the flag, before anything is allocated or loaded.

use std::time::Duration;

/// The longest duration any flag accepts (a week): larger values are typos, and `Duration`
/// arithmetic on them could overflow.
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// A positive duration: `90s`, `5m`, `1h`, `1.5m`, `250ms` or plain seconds (`600`).
pub fn duration(text: &str) -> Result<Duration, String> {
    let seconds = crate::config::parse_seconds(text)?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("`{text}` must be more than zero (e.g. 90s or 5m)"));
    }
    let value =
        Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))?;
    if value > LONGEST {
        return Err(format!(
            "`{text}` is longer than a week; pass a shorter duration"
        ));
    }
    Ok(value)
}

/// A `--quantize` format: none, q8_0 or q4k.
pub fn quantization(text: &str) -> Result<hone_engine::models::Quantization, String> {
    hone_engine::models::Quantization::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is not a quantization: use {}",
            hone_engine::models::Quantization::NAMES.join(", ")
        )
    })
}

/// A count from 1 to `MAX` (candidates, iterations, jobs, steps, block lengths, ...).
pub fn count<const MAX: usize>(text: &str) -> Result<usize, String> {
    whole_number(text, 1, MAX)
}

/// A count from 0 to `MAX` (warm-up repetitions, ...).
pub fn count_or_zero<const MAX: usize>(text: &str) -> Result<usize, String> {
    whole_number(text, 0, MAX)
}

/// A whole number in `min..=max`, with the range named in the error.
fn whole_number(text: &str, min: usize, max: usize) -> Result<usize, String> {
    let value: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number from {min} to {max}"))?;
    if value < min || value > max {
        return Err(format!("{value} is out of range: use {min} to {max}"));
    }
    Ok(value)
}

/// A probability in (0, 1] (top-p, confidence thresholds).
pub fn probability(text: &str) -> Result<f32, String> {
    probability_f64(text).map(|value| value as f32)
}

/// [`probability`] for the engine's f64 settings.
pub fn probability_f64(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number in (0, 1]"))?;
    if !(value > 0.0 && value <= 1.0) {
        return Err(format!(
            "{value} is out of range: use a number in (0, 1] (above 0, at most 1)"
        ));
    }
    Ok(value)
}

/// [`probability_f64`], or `none` (no threshold: `hone bench --thresholds`).
pub fn probability_or_none(text: &str) -> Result<Option<f64>, String> {
    if text.trim() == "none" {
        return Ok(None);
    }
    probability_f64(text).map(Some)
}

/// A sampling temperature in [0, 10] (0 is greedy).
pub fn temperature(text: &str) -> Result<f32, String> {
    temperature_f64(text).map(|value| value as f32)
}

/// [`temperature`] for the engine's f64 settings.
pub fn temperature_f64(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number from 0 to 10"))?;
    if !(0.0..=10.0).contains(&value) {
        return Err(format!("{value} is out of range: use 0 (greedy) to 10"));
    }
    Ok(value)
}

/// Caps shared by the commands, so one flag name has one range everywhere.
pub mod caps {
    /// Candidates per iteration or request.
    pub const CANDIDATES: usize = 64;
    /// Agent iterations.
    pub const ITERATIONS: usize = 100;
    /// Parallel jobs (tests, tasks, files).
    pub const JOBS: usize = 256;
    /// Diffusion steps and block lengths.
    pub const STEPS: usize = 65_536;
    /// Answer and generation lengths in tokens.
    pub const TOKENS: usize = 1_048_576;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn durations_take_units_or_seconds_and_refuse_zero_and_huge() {
        assert_eq!(duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(duration("0").is_err());
        assert!(duration("-5").is_err());
        assert!(duration("100000000000").is_err());
        assert!(duration("5 fortnights").is_err());
    }

    #[test]
    fn counts_are_bounded_on_both_sides() {
        assert_eq!(count::<4>("4").unwrap(), 4);
        assert!(count::<4>("0").is_err());
        assert!(count::<4>("5").is_err());
        assert!(count::<4>("-1").is_err());
        assert!(count::<4>("100000000000000000000000").is_err());
        assert_eq!(count_or_zero::<4>("0").unwrap(), 0);
        assert!(probability("0").is_err() && probability("1.5").is_err());
        assert!(probability("NaN").is_err());
        assert_eq!(probability("0.9").unwrap(), 0.9);
        assert!(temperature("-0.1").is_err() && temperature("0").is_ok());
    }
}
