//! `to_char`: renders broken-down time fields through a [`Template`], as
//! PostgreSQL's `DCH_to_char` does (names in English, unpadded with `FM`,
//! padded to 9 characters otherwise).

use super::calendar::{
    date2isoweek, date2isoyear, date2isoyearday, date2j, j2date, j2day, UNIX_EPOCH_JDATE,
};
use super::{Case, DateTimeError, Field, Key, Node, Ordinal, Template};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
/// Roman month numerals, December first, as PostgreSQL indexes them.
const ROMAN_MONTHS: [&str; 12] = [
    "XII", "XI", "X", "IX", "VIII", "VII", "VI", "V", "IV", "III", "II", "I",
];

/// Broken-down time: PostgreSQL's `struct fmt_tm` with the fractional
/// seconds and UTC offset. For an interval the fields are the interval's
/// own: possibly negative, hours unbounded, no weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FmtTm {
    /// Astronomical year: 0 is 1 BC.
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    pub microsecond: i64,
    /// Day of the week, 0 = Sunday.
    pub wday: i64,
    /// Day of the year, 1-based.
    pub yday: i64,
    /// Seconds east of UTC.
    pub utc_offset: i64,
    pub is_interval: bool,
}

impl FmtTm {
    /// The fields of a wall-clock time, given as seconds since 1970-01-01
    /// 00:00 local time; `utc_offset` is only used by `TZH`, `TZM` and `OF`.
    pub fn from_local(
        local_seconds: i64,
        microsecond: i64,
        utc_offset: i64,
    ) -> Result<FmtTm, DateTimeError> {
        let julian = local_seconds.div_euclid(86_400) + UNIX_EPOCH_JDATE;
        // PostgreSQL's own range: its Julian-day code is exact up to 2^31.
        if !(0..=i64::from(i32::MAX)).contains(&julian) {
            return Err(DateTimeError::TimestampOutOfRange);
        }
        let seconds = local_seconds.rem_euclid(86_400);
        let (year, month, day) = j2date(julian);
        Ok(FmtTm {
            year,
            month,
            day,
            hour: seconds / 3600,
            minute: seconds / 60 % 60,
            second: seconds % 60,
            microsecond,
            wday: j2day(julian),
            yday: julian - date2j(year, 1, 1) + 1,
            utc_offset,
            is_interval: false,
        })
    }

    /// The fields of an interval, split as PostgreSQL's `interval2itm`
    /// does (truncating, so a negative interval has negative fields).
    pub fn from_interval(months: i64, days: i64, microseconds: i64) -> FmtTm {
        const HOUR: i64 = 3_600_000_000;
        const MINUTE: i64 = 60_000_000;
        let year = months / 12;
        let month = months % 12;
        let hour = microseconds / HOUR;
        let rest = microseconds % HOUR;
        FmtTm {
            year,
            month,
            day: days,
            hour,
            minute: rest / MINUTE,
            second: rest % MINUTE / 1_000_000,
            microsecond: rest % 1_000_000,
            wday: 0,
            // As PostgreSQL: an approximate span in days.
            yday: (year * 12 + month) * 30 + days,
            utc_offset: 0,
            is_interval: true,
        }
    }
}

/// Appends `tm` rendered through `template` to `out`. `zone_abbrev` is what
/// `TZ` prints (nothing when `None`, as for a timestamp without time zone).
pub fn format(
    template: &Template,
    tm: &FmtTm,
    zone_abbrev: Option<&str>,
    out: &mut String,
) -> Result<(), DateTimeError> {
    for node in template.nodes() {
        match node {
            Node::Field(field) => {
                let start = out.len();
                if format_field(field, tm, zone_abbrev, out)? {
                    if let Some(ordinal) = field.ordinal {
                        let suffix = ordinal_suffix(&out[start..], ordinal);
                        out.push_str(suffix);
                    }
                }
            }
            Node::Literal(c) | Node::Separator(c) | Node::Space(c) => out.push(*c),
        }
    }
    Ok(())
}

