//! Combines the fields read from text into a date and time and checks
//! their ranges, as PostgreSQL 15's `do_to_timestamp` and `ValidateDate`:
//! a year with `CC`, a Julian day, ISO week dates, day of the year, the
//! 12-hour clock and a UTC offset all end up as one local date and time.

use super::calendar::{
    date2j, is_leap, isoweek2date, isoweek2j, isoweekdate2date, j2date, DAYS_BEFORE_MONTH,
    DAYS_IN_MONTH, UNIX_EPOCH_JDATE,
};
use super::{DateMode, DateTimeError};

/// PostgreSQL accepts UTC offsets up to ±15:59.
const MAX_TZ_HOUR: i64 = 15;
/// One past PostgreSQL's last date, 5874897-12-31, as a Julian day.
const DATE_END_JULIAN: i64 = 2_147_483_494;

/// What the text said: a local date and time, and the UTC offset if the
/// text gave one (`TZH`/`TZM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedDateTime {
    /// Astronomical year: 0 is 1 BC.
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub microsecond: i64,
    /// Seconds east of UTC.
    pub utc_offset: Option<i64>,
    /// `FF1` … `FF6` in the template: round the result to that many
    /// fractional digits (0 = no rounding).
    pub fraction_digits: u8,
}

impl ParsedDateTime {
    /// Days since 1970-01-01 (Arrow `Date32`), within PostgreSQL's date
    /// range (4714-11-24 BC to 5874897 AD).
    pub fn date32(&self, input: &str) -> Result<i32, DateTimeError> {
        let after_min = self.year > -4713 || (self.year == -4713 && self.month >= 11);
        let before_max = self.year < 5_874_898 || (self.year == 5_874_898 && self.month < 6);
        // Both checks, as PostgreSQL: an unnormalised day can still fall
        // outside once counted (day 19 of 4714-11 BC is before Julian day 0).
        let julian = date2j(self.year, self.month, self.day);
        if !(after_min && before_max && (0..DATE_END_JULIAN).contains(&julian)) {
            return Err(DateTimeError::DateOutOfRange(input.to_string()));
        }
        i32::try_from(julian - UNIX_EPOCH_JDATE)
            .map_err(|_| DateTimeError::DateOutOfRange(input.to_string()))
    }

    /// Wall-clock seconds since 1970-01-01 00:00 (the microseconds are
    /// separate), or `None` if that overflows.
    pub fn local_seconds(&self) -> Option<i64> {
        let days = date2j(self.year, self.month, self.day).checked_sub(UNIX_EPOCH_JDATE)?;
        days.checked_mul(86_400)?
            .checked_add(self.hour * 3600 + self.minute * 60 + self.second)
    }
}

/// The raw fields read from the text (PostgreSQL's `TmFromChar`); 0 means
/// "not given".
#[derive(Debug, Default)]
pub(super) struct FromChar {
    pub(super) mode: Option<DateMode>,
    pub(super) hh: i32,
    pub(super) pm: i32,
    pub(super) mi: i32,
    pub(super) ss: i32,
    pub(super) ssss: i32,
    /// Day of the week, Sunday = 1.
    pub(super) d: i32,
    pub(super) dd: i32,
    pub(super) ddd: i32,
    pub(super) mm: i32,
    pub(super) ms: i32,
    pub(super) year: i32,
    pub(super) bc: i32,
    pub(super) ww: i32,
    pub(super) w: i32,
    pub(super) cc: i32,
    pub(super) j: i32,
    pub(super) us: i32,
    /// Digits of the year pattern used (4 for `YYYY`, 2 for `YY`).
    pub(super) year_digits: u8,
    pub(super) twelve_hour: bool,
    /// +1, -1, or 0 without `TZH`/`TZM`.
    pub(super) tz_sign: i32,
    pub(super) tzh: i32,
    pub(super) tzm: i32,
    pub(super) fraction_digits: u8,
}

