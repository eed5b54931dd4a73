//! PostgreSQL's date/time template patterns (`to_char`, `to_timestamp`,
//! `to_date`; PostgreSQL 15 manual, tables 9.26 and 9.27), as pure
//! synchronous code.
//!
//! A template string is compiled once into a [`Template`] (a list of
//! nodes), which [`format::format`] renders from broken-down time fields and
//! [`parse::parse`] reads text with ([`resolve`] turns what it read into a
//! date and time). The compiler mirrors `parse_format` in
//! PostgreSQL's `formatting.c`, including its quirks (an `FM` that is not
//! followed by a keyword is dropped, keywords are case-sensitive, a
//! backslash outside quotes only escapes `"`), because users port templates
//! from PostgreSQL and expect identical output. [`calendar`] holds
//! PostgreSQL's Julian-day arithmetic the other two share.

pub mod calendar;
pub mod format;
pub mod parse;
pub mod resolve;

/// A date/time conversion error, worded as PostgreSQL words it.
///
/// [`DateTimeError::sqlstate`] gives each one PostgreSQL's code. PostgreSQL
/// raises: `invalid value …`,
/// `source string too short …`, `conflicting values …`, `invalid
/// combination …`, `hour … is invalid …`, `invalid input string …`,
/// `cannot calculate …` and `invalid format specification …` as 22007
/// (invalid_datetime_format); `date/time field value out of range …`,
/// `value for … is out of range`, `timestamp out of range`, `interval out
/// of range` and `date out of range …` as 22008 (datetime_field_overflow);
/// `time zone displacement …` as 22009; `formatting field … is only
/// supported in to_char` as 0A000.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateTimeError {
    #[error("invalid value \"{value}\" for \"{field}\"")]
    InvalidValue { value: String, field: &'static str },
    #[error("source string too short for \"{field}\" formatting field")]
    SourceTooShort { field: &'static str },
    #[error("value for \"{field}\" in source string is out of range")]
    ValueOutOfRange { field: &'static str },
    #[error("conflicting values for \"{field}\" field in formatting string")]
    ConflictingValues { field: &'static str },
    #[error("invalid combination of date conventions")]
    MixedDateConventions,
    #[error("hour \"{0}\" is invalid for the 12-hour clock")]
    InvalidTwelveHour(i64),
    #[error("invalid input string for \"Y,YYY\"")]
    InvalidYearWithComma,
    #[error("cannot calculate day of year without year information")]
    DayOfYearWithoutYear,
    /// Carries the whole source string, as PostgreSQL's message does.
    #[error("date/time field value out of range: \"{0}\"")]
    FieldOutOfRange(String),
    #[error("time zone displacement out of range: \"{0}\"")]
    TimeZoneDisplacement(String),
    #[error("timestamp out of range")]
    TimestampOutOfRange,
    #[error("date out of range: \"{0}\"")]
    DateOutOfRange(String),
    #[error("formatting field \"{0}\" is only supported in to_char")]
    OnlyInToChar(&'static str),
    #[error("invalid format specification for an interval value")]
    NotForInterval,
    #[error("interval out of range")]
    IntervalOutOfRange,
}

/// Letter case of a name pattern: `MONTH`, `Month` or `month`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Upper,
    Title,
    Lower,
}

/// What a template keyword stands for. Keywords that only differ in the
/// case of their output share a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `AM`, `PM`, `A.M.`, … (upper or lower case, with or without dots).
    Meridiem {
        upper: bool,
        dots: bool,
    },
    /// `AD`, `BC`, `A.D.`, … .
    Era {
        upper: bool,
        dots: bool,
    },
    Century,
    DayName(Case),
    DayAbbrev(Case),
    DayOfYear,
    DayOfMonth,
    DayOfWeek,
    /// `FF1` … `FF6`: that many fractional-second digits.
    Fraction(u8),
    /// `FX`: fixed format from here on (parsing only).
    FixedFormat,
    Hour24,
    Hour12,
    IsoDayOfYear,
    IsoDayOfWeek,
    IsoWeek,
    /// `IYYY`, `IYY`, `IY`, `I`: the last N digits of the ISO year.
    IsoYear(u8),
    Julian,
    Minute,
    Month,
    MonthName(Case),
    MonthAbbrev(Case),
    Millisecond,
    /// `OF`: UTC offset.
    Offset,
    Quarter,
    RomanMonth {
        upper: bool,
    },
    SecondsOfDay,
    Second,
    TzHour,
    TzMinute,
    TzAbbrev {
        upper: bool,
    },
    Microsecond,
    WeekOfYear,
    WeekOfMonth,
    /// `Y,YYY`.
    YearWithComma,
    /// `YYYY`, `YYY`, `YY`, `Y`: the last N digits of the year.
    Year(u8),
}

/// Which calendar a parsed field belongs to; PostgreSQL refuses to mix
/// Gregorian and ISO-week fields in one template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateMode {
    None,
    Gregorian,
    IsoWeek,
}

impl Key {
    /// Whether the field reads and writes digits: a digit field followed by
    /// another one must have its full width when parsed.
    pub fn is_digit(self) -> bool {
        !matches!(
            self,
            Key::Meridiem { .. }
                | Key::Era { .. }
                | Key::DayName(_)
                | Key::DayAbbrev(_)
                | Key::FixedFormat
                | Key::MonthName(_)
                | Key::MonthAbbrev(_)
                | Key::Offset
                | Key::RomanMonth { .. }
                | Key::TzHour
                | Key::TzAbbrev { .. }
        )
    }

    pub fn date_mode(self) -> DateMode {
        match self {
            Key::DayOfYear
            | Key::DayOfMonth
            | Key::DayOfWeek
            | Key::Month
            | Key::MonthName(_)
            | Key::MonthAbbrev(_)
            | Key::RomanMonth { .. }
            | Key::WeekOfYear
            | Key::WeekOfMonth
            | Key::YearWithComma
            | Key::Year(_) => DateMode::Gregorian,
            Key::IsoDayOfYear | Key::IsoDayOfWeek | Key::IsoWeek | Key::IsoYear(_) => {
                DateMode::IsoWeek
            }
            _ => DateMode::None,
        }
    }
}

/// A keyword as spelled in templates. The order is PostgreSQL's: within a
/// first letter, longer keywords come before their prefixes (`HH24` before
/// `HH`), and the first match wins.
struct Keyword {
    name: &'static str,
    key: Key,
}

const fn kw(name: &'static str, key: Key) -> Keyword {
    Keyword { name, key }
}

const KEYWORDS: &[Keyword] = &[
    kw(
        "A.D.",
        Key::Era {
            upper: true,
            dots: true,
        },
    ),
    kw(
        "A.M.",
        Key::Meridiem {
            upper: true,
            dots: true,
        },
    ),
    kw(
        "AD",
        Key::Era {
            upper: true,
            dots: false,
        },
    ),
    kw(
        "AM",
        Key::Meridiem {
            upper: true,
            dots: false,
        },
    ),
    kw(
        "B.C.",
        Key::Era {
            upper: true,
            dots: true,
        },
    ),
    kw(
        "BC",
        Key::Era {
            upper: true,
            dots: false,
        },
    ),
    kw("CC", Key::Century),
    kw("DAY", Key::DayName(Case::Upper)),
    kw("DDD", Key::DayOfYear),
    kw("DD", Key::DayOfMonth),
    kw("DY", Key::DayAbbrev(Case::Upper)),
    kw("Day", Key::DayName(Case::Title)),
    kw("Dy", Key::DayAbbrev(Case::Title)),
    kw("D", Key::DayOfWeek),
    kw("FF1", Key::Fraction(1)),
    kw("FF2", Key::Fraction(2)),
    kw("FF3", Key::Fraction(3)),
    kw("FF4", Key::Fraction(4)),
    kw("FF5", Key::Fraction(5)),
    kw("FF6", Key::Fraction(6)),
    kw("FX", Key::FixedFormat),
    kw("HH24", Key::Hour24),
    kw("HH12", Key::Hour12),
    kw("HH", Key::Hour12),
    kw("IDDD", Key::IsoDayOfYear),
    kw("ID", Key::IsoDayOfWeek),
    kw("IW", Key::IsoWeek),
    kw("IYYY", Key::IsoYear(4)),
    kw("IYY", Key::IsoYear(3)),
    kw("IY", Key::IsoYear(2)),
    kw("I", Key::IsoYear(1)),
    kw("J", Key::Julian),
    kw("MI", Key::Minute),
    kw("MM", Key::Month),
    kw("MONTH", Key::MonthName(Case::Upper)),
    kw("MON", Key::MonthAbbrev(Case::Upper)),
    kw("MS", Key::Millisecond),
    kw("Month", Key::MonthName(Case::Title)),
    kw("Mon", Key::MonthAbbrev(Case::Title)),
    kw("OF", Key::Offset),
    kw(
        "P.M.",
        Key::Meridiem {
            upper: true,
            dots: true,
        },
    ),
    kw(
        "PM",
        Key::Meridiem {
            upper: true,
            dots: false,
        },
    ),
    kw("Q", Key::Quarter),
    kw("RM", Key::RomanMonth { upper: true }),
    kw("SSSSS", Key::SecondsOfDay),
    kw("SSSS", Key::SecondsOfDay),
    kw("SS", Key::Second),
    kw("TZH", Key::TzHour),
    kw("TZM", Key::TzMinute),
    kw("TZ", Key::TzAbbrev { upper: true }),
    kw("US", Key::Microsecond),
    kw("WW", Key::WeekOfYear),
    kw("W", Key::WeekOfMonth),
    kw("Y,YYY", Key::YearWithComma),
    kw("YYYY", Key::Year(4)),
    kw("YYY", Key::Year(3)),
    kw("YY", Key::Year(2)),
    kw("Y", Key::Year(1)),
    kw(
        "a.d.",
        Key::Era {
            upper: false,
            dots: true,
        },
    ),
    kw(
        "a.m.",
        Key::Meridiem {
            upper: false,
            dots: true,
        },
    ),
    kw(
        "ad",
        Key::Era {
            upper: false,
            dots: false,
        },
    ),
    kw(
        "am",
        Key::Meridiem {
            upper: false,
            dots: false,
        },
    ),
    kw(
        "b.c.",
        Key::Era {
            upper: false,
            dots: true,
        },
    ),
    kw(
        "bc",
        Key::Era {
            upper: false,
            dots: false,
        },
    ),
    kw("cc", Key::Century),
    kw("day", Key::DayName(Case::Lower)),
    kw("ddd", Key::DayOfYear),
    kw("dd", Key::DayOfMonth),
    kw("dy", Key::DayAbbrev(Case::Lower)),
    kw("d", Key::DayOfWeek),
    kw("ff1", Key::Fraction(1)),
    kw("ff2", Key::Fraction(2)),
    kw("ff3", Key::Fraction(3)),
    kw("ff4", Key::Fraction(4)),
    kw("ff5", Key::Fraction(5)),
    kw("ff6", Key::Fraction(6)),
    kw("fx", Key::FixedFormat),
    kw("hh24", Key::Hour24),
    kw("hh12", Key::Hour12),
    kw("hh", Key::Hour12),
    kw("iddd", Key::IsoDayOfYear),
    kw("id", Key::IsoDayOfWeek),
    kw("iw", Key::IsoWeek),
    kw("iyyy", Key::IsoYear(4)),
    kw("iyy", Key::IsoYear(3)),
    kw("iy", Key::IsoYear(2)),
    kw("i", Key::IsoYear(1)),
    kw("j", Key::Julian),
    kw("mi", Key::Minute),
    kw("mm", Key::Month),
    kw("month", Key::MonthName(Case::Lower)),
    kw("mon", Key::MonthAbbrev(Case::Lower)),
    kw("ms", Key::Millisecond),
    kw("of", Key::Offset),
    kw(
        "p.m.",
        Key::Meridiem {
            upper: false,
            dots: true,
        },
    ),
    kw(
        "pm",
        Key::Meridiem {
            upper: false,
            dots: false,
        },
    ),
    kw("q", Key::Quarter),
    kw("rm", Key::RomanMonth { upper: false }),
    kw("sssss", Key::SecondsOfDay),
    kw("ssss", Key::SecondsOfDay),
    kw("ss", Key::Second),
    kw("tzh", Key::TzHour),
    kw("tzm", Key::TzMinute),
    kw("tz", Key::TzAbbrev { upper: false }),
    kw("us", Key::Microsecond),
    kw("ww", Key::WeekOfYear),
    kw("w", Key::WeekOfMonth),
    kw("y,yyy", Key::YearWithComma),
    kw("yyyy", Key::Year(4)),
    kw("yyy", Key::Year(3)),
    kw("yy", Key::Year(2)),
    kw("y", Key::Year(1)),
];

/// `TH` / `th`: append an English ordinal suffix in that case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordinal {
    Upper,
    Lower,
}