/// Writes one field; returns whether it was a number (which takes a `TH`
/// suffix).
fn format_field(
    field: &Field,
    tm: &FmtTm,
    zone_abbrev: Option<&str>,
    out: &mut String,
) -> Result<bool, DateTimeError> {
    let fill = field.fill_mode;
    // C's "%0*d": the width includes the sign, so negatives get one more.
    let width = |digits: usize, value: i64| match (fill, value >= 0) {
        (true, _) => 0,
        (false, true) => digits,
        (false, false) => digits + 1,
    };
    let calendar_only = || {
        if tm.is_interval {
            Err(DateTimeError::NotForInterval)
        } else {
            Ok(())
        }
    };
    let year = if tm.is_interval || tm.year > 0 {
        tm.year
    } else {
        // There is no year 0: 1 BC is year 0, 2 BC is year -1.
        1 - tm.year
    };
    match field.key {
        Key::Meridiem { upper, dots } => {
            let pm = tm.hour % 24 >= 12;
            let text = match (pm, dots) {
                (false, false) => "am",
                (true, false) => "pm",
                (false, true) => "a.m.",
                (true, true) => "p.m.",
            };
            push_cased(out, text, if upper { Case::Upper } else { Case::Lower });
            return Ok(false);
        }
        Key::Hour12 => {
            let h = tm.hour % 12;
            push_num(out, if h == 0 { 12 } else { h }, width(2, tm.hour));
        }
        Key::Hour24 => push_num(out, tm.hour, width(2, tm.hour)),
        Key::Minute => push_num(out, tm.minute, width(2, tm.minute)),
        Key::Second => push_num(out, tm.second, width(2, tm.second)),
        // Fractions keep their width even with FM, as in PostgreSQL.
        Key::Fraction(digits) => {
            let scale = 10i64.pow(6 - u32::from(digits.min(6)));
            push_num(out, tm.microsecond / scale, usize::from(digits));
        }
        Key::Millisecond => push_num(out, tm.microsecond / 1000, 3),
        Key::Microsecond => push_num(out, tm.microsecond, 6),
        Key::SecondsOfDay => push_num(out, tm.hour * 3600 + tm.minute * 60 + tm.second, 0),
        Key::TzAbbrev { upper } => {
            calendar_only()?;
            if let Some(abbrev) = zone_abbrev {
                push_cased(out, abbrev, if upper { Case::Upper } else { Case::Lower });
            }
            return Ok(false);
        }
        Key::TzHour => {
            calendar_only()?;
            out.push(if tm.utc_offset >= 0 { '+' } else { '-' });
            push_num(out, tm.utc_offset.abs() / 3600, 2);
            return Ok(false);
        }
        Key::TzMinute => {
            calendar_only()?;
            push_num(out, tm.utc_offset.abs() % 3600 / 60, 2);
            return Ok(false);
        }
        Key::Offset => {
            calendar_only()?;
            let offset = tm.utc_offset.abs();
            out.push(if tm.utc_offset >= 0 { '+' } else { '-' });
            push_num(out, offset / 3600, if fill { 0 } else { 2 });
            if offset % 3600 != 0 {
                out.push(':');
                push_num(out, offset % 3600 / 60, 2);
            }
            return Ok(false);
        }
        Key::Era { upper, dots } => {
            calendar_only()?;
            let text = match (tm.year <= 0, dots) {
                (false, false) => "ad",
                (true, false) => "bc",
                (false, true) => "a.d.",
                (true, true) => "b.c.",
            };
            push_cased(out, text, if upper { Case::Upper } else { Case::Lower });
            return Ok(false);
        }
        Key::MonthName(case) | Key::MonthAbbrev(case) => {
            calendar_only()?;
            let name = usize::try_from(tm.month - 1)
                .ok()
                .and_then(|i| MONTHS.get(i));
            if let Some(name) = name {
                if matches!(field.key, Key::MonthName(_)) {
                    push_name(out, name, case, !fill && !field.translate);
                } else {
                    push_cased(out, &name[..3], case);
                }
            }
            return Ok(false);
        }
        Key::Month => push_num(out, tm.month, width(2, tm.month)),
        Key::DayName(case) | Key::DayAbbrev(case) => {
            calendar_only()?;
            let name = usize::try_from(tm.wday).ok().and_then(|i| DAYS.get(i));
            if let Some(name) = name {
                if matches!(field.key, Key::DayName(_)) {
                    push_name(out, name, case, !fill && !field.translate);
                } else {
                    push_cased(out, &name[..3], case);
                }
            }
            return Ok(false);
        }
        Key::DayOfYear => push_num(out, tm.yday, if fill { 0 } else { 3 }),
        Key::IsoDayOfYear => push_num(
            out,
            date2isoyearday(tm.year, tm.month, tm.day),
            if fill { 0 } else { 3 },
        ),
        Key::DayOfMonth => push_num(out, tm.day, if fill { 0 } else { 2 }),
        Key::DayOfWeek => {
            calendar_only()?;
            push_num(out, tm.wday + 1, 0);
        }
        Key::IsoDayOfWeek => {
            calendar_only()?;
            push_num(out, if tm.wday == 0 { 7 } else { tm.wday }, 0);
        }
        Key::WeekOfYear => push_num(out, (tm.yday - 1) / 7 + 1, if fill { 0 } else { 2 }),
        Key::IsoWeek => push_num(
            out,
            date2isoweek(tm.year, tm.month, tm.day),
            if fill { 0 } else { 2 },
        ),
        Key::Quarter => {
            if tm.month == 0 {
                return Ok(false);
            }
            push_num(out, (tm.month - 1) / 3 + 1, 0);
        }
        Key::Century => {
            let century = if tm.is_interval {
                tm.year / 100
            } else if tm.year > 0 {
                // Century 21 is 2001 to 2100.
                (tm.year - 1) / 100 + 1
            } else {
                // Century 6 BC is 600 BC to 501 BC.
                tm.year / 100 - 1
            };
            let digits = if (-99..=99).contains(&century) { 2 } else { 0 };
            push_num(out, century, width(digits, century));
        }
        Key::YearWithComma => {
            let thousands = year / 1000;
            push_num(out, thousands, 0);
            out.push(',');
            push_num(out, year - thousands * 1000, 3);
        }
        Key::Year(digits) | Key::IsoYear(digits) => {
            let value = if matches!(field.key, Key::Year(_)) {
                year
            } else {
                let iso = date2isoyear(tm.year, tm.month, tm.day);
                if tm.is_interval || iso > 0 {
                    iso
                } else {
                    1 - iso
                }
            };
            // PostgreSQL pads by the sign of the calendar year, also for
            // the ISO year.
            match digits {
                4 => push_num(out, value, width(4, year)),
                3 => push_num(out, value % 1000, width(3, year)),
                2 => push_num(out, value % 100, width(2, year)),
                _ => push_num(out, value % 10, 1),
            }
        }
        Key::RomanMonth { upper } => {
            if tm.month == 0 && tm.year == 0 {
                return Ok(false);
            }
            // An interval's month may be 0 (whole years) or negative.
            let index = if tm.month == 0 {
                if tm.year >= 0 {
                    0
                } else {
                    11
                }
            } else if tm.month < 0 {
                -(tm.month + 1)
            } else {
                12 - tm.month
            };
            let numeral = usize::try_from(index)
                .ok()
                .and_then(|i| ROMAN_MONTHS.get(i));
            if let Some(numeral) = numeral {
                let case = if upper { Case::Upper } else { Case::Lower };
                push_cased(out, numeral, case);
                if !fill {
                    pad(out, numeral.len(), 4);
                }
            }
            return Ok(false);
        }
        Key::WeekOfMonth => push_num(out, (tm.day - 1) / 7 + 1, 0),
        Key::Julian => push_num(out, date2j(tm.year, tm.month, tm.day), 0),
        Key::FixedFormat => return Ok(false),
    }
    Ok(true)
}

