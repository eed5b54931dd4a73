//! Flink's `date_format(timestamp [, format])`: a timestamp as text, by a
//! Java date/time pattern (`'yyyy-MM-dd HH:mm:ss'`, the default when the
//! format is left out).
//!
//! DataFusion registers `date_format` as another name for its chrono
//! `to_char` (`%Y-%m-%d`); registering this replaces it. Flink formats a
//! `TIMESTAMP` with `java.time.DateTimeFormatter.ofPattern(format)` (the
//! letters are SimpleDateFormat's for everything users commonly write), and
//! so does this, for English:
//!
//! * `y` year of era, `u` year, `yy` its last two digits, `yyyy` padded to
//!   four (a year with more digits gets a `+`); `G` era (`AD`);
//! * `M`/`L` month (`M` 3, `MM` 03, `MMM` Mar, `MMMM` March, `MMMMM` M);
//!   `Q`/`q` quarter (`Q` 1, `QQ` 01, `QQQ` Q1, `QQQQ` 1st quarter);
//! * `d` day of month, `D` day of year, `E` day name (`EEE` Thu, `EEEE`
//!   Thursday);
//! * `H` hour 0-23, `k` 1-24, `K` 0-11, `h` 1-12, `a` AM/PM, `m` minute,
//!   `s` second; `S`… the first digits of the fraction of a second (`SSS`
//!   milliseconds, `SSSSSS` microseconds); `n` nanosecond of second, `N`
//!   nanosecond of day, `A` millisecond of day;
//! * `'text'` is literal, `''` is a quote; other characters except
//!   `[]{}#` are literal; `[…]` is an optional section.
//!
//! One letter too many (`ddd`), an unknown letter, an unterminated quote
//! and `{`, `}`, `#` are errors, as in Java. The locale's week fields
//! (`Y`, `w`, `W`, `e`, `c`, `F`) are refused as not supported.
//!
//! Where we differ from Flink: Flink formats a local date-time, so zone
//! letters always fail there; here `z` (the zone: `UTC`, or the offset as
//! `to_char`'s `TZ` prints it), `Z` (`+0000`), `X`/`x` (`Z`/`+00`, `+0000`,
//! `+00:00`) print the session zone (else the value's own) of a timestamp
//! with time zone, and stay an error for one without (or are skipped in an
//! optional section, as Java skips them). A timestamp with time zone is
//! shown in the session zone, as Flink shows a `TIMESTAMP_LTZ`. Text is
//! read as Flink reads it (`yyyy-MM-dd HH:mm:ss` at its start, leniently:
//! month 13 is January next year; a fraction and anything after it are
//! ignored; NULL when it does not parse) and formatted with the same
//! letters (Flink uses SimpleDateFormat there, which differs only in
//! letters SimpleDateFormat reads differently, such as `u`).

