//! PostgreSQL's Julian-day calendar arithmetic (`datetime.c`,
//! `timestamp.c`), ported formula for formula.
//!
//! chrono would give the same answers for real dates, but PostgreSQL also
//! feeds these functions interval fields (month 0, negative days) and
//! unvalidated parser fields (day 30 of February), and users compare
//! against its output; so we keep its formulas. Arithmetic is done in
//! `i64` so that no field PostgreSQL accepts as an `int` can overflow.

/// Julian day of 1970-01-01, the Arrow epoch.
pub const UNIX_EPOCH_JDATE: i64 = 2_440_588;
/// Julian day of 2000-01-01, PostgreSQL's epoch (rounding of timestamps is
/// defined relative to it).
pub const POSTGRES_EPOCH_JDATE: i64 = 2_451_545;

/// Days per month, non-leap and leap, as PostgreSQL's `day_tab`.
pub const DAYS_IN_MONTH: [[i64; 12]; 2] = [
    [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31],
    [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31],
];

/// Cumulative days before each month (index 0 = before January), as in
/// PostgreSQL's `ysum` table for day-of-year conversion.
pub const DAYS_BEFORE_MONTH: [[i64; 13]; 2] = [
    [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365],
    [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366],
];

pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Julian day number of a (proleptic Gregorian, astronomical-year) date.
/// Any month and day are accepted; out-of-range ones roll over.
pub fn date2j(year: i64, month: i64, day: i64) -> i64 {
    let (y, m) = if month > 2 {
        (year + 4800, month + 1)
    } else {
        (year + 4799, month + 13)
    };
    // `/` truncates toward zero in Rust as in C, which the formula relies on.
    let century = y / 100;
    let mut julian = y * 365 - 32167;
    julian += y / 4 - century + century / 4;
    julian += 7834 * m / 256 + day;
    julian
}

/// The date of a Julian day number. PostgreSQL computes in 32-bit
/// `unsigned int`; so do we, wrapping as C does, so that even the day
/// numbers outside its range (which callers reject) give its results and
/// never a panic. Exact for 0 ..= 2^31 - 1.
pub fn j2date(jd: i64) -> (i64, i64, i64) {
    let mut julian = (jd as i32 as u32).wrapping_add(32044);
    let mut quad = julian / 146_097;
    let extra = julian
        .wrapping_sub(quad.wrapping_mul(146_097))
        .wrapping_mul(4)
        .wrapping_add(3);
    julian = julian
        .wrapping_add(60)
        .wrapping_add(quad.wrapping_mul(3))
        .wrapping_add(extra / 146_097);
    quad = julian / 1461;
    julian = julian.wrapping_sub(quad.wrapping_mul(1461));
    let y = julian.wrapping_mul(4) / 1461;
    julian = if y != 0 {
        julian.wrapping_add(305) % 365
    } else {
        julian.wrapping_add(306) % 366
    }
    .wrapping_add(123);
    let year = (y.wrapping_add(quad.wrapping_mul(4)) as i32).wrapping_sub(4800);
    let q = julian.wrapping_mul(2141) / 65536;
    let day = julian.wrapping_sub(7834u32.wrapping_mul(q) / 256) as i32;
    let month = q.wrapping_add(10) % 12 + 1;
    (i64::from(year), i64::from(month), i64::from(day))
}

/// Day of the week of a Julian day, 0 = Sunday. PostgreSQL computes it in
/// `unsigned int`, which the casts reproduce.
pub fn j2day(jd: i64) -> i64 {
    i64::from((jd as i32 as u32).wrapping_add(1) % 7)
}

/// Julian day of the Monday of ISO week `week` of ISO year `year`.
pub fn isoweek2j(year: i64, week: i64) -> i64 {
    let day4 = date2j(year, 1, 4);
    let day0 = j2day(day4 - 1);
    (week - 1) * 7 + (day4 - day0)
}

/// The Monday of an ISO week.
pub fn isoweek2date(week: i64, iso_year: i64) -> (i64, i64, i64) {
    j2date(isoweek2j(iso_year, week))
}