/// One keyword occurrence with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub key: Key,
    /// The keyword as written, for error messages (`"yyyy"`, `"HH24"`).
    pub name: &'static str,
    /// `FM`: no padding when formatting, no fixed width when parsing.
    pub fill_mode: bool,
    /// `TM`: "translated" names, which PostgreSQL does not pad. Names are
    /// always English here, as in PostgreSQL's C locale.
    pub translate: bool,
    pub ordinal: Option<Ordinal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    Field(Field),
    /// Text copied as is: quoted text, letters that are not keywords,
    /// digits, non-ASCII characters.
    Literal(char),
    /// Printable ASCII that is neither a letter nor a digit; when parsing it
    /// matches any one separator.
    Separator(char),
    Space(char),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    nodes: Vec<Node>,
    /// Whether `TZ`/`tz` occurs, so callers look up zone names only then.
    prints_zone_name: bool,
}

impl Template {
    pub fn compile(pattern: &str) -> Template {
        let bytes = pattern.as_bytes();
        let mut nodes = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let prefix = prefix_at(&bytes[i..]);
            if prefix.is_some() {
                i += 2;
            }
            if i >= bytes.len() {
                break;
            }
            if let Some(keyword) = keyword_at(&bytes[i..]) {
                i += keyword.name.len();
                let ordinal = match bytes.get(i..i + 2) {
                    Some(b"TH") => Some(Ordinal::Upper),
                    Some(b"th") => Some(Ordinal::Lower),
                    _ => None,
                };
                // `SP` (spell mode) is accepted and ignored, as PostgreSQL
                // does.
                if ordinal.is_some() || bytes.get(i..i + 2) == Some(&b"SP"[..]) {
                    i += 2;
                }
                nodes.push(Node::Field(Field {
                    key: keyword.key,
                    name: keyword.name,
                    fill_mode: prefix == Some(Prefix::FillMode),
                    translate: prefix == Some(Prefix::Translate),
                    ordinal,
                }));
                continue;
            }
            if bytes[i] == b'"' {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'"' {
                        i += 1;
                        break;
                    }
                    if bytes[i] == b'\\' && i + 1 < bytes.len() {
                        i += 1;
                    }
                    let c = char_at(pattern, i);
                    nodes.push(Node::Literal(c));
                    i += c.len_utf8();
                }
                continue;
            }
            if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'"') {
                i += 1;
            }
            let c = char_at(pattern, i);
            nodes.push(if is_separator(c) {
                Node::Separator(c)
            } else if c.is_ascii() && is_c_space(c as u8) {
                Node::Space(c)
            } else {
                Node::Literal(c)
            });
            i += c.len_utf8();
        }
        let prints_zone_name = nodes
            .iter()
            .any(|n| matches!(n, Node::Field(f) if matches!(f.key, Key::TzAbbrev { .. })));
        Template {
            nodes,
            prints_zone_name,
        }
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn prints_zone_name(&self) -> bool {
        self.prints_zone_name
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    FillMode,
    Translate,
}

