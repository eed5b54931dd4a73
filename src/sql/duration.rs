//! Durations in options: `'30 s'`, `'500ms'`, `'5 seconds'`, `'1 minute'`,
//! `'2h'`; a bare number is seconds, `'0'` is zero.

use std::time::Duration;

use crate::error::{Result, SluiceError};

pub fn parse_duration(key: &str, text: &str) -> Result<Duration> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || {
        SluiceError::Options(format!(
            "option '{key}' must be a duration like '500 ms', '30 s', '5 minutes' or '1 hour', got '{text}'"
        ))
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" | "millisecond" | "milliseconds" => 0.001,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(n * seconds).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("k", "30 s").unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse_duration("k", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("k", "2 minutes").unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(parse_duration("k", "0").unwrap(), Duration::ZERO);
        assert!(parse_duration("k", "soon").is_err());
    }
}