/// A date from an ISO year, week and a day of the week numbered as the
/// Gregorian `D` pattern (Sunday = 1), as PostgreSQL 15's
/// `isoweekdate2date` takes it.
pub fn isoweekdate2date(week: i64, gregorian_wday: i64, iso_year: i64) -> (i64, i64, i64) {
    let mut jday = isoweek2j(iso_year, week);
    if gregorian_wday > 1 {
        jday += gregorian_wday - 2;
    } else {
        jday += 6;
    }
    j2date(jday)
}

/// Start (Julian day of the Monday) of ISO week 1 of the ISO year that
/// contains `dayn`, searching from Gregorian `year`.
fn iso_year_and_start(year: i64, dayn: i64) -> (i64, i64) {
    let mut year = year;
    let mut day4 = date2j(year, 1, 4);
    let mut day0 = j2day(day4 - 1);
    if dayn < day4 - day0 {
        day4 = date2j(year - 1, 1, 4);
        day0 = j2day(day4 - 1);
        year -= 1;
    }
    let week = (dayn - (day4 - day0)) / 7 + 1;
    if week >= 52 {
        let next4 = date2j(year + 1, 1, 4);
        let next0 = j2day(next4 - 1);
        if dayn >= next4 - next0 {
            return (year + 1, next4 - next0);
        }
    }
    (year, day4 - day0)
}

/// ISO 8601 week number.
pub fn date2isoweek(year: i64, month: i64, day: i64) -> i64 {
    let dayn = date2j(year, month, day);
    let (_, start) = iso_year_and_start(year, dayn);
    (dayn - start) / 7 + 1
}

/// ISO 8601 week-numbering year.
pub fn date2isoyear(year: i64, month: i64, day: i64) -> i64 {
    iso_year_and_start(year, date2j(year, month, day)).0
}

/// ISO 8601 day of the year (1 ..= 371).
pub fn date2isoyearday(year: i64, month: i64, day: i64) -> i64 {
    date2j(year, month, day) - isoweek2j(date2isoyear(year, month, day), 1) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    #[test]
    fn julian_days_match_chrono_over_a_wide_range() {
        // Every 13th day from 1600 to 2400: the ported formulas must agree
        // with chrono on real dates, including ISO weeks at year ends.
        let start = NaiveDate::from_ymd_opt(1600, 1, 1).map(|d| d.num_days_from_ce());
        let end = NaiveDate::from_ymd_opt(2400, 12, 31).map(|d| d.num_days_from_ce());
        let (Some(start), Some(end)) = (start, end) else {
            panic!("test range must be valid dates");
        };
        for n in (start..=end).step_by(13) {
            let Some(d) = NaiveDate::from_num_days_from_ce_opt(n) else {
                panic!("day {n} must be a valid date");
            };
            let (y, m, dd) = (
                i64::from(d.year()),
                i64::from(d.month()),
                i64::from(d.day()),
            );
            let j = date2j(y, m, dd);
            assert_eq!(j, i64::from(n) + 1_721_425, "{d}");
            assert_eq!(j2date(j), (y, m, dd), "{d}");
            assert_eq!(
                j2day(j),
                i64::from(d.weekday().num_days_from_sunday()),
                "{d}"
            );
            let iso = d.iso_week();
            assert_eq!(date2isoweek(y, m, dd), i64::from(iso.week()), "{d}");
            assert_eq!(date2isoyear(y, m, dd), i64::from(iso.year()), "{d}");
            let iso_day = i64::from(d.weekday().number_from_monday());
            assert_eq!(
                date2isoyearday(y, m, dd),
                (i64::from(iso.week()) - 1) * 7 + iso_day,
                "{d}"
            );
        }
    }

    #[test]
    fn interval_fields_give_postgres_values() {
        // to_char(interval '12 months', 'J IW IYYY IDDD') in PostgreSQL 15:
        // 1721394 48 0000 333 (the fields are year 1, month 0, day 0).
        assert_eq!(date2j(1, 0, 0), 1_721_394);
        assert_eq!(date2isoweek(1, 0, 0), 48);
        assert_eq!(date2isoyear(1, 0, 0), 0);
        assert_eq!(date2isoyearday(1, 0, 0), 333);
    }
}