impl FromChar {
    /// Combines the fields into a date and time and range-checks them, as
    /// PostgreSQL's `do_to_timestamp` and `ValidateDate`.
    pub(super) fn resolve(self, input: &str) -> Result<ParsedDateTime, DateTimeError> {
        let out_of_range = || DateTimeError::FieldOutOfRange(input.to_string());
        let (mut year, mut month, mut day) = (0i64, 1i64, 1i64);
        let (mut hour, mut minute, mut second) = (0i64, 0i64, 0i64);
        let (mut has_year, mut has_month, mut has_day) = (false, false, false);

        if self.ssss != 0 {
            let x = i64::from(self.ssss);
            hour = x / 3600;
            minute = x % 3600 / 60;
            second = x % 60;
        }
        if self.ss != 0 {
            second = i64::from(self.ss);
        }
        if self.mi != 0 {
            minute = i64::from(self.mi);
        }
        if self.hh != 0 {
            hour = i64::from(self.hh);
        }
        if self.twelve_hour {
            if !(1..=12).contains(&hour) {
                return Err(DateTimeError::InvalidTwelveHour(hour));
            }
            if self.pm != 0 && hour < 12 {
                hour += 12;
            } else if self.pm == 0 && hour == 12 {
                hour = 0;
            }
        }

        let bc = self.bc != 0;
        let mut cc = i64::from(self.cc);
        if self.year != 0 {
            if cc != 0 && self.year_digits <= 2 {
                // YY within century CC; the 21st century is 2001 to 2100,
                // the 6th century BC 600 BC to 501 BC.
                if bc {
                    cc = -cc;
                }
                year = i64::from(self.year) % 100;
                if year != 0 {
                    year = if cc >= 0 {
                        year + (cc - 1) * 100
                    } else {
                        (cc + 1) * 100 - year + 1
                    };
                } else {
                    year = cc * 100 + if cc >= 0 { 0 } else { 1 };
                }
            } else {
                year = i64::from(self.year);
                if bc {
                    year = -year;
                }
                // 1 BC is year 0.
                if year < 0 {
                    year += 1;
                }
            }
            has_year = true;
        } else if cc != 0 {
            // The first year of the century.
            if bc {
                cc = -cc;
            }
            year = if cc >= 0 {
                (cc - 1) * 100 + 1
            } else {
                cc * 100 + 1
            };
            has_year = true;
        }

        if self.j != 0 {
            (year, month, day) = j2date(i64::from(self.j));
            (has_year, has_month, has_day) = (true, true, true);
        }

        let mut ddd = i64::from(self.ddd);
        if self.ww != 0 {
            let ww = i64::from(self.ww);
            if self.mode == Some(DateMode::IsoWeek) {
                (year, month, day) = if self.d != 0 {
                    isoweekdate2date(ww, i64::from(self.d), year)
                } else {
                    isoweek2date(ww, year)
                };
                (has_year, has_month, has_day) = (true, true, true);
            } else {
                ddd = (ww - 1) * 7 + 1;
            }
        }
        let mut dd = i64::from(self.dd);
        if self.w != 0 {
            dd = (i64::from(self.w) - 1) * 7 + 1;
        }
        if dd != 0 {
            day = dd;
            has_day = true;
        }
        if self.mm != 0 {
            month = i64::from(self.mm);
            has_month = true;
        }

        if ddd != 0 && (month <= 1 || day <= 1) {
            if year == 0 && !bc {
                return Err(DateTimeError::DayOfYearWithoutYear);
            }
            if self.mode == Some(DateMode::IsoWeek) {
                let j0 = isoweek2j(year, 1) - 1;
                (year, month, day) = j2date(j0 + ddd);
                (has_year, has_month, has_day) = (true, true, true);
            } else {
                let before = &DAYS_BEFORE_MONTH[usize::from(is_leap(year))];
                let mut i = 1;
                while i <= 12 && ddd > before[i] {
                    i += 1;
                }
                if month <= 1 {
                    month = i as i64;
                }
                if day <= 1 {
                    day = ddd - before[i - 1];
                }
                (has_month, has_day) = (true, true);
            }
        }

        let microsecond = i64::from(self.ms) * 1000 + i64::from(self.us);

        // ValidateDate, for the fields the text gave.
        if has_month && !(1..=12).contains(&month) {
            return Err(out_of_range());
        }
        if has_day && !(1..=31).contains(&day) {
            return Err(out_of_range());
        }
        if has_year && has_month && has_day {
            let month_index = usize::try_from(month - 1).map_err(|_| out_of_range())?;
            let days = DAYS_IN_MONTH[usize::from(is_leap(year))]
                .get(month_index)
                .ok_or_else(out_of_range)?;
            if day > *days {
                return Err(out_of_range());
            }
        }
        if !(0..24).contains(&hour)
            || !(0..60).contains(&minute)
            || !(0..60).contains(&second)
            || !(0..1_000_000).contains(&microsecond)
        {
            return Err(out_of_range());
        }

        let utc_offset = if self.tz_sign != 0 {
            let (tzh, tzm) = (i64::from(self.tzh), i64::from(self.tzm));
            if !(0..=MAX_TZ_HOUR).contains(&tzh) || !(0..60).contains(&tzm) {
                return Err(DateTimeError::TimeZoneDisplacement(input.to_string()));
            }
            Some(i64::from(self.tz_sign) * (tzh * 60 + tzm) * 60)
        } else {
            None
        };

        Ok(ParsedDateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            microsecond,
            utc_offset,
            fraction_digits: self.fraction_digits,
        })
    }
}