use crate::functions::error::FunctionError;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type, TimeUnit};
use datafusion::common::{exec_err, internal_err, not_impl_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{finish, shape, type_list, TextArg};
use super::is_text;
use super::zone::{session_zone, Zone};

/// Flink's format when none is given.
const DEFAULT_FORMAT: &str = "yyyy-MM-dd HH:mm:ss";

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
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const QUARTERS: [&str; 4] = ["1st quarter", "2nd quarter", "3rd quarter", "4th quarter"];

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateFormat {
    signature: Signature,
}

impl DateFormat {
    pub fn new() -> Self {
        Self {
            // Stable: a timestamp with time zone is shown in the session zone.
            signature: Signature::user_defined(Volatility::Stable),
        }
    }
}

impl Default for DateFormat {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for DateFormat {
    fn name(&self) -> &str {
        "date_format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let value = match arg_types.first() {
            Some(
                DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Null,
            ) => arg_types[0].clone(),
            Some(t) if is_text(t) => DataType::Utf8,
            _ => return Err(not_a_signature(arg_types)),
        };
        match arg_types {
            [_] => Ok(vec![value]),
            [_, format] if is_text(format) => Ok(vec![value, DataType::Utf8]),
            _ => Err(not_a_signature(arg_types)),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (rows, scalar) = shape(&args.args, args.number_rows);
        let (value, format) = match args.args.as_slice() {
            [value] => (value, TextArg::Constant(Some(DEFAULT_FORMAT))),
            [value, format] => (value, TextArg::new(format)?),
            other => return internal_err!("date_format got {} arguments", other.len()),
        };
        let values = value.to_array(rows)?;
        let session = session_zone(&args.config_options);
        let moments = Moments::new(&values, session)?;
        let mut patterns: Option<(String, Vec<Item>)> = None;
        let mut out = StringBuilder::with_capacity(rows, rows * 20);
        let mut text = String::new();
        for row in 0..rows {
            let Some(format) = format.get(row) else {
                out.append_null();
                continue;
            };
            let Some(moment) = moments.get(row)? else {
                out.append_null();
                continue;
            };
            if patterns.as_ref().is_none_or(|(f, _)| f != format) {
                patterns = Some((format.to_string(), compile(format)?));
            }
            let Some((_, items)) = &patterns else {
                return internal_err!("pattern cache is empty");
            };
            text.clear();
            if render(items, &moment, &mut text).is_err() {
                return exec_err!(
                    "date_format: the zone letters in '{format}' need a timestamp with time zone"
                );
            }
            out.append_value(&text);
        }
        finish(Arc::new(out.finish()) as ArrayRef, scalar)
    }
}

fn not_a_signature(arg_types: &[DataType]) -> DataFusionError {
    DataFusionError::Plan(format!(
        "function date_format({}) does not exist; it takes a timestamp, date or text and an \
         optional text format",
        type_list(arg_types)
    ))
}

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(String),
    /// A pattern letter repeated `count` times (checked when compiled).
    Field(char, usize),
    /// `[…]`: printed unless a field in it cannot be.
    Optional(Vec<Item>),
}

/// Compiles a Java pattern as `DateTimeFormatterBuilder.appendPattern`
/// does, with its error messages.
fn compile(pattern: &str) -> Result<Vec<Item>> {
    let chars: Vec<char> = pattern.chars().collect();
    // The open sections; the last is where items go.
    let mut sections: Vec<Vec<Item>> = vec![Vec::new()];
    let mut pos = 0;
    while pos < chars.len() {
        let c = chars[pos];
        let mut item = None;
        if c.is_ascii_alphabetic() {
            let start = pos;
            while pos < chars.len() && chars[pos] == c {
                pos += 1;
            }
            let count = pos - start;
            check_field(c, count)?;
            item = Some(Item::Field(c, count));
        } else if c == '\'' {
            let start = pos + 1;
            pos += 1;
            let mut literal = String::new();
            loop {
                match chars.get(pos) {
                    None => {
                        return exec_err!(
                            "date_format: Pattern ends with an incomplete string literal: {pattern}"
                        )
                    }
                    Some('\'') if chars.get(pos + 1) == Some(&'\'') => {
                        literal.push('\'');
                        pos += 2;
                    }
                    Some('\'') => break,
                    Some(&other) => {
                        literal.push(other);
                        pos += 1;
                    }
                }
            }
            // `''` outside a literal is one quote.
            if pos == start {
                literal.push('\'');
            }
            pos += 1;
            item = Some(Item::Literal(literal));
        } else if c == '[' {
            sections.push(Vec::new());
            pos += 1;
        } else if c == ']' {
            if sections.len() == 1 {
                return exec_err!(
                    "date_format: Pattern invalid as it contains ] without previous ["
                );
            }
            let inner = sections.pop().unwrap_or_default();
            item = Some(Item::Optional(inner));
            pos += 1;
        } else if matches!(c, '{' | '}' | '#') {
            return exec_err!("date_format: Pattern includes reserved character: '{c}'");
        } else {
            item = Some(Item::Literal(c.to_string()));
            pos += 1;
        }
        if let (Some(item), Some(section)) = (item, sections.last_mut()) {
            section.push(item);
        }
    }
    // Java closes sections left open at the end.
    while sections.len() > 1 {
        let inner = sections.pop().unwrap_or_default();
        if let Some(outer) = sections.last_mut() {
            outer.push(Item::Optional(inner));
        }
    }
    Ok(sections.pop().unwrap_or_default())
}

/// The letters and counts `DateTimeFormatterBuilder.parseField` accepts
/// (for the letters supported here).
fn check_field(letter: char, count: usize) -> Result<()> {
    let max = match letter {
        'y' | 'u' | 'n' | 'N' | 'A' => 19,
        'G' | 'M' | 'L' | 'Q' | 'q' | 'E' => 5,
        'D' => 3,
        'd' | 'H' | 'k' | 'K' | 'h' | 'm' | 's' => 2,
        'a' => 1,
        'S' => 9,
        // Zone letters: the forms Java has and this does not (`zzzz`
        // Eastern Standard Time, `ZZZZ` GMT+08:00, `XXXX` +0800…) are
        // refused as not supported.
        'z' | 'Z' | 'X' | 'x' => {
            let supported = match letter {
                'z' => count <= 3,
                'Z' => count <= 3 || count == 5,
                _ => count <= 3,
            };
            let java_max = if letter == 'z' { 4 } else { 5 };
            return if count > java_max {
                exec_err!("date_format: Too many pattern letters: {letter}")
            } else if !supported {
                not_impl_err!("date_format: {count} pattern letters '{letter}' are not supported")
            } else {
                Ok(())
            };
        }
        'Y' | 'w' | 'W' | 'e' | 'c' | 'F' | 'V' | 'v' | 'O' | 'g' | 'B' | 'p' => {
            return not_impl_err!("date_format: pattern letter '{letter}' is not supported");
        }
        other => return exec_err!("date_format: Unknown pattern letter: {other}"),
    };
    if count > max {
        return exec_err!("date_format: Too many pattern letters: {letter}");
    }
    Ok(())
}

/// A value to format: its wall-clock time and, for a timestamp with time
/// zone, the zone it is shown in and its offset there.
struct Moment<'z> {
    local: NaiveDateTime,
    zone: Option<(&'z Zone, i64)>,
}

/// A zone letter met by a value without a zone.
struct NoZone;

fn render(items: &[Item], moment: &Moment, out: &mut String) -> Result<(), NoZone> {
    for item in items {
        match item {
            Item::Literal(text) => out.push_str(text),
            Item::Field(letter, count) => field(*letter, *count, moment, out)?,
            Item::Optional(inner) => {
                let mark = out.len();
                if render(inner, moment, out).is_err() {
                    out.truncate(mark);
                }
            }
        }
    }
    Ok(())
}

fn field(letter: char, count: usize, m: &Moment, out: &mut String) -> Result<(), NoZone> {
    let t = &m.local;
    let year = i64::from(t.year());
    match letter {
        'G' => out.push_str(match (count, year >= 1) {
            (4, true) => "Anno Domini",
            (4, false) => "Before Christ",
            (5, true) => "A",
            (5, false) => "B",
            (_, true) => "AD",
            (_, false) => "BC",
        }),
        'y' | 'u' => {
            let value = if letter == 'y' && year < 1 {
                1 - year
            } else {
                year
            };
            match count {
                2 => number(out, value.rem_euclid(100), 2),
                1 | 3 => number(out, value, count),
                _ => {
                    if value >= 0 && digits(value) > count {
                        out.push('+');
                    }
                    number(out, value, count)
                }
            }
        }
        'M' | 'L' => text_or_number(out, count, t.month(), &MONTHS),
        'Q' | 'q' => {
            let quarter = (t.month() - 1) / 3 + 1;
            match count {
                3 => {
                    out.push('Q');
                    number(out, i64::from(quarter), 1)
                }
                4 => out.push_str(QUARTERS[(quarter - 1) as usize]),
                5 => number(out, i64::from(quarter), 1),
                _ => number(out, i64::from(quarter), count),
            }
        }
        'D' => number(out, i64::from(t.ordinal()), count),
        'd' => number(out, i64::from(t.day()), count),
        'E' => {
            let name = DAYS[t.weekday().num_days_from_monday() as usize];
            match count {
                4 => out.push_str(name),
                5 => out.push_str(&name[..1]),
                _ => out.push_str(&name[..3]),
            }
        }
        'a' => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
        'H' => number(out, i64::from(t.hour()), count),
        'k' => number(
            out,
            i64::from(if t.hour() == 0 { 24 } else { t.hour() }),
            count,
        ),
        'K' => number(out, i64::from(t.hour() % 12), count),
        'h' => {
            let h = t.hour() % 12;
            number(out, i64::from(if h == 0 { 12 } else { h }), count)
        }
        'm' => number(out, i64::from(t.minute()), count),
        's' => number(out, i64::from(t.second()), count),
        // The first `count` (at most 9) digits of the nanoseconds.
        'S' => {
            let nanos = t.nanosecond() % 1_000_000_000;
            let digits = nanos / 10u32.pow(9 - count.min(9) as u32);
            number(out, i64::from(digits), count)
        }
        'n' => number(out, i64::from(t.nanosecond() % 1_000_000_000), count),
        'N' => number(out, nanos_of_day(t), count),
        'A' => number(out, nanos_of_day(t) / 1_000_000, count),
        'z' => {
            let (zone, offset) = m.zone.ok_or(NoZone)?;
            zone.abbrev(offset, out);
        }
        'Z' => {
            let (_, offset) = m.zone.ok_or(NoZone)?;
            if count == 5 {
                iso_offset(out, offset, true, true, true);
            } else {
                iso_offset(out, offset, false, true, false);
            }
        }
        'X' | 'x' => {
            let (_, offset) = m.zone.ok_or(NoZone)?;
            // `X` prints `Z` for a zero offset; `x` prints it as digits.
            let zulu = letter == 'X';
            match count {
                1 => iso_offset(out, offset, zulu, offset % 3600 != 0, false),
                2 => iso_offset(out, offset, zulu, true, false),
                _ => iso_offset(out, offset, zulu, true, true),
            }
        }
        // `check_field` let nothing else through.
        _ => {}
    }
    Ok(())
}

fn nanos_of_day(t: &NaiveDateTime) -> i64 {
    i64::from(t.num_seconds_from_midnight()) * 1_000_000_000
        + i64::from(t.nanosecond() % 1_000_000_000)
}

/// A month as a number (`count` 1, 2) or a name (3 short, 4 full, 5 its
/// first letter).
fn text_or_number(out: &mut String, count: usize, month: u32, names: &[&str; 12]) {
    let name = names[(month - 1) as usize];
    match count {
        3 => out.push_str(&name[..3]),
        4 => out.push_str(name),
        5 => out.push_str(&name[..1]),
        _ => number(out, i64::from(month), count),
    }
}

/// `value` zero-padded to `width` digits, `-` before a negative one.
fn number(out: &mut String, value: i64, width: usize) {
    if value < 0 {
        out.push('-');
    }
    let mut buffer = itoa::Buffer::new();
    let magnitude = buffer.format(value.unsigned_abs());
    for _ in magnitude.len()..width {
        out.push('0');
    }
    out.push_str(magnitude);
}

fn digits(value: i64) -> usize {
    itoa::Buffer::new().format(value.unsigned_abs()).len()
}

/// A UTC offset as `+HH`, `+HHMM` or `+HH:MM` (`Z` for zero when `zulu`).
fn iso_offset(out: &mut String, offset: i64, zulu: bool, minutes: bool, colon: bool) {
    if offset == 0 && zulu {
        out.push('Z');
        return;
    }
    out.push(if offset < 0 { '-' } else { '+' });
    let abs = offset.abs();
    number(out, abs / 3600, 2);
    if minutes {
        if colon {
            out.push(':');
        }
        number(out, abs % 3600 / 60, 2);
    }
}

/// The values of one batch, turned into wall-clock times row by row.
enum Moments<'a> {
    Nulls,
    /// Whole seconds and nanoseconds per raw value, in `zone` if any.
    Timestamps {
        raw: datafusion::arrow::array::Int64Array,
        per_second: i64,
        zone: Option<Zone>,
    },
    Dates(datafusion::arrow::array::Int32Array),
    Texts(TextArg<'a>),
}

impl<'a> Moments<'a> {
    fn new(values: &'a ArrayRef, session: Option<&str>) -> Result<Self> {
        Ok(match values.data_type() {
            DataType::Null => Moments::Nulls,
            DataType::Timestamp(unit, own_zone) => Moments::Timestamps {
                raw: cast(values, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
                per_second: match unit {
                    TimeUnit::Second => 1,
                    TimeUnit::Millisecond => 1_000,
                    TimeUnit::Microsecond => 1_000_000,
                    TimeUnit::Nanosecond => 1_000_000_000,
                },
                zone: match own_zone {
                    None => None,
                    Some(own) => Some(Zone::parse(session.unwrap_or(own))?),
                },
            },
            DataType::Date32 | DataType::Date64 => {
                let days = cast(values, &DataType::Date32)?;
                Moments::Dates(
                    cast(&days, &DataType::Int32)?
                        .as_primitive::<Int32Type>()
                        .clone(),
                )
            }
            t if is_text(t) => Moments::Texts(TextArg::Column(super::string_array(values)?)),
            other => return internal_err!("date_format was planned for a value of type {other}"),
        })
    }

    /// The moment at `row`, `None` for NULL (or text Flink cannot read).
    fn get(&self, row: usize) -> Result<Option<Moment<'_>>> {
        let out_of_range =
            || DataFusionError::from(FunctionError::datetime_overflow("timestamp out of range"));
        Ok(match self {
            Moments::Nulls => None,
            Moments::Timestamps {
                raw,
                per_second,
                zone,
            } => {
                if raw.is_null(row) {
                    return Ok(None);
                }
                let v = raw.value(row);
                let seconds = v.div_euclid(*per_second);
                let nanos = v.rem_euclid(*per_second) * (1_000_000_000 / per_second);
                let (local, zone) = match zone {
                    None => (seconds, None),
                    Some(zone) => {
                        let offset = zone.offset_at(seconds)?;
                        let local = seconds.checked_add(offset).ok_or_else(out_of_range)?;
                        (local, Some((zone, offset)))
                    }
                };
                let local = DateTime::from_timestamp(local, nanos as u32)
                    .ok_or_else(out_of_range)?
                    .naive_utc();
                Some(Moment { local, zone })
            }
            Moments::Dates(days) => {
                if days.is_null(row) {
                    return Ok(None);
                }
                let local = Duration::try_days(i64::from(days.value(row)))
                    .and_then(|d| DateTime::UNIX_EPOCH.naive_utc().checked_add_signed(d))
                    .ok_or_else(|| {
                        DataFusionError::from(FunctionError::datetime_overflow("date out of range"))
                    })?;
                Some(Moment { local, zone: None })
            }
            Moments::Texts(texts) => texts
                .get(row)
                .and_then(read_flink_text)
                .map(|local| Moment { local, zone: None }),
        })
    }
}

/// Text as Flink's `DATE_FORMAT(string, …)` reads it: SimpleDateFormat
/// `yyyy-MM-dd HH:mm:ss`, lenient (fields roll over, any number of
/// digits), from the start of the text, ignoring what follows.
fn read_flink_text(text: &str) -> Option<NaiveDateTime> {
    let mut rest = text;
    let mut fields = [0i64; 6];
    for (i, separator) in ["-", "-", " ", ":", ":", ""].iter().enumerate() {
        // SimpleDateFormat skips spaces and tabs before a number.
        rest = rest.trim_start_matches([' ', '\t']);
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        fields[i] = rest[..end].parse().ok()?;
        rest = rest[end..].strip_prefix(separator)?;
    }
    let [year, month, day, hour, minute, second] = fields;
    let months = year.checked_mul(12)?.checked_add(month - 1)?;
    let first = NaiveDate::from_ymd_opt(
        i32::try_from(months.div_euclid(12)).ok()?,
        u32::try_from(months.rem_euclid(12) + 1).ok()?,
        1,
    )?;
    let seconds = ((day - 1) * 24 + hour)
        .checked_mul(3600)?
        .checked_add(minute.checked_mul(60)?)?
        .checked_add(second)?;
    first
        .and_hms_opt(0, 0, 0)?
        .checked_add_signed(Duration::try_seconds(seconds)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(pattern: &str, local: &str, zone: Option<(&Zone, i64)>) -> Result<String> {
        let local = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f")
            .map_err(|e| DataFusionError::Execution(e.to_string()))?;
        let mut out = String::new();
        if render(&compile(pattern)?, &Moment { local, zone }, &mut out).is_err() {
            return exec_err!("no zone");
        }
        Ok(out)
    }

    /// What Java 17's `DateTimeFormatter.ofPattern(p).format(localDateTime)`
    /// prints for 2026-03-05T14:07:09.123456789 (run with OpenJDK 17).
    #[test]
    fn letters_as_java() -> Result<()> {
        let t = "2026-03-05 14:07:09.123456789";
        for (pattern, want) in [
            ("yyyy-MM-dd HH:mm:ss", "2026-03-05 14:07:09"),
            ("yy/M/d H:m:s", "26/3/5 14:7:9"),
            ("y yyy yyyyy uuuu", "2026 2026 02026 2026"),
            ("MMM MMMM MMMMM LLL", "Mar March M Mar"),
            ("Q QQ QQQ QQQQ", "1 01 Q1 1st quarter"),
            ("D DD DDD", "64 64 064"),
            ("E EE EEE EEEE EEEEE", "Thu Thu Thu Thursday T"),
            ("h:mm a, K k", "2:07 PM, 2 14"),
            ("S SS SSS SSSSSS SSSSSSSSS", "1 12 123 123456 123456789"),
            ("n A", "123456789 50829123"),
            ("G GGGG", "AD Anno Domini"),
            ("'at' HH 'o''clock' ''", "at 14 o'clock '"),
            ("yyyyMMdd[ HH]", "20260305 14"),
            ("dd.MM, HH:mm", "05.03, 14:07"),
            ("EEE, d MMM yyyy HH:mm:ss", "Thu, 5 Mar 2026 14:07:09"),
            ("yyyy-MM-dd'T'HH:mm:ss.SSS", "2026-03-05T14:07:09.123"),
            ("kk", "14"),
        ] {
            assert_eq!(format(pattern, t, None)?, want, "{pattern}");
        }
        assert_eq!(
            format("hh a", "2026-03-05 00:30:00", None)?,
            "12 AM",
            "midnight"
        );
        assert_eq!(format("k", "2026-03-05 00:30:00", None)?, "24");
        assert_eq!(format("yyyy", "+12026-03-05 00:30:00", None)?, "+12026");
        Ok(())
    }

    #[test]
    fn zones_only_where_there_is_one() -> Result<()> {
        let utc = Zone::parse("+00:00")?;
        let india = Zone::parse("+05:30")?;
        let t = "2026-03-05 14:07:09";
        assert_eq!(
            format("HH:mm z Z X", t, Some((&utc, 0)))?,
            "14:07 UTC +0000 Z"
        );
        assert_eq!(
            format("z Z X XX XXX x", t, Some((&india, 19_800)))?,
            "+0530 +0530 +0530 +0530 +05:30 +0530"
        );
        assert!(format("HH z", t, None).is_err());
        // An optional section is skipped, as Java skips it.
        assert_eq!(format("HH[ z]", t, None)?, "14");
        Ok(())
    }

    #[test]
    fn pattern_errors_as_java() {
        for (pattern, message) in [
            ("ddd", "Too many pattern letters: d"),
            ("aa", "Too many pattern letters: a"),
            ("yyyy-bb", "Unknown pattern letter: b"),
            ("'open", "incomplete string literal"),
            ("HH]", "] without previous ["),
            ("#", "reserved character: '#'"),
            ("YYYY", "not supported"),
        ] {
            match compile(pattern) {
                Ok(items) => panic!("{pattern}: compiled to {items:?}"),
                Err(e) => assert!(e.to_string().contains(message), "{pattern}: {e}"),
            }
        }
    }

    #[test]
    fn text_as_flink_reads_it() {
        let read = |s| read_flink_text(s).map(|t| t.to_string());
        assert_eq!(
            read("2026-03-05 14:07:09"),
            Some("2026-03-05 14:07:09".into())
        );
        // The fraction and anything after the seconds are ignored.
        assert_eq!(
            read("2026-03-05 14:07:09.999 junk"),
            Some("2026-03-05 14:07:09".into())
        );
        // Lenient: month 13 is January of the next year, minute 61 rolls.
        assert_eq!(
            read("2026-13-05 14:61:09"),
            Some("2027-01-05 15:01:09".into())
        );
        assert_eq!(read(" 2026-3-5 1:2:3"), Some("2026-03-05 01:02:03".into()));
        assert_eq!(read("2026-03-05"), None);
        assert_eq!(read("2026-03-05T14:07:09"), None);
        assert_eq!(read("+2026-03-05 14:07:09"), None);
        assert_eq!(read("garbage"), None);
    }
}