/// `value` zero-padded to `width` characters (sign included), as C's
/// `%0*d`.
fn push_num(out: &mut String, value: i64, width: usize) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(value.unsigned_abs());
    let len = digits.len() + usize::from(value < 0);
    if value < 0 {
        out.push('-');
    }
    for _ in len..width {
        out.push('0');
    }
    out.push_str(digits);
}

fn push_cased(out: &mut String, text: &str, case: Case) {
    match case {
        Case::Upper => out.extend(text.chars().map(|c| c.to_ascii_uppercase())),
        Case::Lower => out.extend(text.chars().map(|c| c.to_ascii_lowercase())),
        Case::Title => out.push_str(text),
    }
}

/// A month or day name, blank-padded to 9 characters unless `FM`.
fn push_name(out: &mut String, name: &str, case: Case, padded: bool) {
    push_cased(out, name, case);
    if padded {
        pad(out, name.len(), 9);
    }
}

fn pad(out: &mut String, len: usize, width: usize) {
    for _ in len..width {
        out.push(' ');
    }
}

/// English ordinal suffix of a formatted number: 1st, 2nd, 3rd, 11th, 21st.
fn ordinal_suffix(number: &str, ordinal: Ordinal) -> &'static str {
    let bytes = number.as_bytes();
    let teen = bytes.len() > 1 && bytes[bytes.len() - 2] == b'1';
    let lower = match bytes.last() {
        Some(b'1') if !teen => "st",
        Some(b'2') if !teen => "nd",
        Some(b'3') if !teen => "rd",
        _ => "th",
    };
    match (ordinal, lower) {
        (Ordinal::Lower, s) => s,
        (Ordinal::Upper, "st") => "ST",
        (Ordinal::Upper, "nd") => "ND",
        (Ordinal::Upper, "rd") => "RD",
        (Ordinal::Upper, _) => "TH",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-05 14:07:09.123456, a Thursday, as seconds since 1970.
    fn sample() -> FmtTm {
        let local = (date2j(2026, 3, 5) - UNIX_EPOCH_JDATE) * 86_400 + 14 * 3600 + 7 * 60 + 9;
        match FmtTm::from_local(local, 123_456, 0) {
            Ok(tm) => tm,
            Err(e) => panic!("sample timestamp: {e}"),
        }
    }

    fn render(tm: &FmtTm, pattern: &str, abbrev: Option<&str>) -> Result<String, DateTimeError> {
        let mut out = String::new();
        format(&Template::compile(pattern), tm, abbrev, &mut out)?;
        Ok(out)
    }

    fn check(tm: &FmtTm, pattern: &str, expected: &str) {
        match render(tm, pattern, None) {
            Ok(got) => assert_eq!(got, expected, "pattern {pattern:?}"),
            Err(e) => panic!("pattern {pattern:?}: {e}"),
        }
    }

    /// Expected values are PostgreSQL 15.18's output for
    /// `to_char(timestamp '2026-03-05 14:07:09.123456', pattern)`.
    #[test]
    fn timestamp_patterns_match_postgres() {
        let tm = sample();
        for (pattern, expected) in [
            ("YYYY-MM-DD", "2026-03-05"),
            ("YYYY-MM-DD HH24:MI:SS.US", "2026-03-05 14:07:09.123456"),
            ("Day, DD Month YYYY", "Thursday , 05 March     2026"),
            ("FMDay, FMDDth FMMonth YYYY", "Thursday, 5th March 2026"),
            ("HH12:MI AM", "02:07 PM"),
            ("IYYY-IW", "2026-10"),
            ("Q", "1"),
            ("DDD", "064"),
            ("J", "2461105"),
            ("YYYY \"year\" MM", "2026 year 03"),
            (
                "HH HH12 HH24 MI SS MS US FF1 FF2 FF3 FF4 FF5 FF6 SSSS SSSSS",
                "02 02 14 07 09 123 123456 1 12 123 1234 12345 123456 50829 50829",
            ),
            (
                "AM PM am pm A.M. P.M. a.m. p.m.",
                "PM PM pm pm P.M. P.M. p.m. p.m.",
            ),
            (
                "Y,YYY YYYY YYY YY Y IYYY IYY IY I",
                "2,026 2026 026 26 6 2026 026 26 6",
            ),
            (
                "BC AD bc ad B.C. A.D. b.c. a.d.",
                "AD AD ad ad A.D. A.D. a.d. a.d.",
            ),
            (
                "MONTH|Month|month|MON|Mon|mon|MM",
                "MARCH    |March    |march    |MAR|Mar|mar|03",
            ),
            (
                "DAY|Day|day|DY|Dy|dy|DDD|IDDD|DD|D|ID",
                "THURSDAY |Thursday |thursday |THU|Thu|thu|064|067|05|5|4",
            ),
            ("W WW IW CC J Q RM rm", "1 10 10 21 2461105 1 III  iii "),
            ("TZ|tz|TZH|TZM|OF", "||+00|00|+00"),
            (
                "FMHH FMHH12 FMMI FMSS FMMS FMUS FMDDD FMMM FMYYYY FMCC FMRM FMMONTH",
                "2 2 7 9 123 123456 64 3 2026 21 III MARCH",
            ),
            (
                "DDth DDTH Dth MMth HH24th YYYYth DDDth Jth IWth SSth MIth Qth CCth Wth WWth IDth HHth",
                "05th 05TH 5th 03rd 14th 2026th 064th 2461105th 10th 09th 07th 1st 21st 1st 10th 4th 02nd",
            ),
            ("FX YYYY", " 2026"),
            ("\"quoted \\\"text\\\" here\" YYYY", "quoted \"text\" here 2026"),
            ("\\\"YYYY\\\" \\YYYY a\\b", "\"2026\" \\2026 a\\b"),
            ("FMx FM FMyyyy", "x  2026"),
            ("hh24:mi:ss yyyy-mm-dd", "14:07:09 2026-03-05"),
            ("TMMonth TMDay", "March Thursday"),
            ("DDSP", "05"),
            ("YYYYMMDDHH24MISS", "20260305140709"),
            ("Hh Mm Dd", "Hh Mm 55"),
            ("YyYy", "6666"),
            ("1st 2nd", "1st 2n5"),
        ] {
            check(&tm, pattern, expected);
        }
    }

    #[test]
    fn calendar_edges_match_postgres() {
        let at = |y: i64, m: i64, d: i64, h: i64| {
            let local = (date2j(y, m, d) - UNIX_EPOCH_JDATE) * 86_400 + h * 3600;
            match FmtTm::from_local(local, 0, 0) {
                Ok(tm) => tm,
                Err(e) => panic!("{y}-{m}-{d}: {e}"),
            }
        };
        let pattern = "HH HH12 AM Dy IW IYYY WW W DDD IDDD D ID";
        check(
            &at(2026, 1, 1, 0),
            pattern,
            "12 12 AM Thu 01 2026 01 1 001 004 5 4",
        );
        check(
            &at(2027, 1, 3, 12),
            pattern,
            "12 12 PM Sun 53 2026 01 1 003 371 1 7",
        );
        // 44 BC is astronomical year -43.
        check(
            &at(-43, 3, 15, 12),
            "YYYY BC CC Y,YYY YYY J",
            "0044 BC -01 0,044 044 1705428",
        );
        check(&at(10000, 1, 1, 0), "YYYY Y,YYY CC", "10000 10,000 100");
        check(&at(2000, 1, 1, 0), "CC", "20");
        check(&at(2001, 1, 1, 0), "CC", "21");
        for (day, expected) in [
            (1, "01st"),
            (2, "02nd"),
            (3, "03rd"),
            (11, "11th"),
            (12, "12th"),
            (13, "13th"),
            (21, "21st"),
            (23, "23rd"),
        ] {
            check(&at(2026, 3, day, 0), "DDth", expected);
        }
    }

    #[test]
    fn zone_fields() {
        let mut tm = sample();
        tm.utc_offset = -(4 * 3600);
        assert_eq!(
            render(&tm, "TZ tz TZH TZM OF", Some("EDT")),
            Ok("EDT edt -04 00 -04".to_string())
        );
        tm.utc_offset = 5 * 3600 + 1800;
        assert_eq!(
            render(&tm, "TZH TZM OF FMOF", Some("+0530")),
            Ok("+05 30 +05:30 +5:30".to_string())
        );
    }

    /// PostgreSQL 15.18's `to_char(interval …)` output.
    #[test]
    fn intervals_match_postgres() {
        const HOUR: i64 = 3_600_000_000;
        let tm = FmtTm::from_interval(14, 3, 4 * HOUR + 5 * 60_000_000 + 6_789_000);
        check(
            &tm,
            "YYYY MM DD HH24 MI SS US IW IYYY J DDD WW Q CC W RM",
            "0001 02 03 04 05 06 789000 05 0001 1721459 423 61 1 00 1 II  ",
        );
        let negative = FmtTm::from_interval(-14, -3, -(4 * HOUR + 5 * 60_000_000 + 6_789_000));
        check(
            &negative,
            "YYYY MM DD HH HH24 MI SS US",
            "-0001 -02 -3 -04 -04 -05 -06 -789000",
        );
        check(
            &FmtTm::from_interval(0, 0, 25 * HOUR + 3 * 60_000_000),
            "HH HH12 HH24 AM SSSS",
            "01 01 25 AM 90180",
        );
        check(
            &FmtTm::from_interval(12, 0, 0),
            "RM|YYYY|MM|Q|CC|J|IW|IYYY|IDDD|W|WW|DDD|Y,YYY",
            "XII |0001|00||00|1721394|48|0000|333|1|52|360|0,001",
        );
        check(
            &FmtTm::from_interval(-13, 0, 0),
            "RM|YYYY|MM|Q|CC",
            "XII |-0001|-01|1|00",
        );
        check(
            &FmtTm::from_interval(0, 0, -3 * HOUR),
            "HH|HH12|AM|SSSS|FMHH24|HH24th",
            "-03|-03|AM|-10800|-3|-03rd",
        );
        check(
            &FmtTm::from_interval(0, 0, 123_456 * HOUR),
            "HH24|HH|SSSS",
            "123456|12|444441600",
        );
        for pattern in ["Day", "Mon", "D", "ID", "BC", "TZ", "TZH", "OF"] {
            assert_eq!(
                render(&FmtTm::from_interval(0, 1, 0), pattern, None),
                Err(DateTimeError::NotForInterval),
                "{pattern}"
            );
        }
    }
}
