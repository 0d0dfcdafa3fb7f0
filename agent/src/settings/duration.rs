//! Durations as people write them in config files, `HONE_*` variables and flags: `90`, `90s`,
//! `5m`, `1.5h`, `250ms`.

use std::time::Duration;

/// Parse `90`, `90s`, `5m`, `1.5h`, `250ms` into seconds.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration: use seconds or a number with s, m or h (e.g. 90s, 5m)")
    })?;
    let factor = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}`: use s, m or h"
            ))
        }
    };
    Ok(value * factor)
}

/// Parse a duration flag or variable (same syntax as the config file).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let seconds = parse_seconds(text)?;
    Duration::try_from_secs_f64(seconds).map_err(|error| format!("`{text}`: {error}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_seconds("90").unwrap(), 90.0);
        assert_eq!(parse_seconds("1.5m").unwrap(), 90.0);
        assert_eq!(parse_seconds("2h").unwrap(), 7200.0);
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("3 weeks").is_err());
    }
}
