//! Session time zones with PostgreSQL's rules for moving between instants
//! and wall-clock times, on top of Arrow's time zone type (which reads both
//! IANA names and `±HH:MM` offsets, east positive as in ISO 8601).

use chrono::{DateTime, LocalResult, Offset, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use datafusion::common::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};

use super::pg_datetime::DateTimeError;

/// The zone Sluice runs in when the session has none: PostgreSQL's
/// `timezone` default in Sluice, and the zone of its `timestamptz` columns.
pub const DEFAULT_ZONE: &str = "+00:00";

/// The session time zone, if one is set.
pub fn session_zone(config: &ConfigOptions) -> Option<&str> {
    config.execution.time_zone.as_deref()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abbrev {
    /// The zone is always this (UTC, GMT).
    Fixed(&'static str),
    /// No abbreviation known: print the offset as tzdata does for such
    /// zones (`+05`, `-0330`).
    Numeric,
}

/// A parsed time zone.
#[derive(Debug, Clone, Copy)]
pub struct Zone {
    tz: Tz,
    abbrev: Abbrev,
}

impl Zone {
    pub fn parse(name: &str) -> Result<Zone> {
        let tz: Tz = name.parse().map_err(|e| {
            DataFusionError::Execution(format!("invalid time zone \"{name}\": {e}"))
        })?;
        let lower = name.trim().to_ascii_lowercase();
        let abbrev = match lower.as_str() {
            "utc" | "etc/utc" | "uct" | "etc/uct" | "zulu" | "etc/zulu" | "universal"
            | "etc/universal" => Abbrev::Fixed("UTC"),
            "gmt" | "etc/gmt" | "gmt0" | "etc/gmt0" | "greenwich" | "etc/greenwich" => {
                Abbrev::Fixed("GMT")
            }
            // A zero offset: Sluice's `timestamptz` zone.
            "+00:00" | "+00" | "+0000" | "-00:00" | "-00" | "-0000" => Abbrev::Fixed("UTC"),
            _ => Abbrev::Numeric,
        };
        Ok(Zone { tz, abbrev })
    }

    /// Seconds east of UTC at the instant `utc_seconds` (since 1970).
    pub fn offset_at(&self, utc_seconds: i64) -> Result<i64, DateTimeError> {
        let utc = DateTime::from_timestamp(utc_seconds, 0)
            .ok_or(DateTimeError::TimestampOutOfRange)?
            .naive_utc();
        Ok(i64::from(
            self.tz
                .offset_from_utc_datetime(&utc)
                .fix()
                .local_minus_utc(),
        ))
    }

    /// Seconds east of UTC for the wall-clock time `local_seconds` (since
    /// 1970-01-01 00:00 local), resolved as PostgreSQL's
    /// `DetermineTimeZoneOffset`: a time repeated when clocks go back is
    /// taken after the change (the later instant); a time skipped when
    /// clocks go forward is taken with the offset from before the change.
    pub fn offset_for_local(&self, local_seconds: i64) -> Result<i64, DateTimeError> {
        let local = DateTime::from_timestamp(local_seconds, 0)
            .ok_or(DateTimeError::TimestampOutOfRange)?
            .naive_utc();
        match self.tz.offset_from_local_datetime(&local) {
            LocalResult::Single(offset) => Ok(i64::from(offset.fix().local_minus_utc())),
            LocalResult::Ambiguous(a, b) => Ok(i64::from(
                a.fix().local_minus_utc().min(b.fix().local_minus_utc()),
            )),
            // Transitions are months apart, so a day earlier is before it.
            LocalResult::None => self.offset_at(local_seconds.saturating_sub(86_400)),
        }
    }

    /// What `TZ` prints for this zone at `offset`.
    pub fn abbrev(&self, offset: i64, out: &mut String) {
        match self.abbrev {
            Abbrev::Fixed(name) => out.push_str(name),
            Abbrev::Numeric => {
                let abs = offset.abs();
                out.push(if offset < 0 { '-' } else { '+' });
                push_two_digits(out, abs / 3600);
                if abs % 3600 / 60 != 0 {
                    push_two_digits(out, abs % 3600 / 60);
                }
            }
        }
    }
}

fn push_two_digits(out: &mut String, value: i64) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(value);
    if digits.len() < 2 {
        out.push('0');
    }
    out.push_str(digits);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> Zone {
        match Zone::parse(name) {
            Ok(z) => z,
            Err(e) => panic!("{name}: {e}"),
        }
    }

    fn abbrev(z: &Zone, offset: i64) -> String {
        let mut out = String::new();
        z.abbrev(offset, &mut out);
        out
    }

    #[test]
    fn abbreviations() {
        assert_eq!(abbrev(&zone("+00:00"), 0), "UTC");
        assert_eq!(abbrev(&zone("UTC"), 0), "UTC");
        assert_eq!(abbrev(&zone("America/New_York"), -4 * 3600), "-04");
        assert_eq!(abbrev(&zone("+05:30"), 5 * 3600 + 1800), "+0530");
        assert!(Zone::parse("Not/AZone").is_err());
    }

    /// PostgreSQL 15 with `timezone = 'America/New_York'`:
    /// to_timestamp('2026-03-08 02:30', …) is 07:30 UTC (a skipped time),
    /// to_timestamp('2026-11-01 01:30', …) is 06:30 UTC (a repeated time).
    #[test]
    fn daylight_saving_transitions_resolve_as_postgres() {
        let ny = zone("America/New_York");
        let local = |h: i64, days: i64| days * 86_400 + h * 3600 + 1800;
        // 2026-03-08 is day 20520 since 1970, 2026-11-01 is day 20758.
        let offset = ny.offset_for_local(local(2, 20_520));
        assert_eq!(offset, Ok(-5 * 3600));
        let offset = ny.offset_for_local(local(1, 20_758));
        assert_eq!(offset, Ok(-5 * 3600));
        assert_eq!(ny.offset_for_local(local(12, 20_600)), Ok(-4 * 3600));
    }
}