fn prefix_at(bytes: &[u8]) -> Option<Prefix> {
    match bytes.get(..2) {
        Some(b"FM" | b"fm") => Some(Prefix::FillMode),
        Some(b"TM" | b"tm") => Some(Prefix::Translate),
        _ => None,
    }
}

fn keyword_at(bytes: &[u8]) -> Option<&'static Keyword> {
    let first = *bytes.first()?;
    KEYWORDS
        .iter()
        .filter(|k| k.name.as_bytes()[0] == first)
        .find(|k| bytes.starts_with(k.name.as_bytes()))
}

/// The character starting at byte `i`, which callers keep on a character
/// boundary (they only step over whole characters and ASCII keywords).
fn char_at(s: &str, i: usize) -> char {
    s.get(i..)
        .and_then(|rest| rest.chars().next())
        .unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// PostgreSQL's `is_separator_char`: printable ASCII other than letters and
/// digits.
pub fn is_separator(c: char) -> bool {
    c.is_ascii_graphic() && !c.is_ascii_alphanumeric()
}

/// C's `isspace` in the C locale (Rust's `is_ascii_whitespace` omits `\v`).
pub fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: Key, name: &'static str) -> Node {
        Node::Field(Field {
            key,
            name,
            fill_mode: false,
            translate: false,
            ordinal: None,
        })
    }

    #[test]
    fn longest_keyword_wins_within_a_letter() {
        let t = Template::compile("HH24HH12HHDDDDDD");
        assert_eq!(
            t.nodes(),
            &[
                field(Key::Hour24, "HH24"),
                field(Key::Hour12, "HH12"),
                field(Key::Hour12, "HH"),
                field(Key::DayOfYear, "DDD"),
                field(Key::DayOfYear, "DDD"),
            ]
        );
    }

    #[test]
    fn modifiers_quotes_and_separators() {
        let t = Template::compile("FMDDth \"a\\\"-\"-x\\\"");
        assert_eq!(
            t.nodes(),
            &[
                Node::Field(Field {
                    key: Key::DayOfMonth,
                    name: "DD",
                    fill_mode: true,
                    translate: false,
                    ordinal: Some(Ordinal::Lower),
                }),
                Node::Space(' '),
                Node::Literal('a'),
                Node::Literal('"'),
                Node::Literal('-'),
                Node::Separator('-'),
                Node::Literal('x'),
                Node::Separator('"'),
            ]
        );
    }

    #[test]
    fn mixed_case_is_not_a_keyword() {
        // PostgreSQL: 'Hh Mm Dd' formats as 'Hh Mm 55' (D then d).
        let t = Template::compile("Hh Dd");
        assert_eq!(
            t.nodes(),
            &[
                Node::Literal('H'),
                Node::Literal('h'),
                Node::Space(' '),
                field(Key::DayOfWeek, "D"),
                field(Key::DayOfWeek, "d"),
            ]
        );
    }

    #[test]
    fn dangling_fill_mode_is_dropped() {
        let t = Template::compile("FMx FM");
        assert_eq!(t.nodes(), &[Node::Literal('x'), Node::Space(' ')]);
    }
}
