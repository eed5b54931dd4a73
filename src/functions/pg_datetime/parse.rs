//! `to_timestamp` / `to_date`: reads text through a [`Template`] into
//! fields, following PostgreSQL 15's `DCH_from_char`; [`super::resolve`]
//! then combines them into a date and time.
//!
//! PostgreSQL's reader is lenient in specific, documented ways, and
//! templates written for it depend on them: spaces before fields are
//! skipped (unless `FX`), a template separator matches any one separator
//! or nothing, a number followed by a non-digit field may have fewer digits
//! than its pattern (or any number with `FM`), names match case-blind,
//! literal template characters consume one input character whatever it
//! is, and trailing input is ignored. Those rules are reproduced here
//! step by step, including where they surprise.

use super::resolve::FromChar;
pub use super::resolve::ParsedDateTime;
use super::{is_c_space, DateMode, DateTimeError, Field, Key, Node, Template};

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
const MONTHS_ABBREV: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
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
const DAYS_ABBREV: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
/// Even index = AM / AD, odd = PM / BC.
const MERIDIEM: [&str; 4] = ["am", "pm", "AM", "PM"];
const MERIDIEM_DOTS: [&str; 4] = ["a.m.", "p.m.", "A.M.", "P.M."];
const ERA: [&str; 4] = ["ad", "bc", "AD", "BC"];
const ERA_DOTS: [&str; 4] = ["a.d.", "b.c.", "A.D.", "B.C."];
/// Longest first, so that `VIII` is not read as `V`; December first.
const ROMAN_MONTHS: [&str; 12] = [
    "xii", "xi", "x", "ix", "viii", "vii", "vi", "v", "iv", "iii", "ii", "i",
];

/// Reads `text` through `template`.
pub fn parse(template: &Template, text: &str) -> Result<ParsedDateTime, DateTimeError> {
    // PostgreSQL sees the text as a C string: it ends at the first NUL.
    let text = text.split('\0').next().unwrap_or_default();
    let fields = read_fields(template, text.as_bytes())?;
    fields.resolve(text)
}

/// The input and a position in it. The position only ever moves over
/// ASCII bytes or whole characters, so it stays on a character boundary.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// The unread input; borrowed from the input, not the reader, so the
    /// position can move while it is held.
    fn rest(&self) -> &'a [u8] {
        let input: &'a [u8] = self.input;
        input.get(self.pos..).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn skip_spaces(&mut self) -> i64 {
        let mut skipped = 0;
        while self.peek().is_some_and(is_c_space) {
            self.pos += 1;
            skipped += 1;
        }
        skipped
    }

    /// Steps over one (UTF-8) character.
    fn skip_char(&mut self) {
        let len = match self.peek() {
            Some(b) if b >= 0xf0 => 4,
            Some(b) if b >= 0xe0 => 3,
            Some(b) if b >= 0xc0 => 2,
            Some(_) => 1,
            None => 0,
        };
        self.pos = (self.pos + len).min(self.input.len());
    }

    /// `TH`/`th` after a number: skip the two characters, whatever they
    /// are.
    fn skip_ordinal(&mut self, field: &Field) {
        if field.ordinal.is_some() {
            self.skip_char();
            self.skip_char();
        }
    }

    /// Case-blind match of one of `words` (first match wins) at the
    /// position; returns its index.
    fn one_of(&mut self, words: &[&str], field: &Field) -> Result<usize, DateTimeError> {
        let rest = self.rest();
        for (index, word) in words.iter().enumerate() {
            let word = word.as_bytes();
            if rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word) {
                self.pos += word.len();
                return Ok(index);
            }
        }
        // As PostgreSQL, quote the text up to the next whitespace.
        let end = rest
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c))
            .unwrap_or(rest.len());
        Err(DateTimeError::InvalidValue {
            value: String::from_utf8_lossy(&rest[..end]).into_owned(),
            field: field.name,
        })
    }

    /// Reads an integer field as PostgreSQL's `from_char_parse_int_len`:
    /// exactly `len` characters, unless the field has `FM` or is followed
    /// by a non-digit node, in which case as many digits as there are.
    /// Returns the value and the number of bytes consumed (leading spaces
    /// included, which PostgreSQL's scaling of `MS`/`US` relies on).
    fn int(
        &mut self,
        len: usize,
        field: &Field,
        next_is_separator: bool,
    ) -> Result<(i32, usize), DateTimeError> {
        let init = self.pos;
        self.skip_spaces();
        let rest = self.rest();
        let copy = &rest[..len.min(rest.len())];
        let invalid = || DateTimeError::InvalidValue {
            value: String::from_utf8_lossy(copy).into_owned(),
            field: field.name,
        };
        let (value, overflow) = if field.fill_mode || next_is_separator {
            let (value, used, overflow) = strtol(&self.input[init..]);
            self.pos = init + used;
            (value, overflow)
        } else {
            if rest.len() < len {
                return Err(DateTimeError::SourceTooShort { field: field.name });
            }
            let (value, used, overflow) = strtol(copy);
            if used > 0 && used < len {
                return Err(invalid());
            }
            self.pos += used;
            (value, overflow)
        };
        if self.pos == init {
            return Err(invalid());
        }
        match i32::try_from(value) {
            Ok(value) if !overflow => Ok((value, self.pos - init)),
            _ => Err(DateTimeError::ValueOutOfRange { field: field.name }),
        }
    }
}

/// C's `strtol` in base 10: leading spaces, an optional sign, digits.
/// Returns the value, the bytes consumed (0 if there were no digits) and
/// whether it overflowed.
fn strtol(s: &[u8]) -> (i64, usize, bool) {
    let mut i = 0;
    while s.get(i).copied().is_some_and(is_c_space) {
        i += 1;
    }
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits_start = i;
    let mut value: i64 = 0;
    let mut overflow = false;
    while let Some(&digit) = s.get(i).filter(|b| b.is_ascii_digit()) {
        let digit = i64::from(digit - b'0');
        let next = value.checked_mul(10).and_then(|v| {
            if negative {
                v.checked_sub(digit)
            } else {
                v.checked_add(digit)
            }
        });
        match next {
            Some(v) => value = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == digits_start {
        return (0, 0, false);
    }
    (value, i, overflow)
}

/// `sscanf(s, "%d,%03d%n")` for `Y,YYY`: millennia, years and bytes used.
fn scan_year_with_comma(s: &[u8]) -> Option<(i64, i64, usize)> {
    let (millennia, used) = scan_int(s, usize::MAX)?;
    if s.get(used) != Some(&b',') {
        return None;
    }
    let (years, used_years) = scan_int(&s[used + 1..], 3)?;
    Some((millennia, years, used + 1 + used_years))
}

/// One `%d` (or `%Nd`) conversion: spaces, then at most `width`
/// characters of sign and digits, with at least one digit.
fn scan_int(s: &[u8], width: usize) -> Option<(i64, usize)> {
    let mut i = 0;
    while s.get(i).copied().is_some_and(is_c_space) {
        i += 1;
    }
    let start = i;
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits_start = i;
    let mut value: i64 = 0;
    while i - start < width {
        let Some(&digit) = s.get(i).filter(|b| b.is_ascii_digit()) else {
            break;
        };
        value = value
            .checked_mul(10)?
            .checked_add(i64::from(digit - b'0'))?;
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    Some((if negative { -value } else { value }, i))
}

/// PostgreSQL's `is_next_separator`: whether the field at `index` may be
/// read as a variable-length number.
fn next_is_separator(nodes: &[Node], index: usize) -> bool {
    if let Some(Node::Field(field)) = nodes.get(index) {
        if field.ordinal.is_some() {
            return true;
        }
    }
    match nodes.get(index + 1) {
        None => true,
        Some(Node::Field(next)) => !next.key.is_digit(),
        Some(Node::Literal(c) | Node::Separator(c) | Node::Space(c)) => !c.is_ascii_digit(),
    }
}

/// Two-digit (and three-digit) years are taken as the nearest to 2020.
fn adjust_partial_year_to_2020(year: i32) -> i32 {
    match year {
        y if y < 70 => y + 2000,
        y if y < 100 => y + 1900,
        y if y < 520 => y + 2000,
        y if y < 1000 => y + 1000,
        y => y,
    }
}

/// Stores a field, refusing a second, different value for it.
fn set(dest: &mut i32, value: i32, field: &Field) -> Result<(), DateTimeError> {
    if *dest != 0 && *dest != value {
        return Err(DateTimeError::ConflictingValues { field: field.name });
    }
    *dest = value;
    Ok(())
}

fn read_fields(template: &Template, input: &[u8]) -> Result<FromChar, DateTimeError> {
    let nodes = template.nodes();
    let mut reader = Reader { input, pos: 0 };
    let mut out = FromChar::default();
    let mut fixed = false;
    // Spaces skipped beyond what the template asked for; a literal template
    // character then matches nothing rather than eat part of a field.
    let mut extra_skip: i64 = 0;
    let mut index = 0;
    while index < nodes.len() && !reader.at_end() {
        let node = nodes[index];
        let is_fx = matches!(node, Node::Field(f) if f.key == Key::FixedFormat);
        if !fixed && !is_fx && (matches!(node, Node::Field(_)) || index == 0) {
            extra_skip += reader.skip_spaces();
        }
        match node {
            Node::Space(_) | Node::Separator(_) => {
                if fixed {
                    reader.skip_char();
                } else {
                    // Matches one space or separator, or nothing.
                    extra_skip -= 1;
                    if reader
                        .peek()
                        .is_some_and(|b| is_c_space(b) || super::is_separator(char::from(b)))
                    {
                        reader.pos += 1;
                        extra_skip += 1;
                    }
                }
            }
            Node::Literal(_) => {
                if !fixed && extra_skip > 0 {
                    extra_skip -= 1;
                } else {
                    reader.skip_char();
                }
            }
            Node::Field(field) => {
                out.set_mode(field.key.date_mode())?;
                if field.key == Key::FixedFormat {
                    fixed = true;
                } else {
                    let next_sep = next_is_separator(nodes, index);
                    out.read_field(&mut reader, &field, next_sep, extra_skip)?;
                }
                if !fixed {
                    extra_skip = reader.skip_spaces();
                }
            }
        }
        index += 1;
    }
    Ok(out)
}

impl FromChar {
    fn set_mode(&mut self, mode: DateMode) -> Result<(), DateTimeError> {
        if mode == DateMode::None {
            return Ok(());
        }
        match self.mode {
            None => self.mode = Some(mode),
            Some(current) if current != mode => return Err(DateTimeError::MixedDateConventions),
            Some(_) => {}
        }
        Ok(())
    }

    fn read_field(
        &mut self,
        r: &mut Reader<'_>,
        f: &Field,
        next_sep: bool,
        extra_skip: i64,
    ) -> Result<(), DateTimeError> {
        let name_len = f.name.len();
        match f.key {
            Key::Meridiem { dots, .. } => {
                let words = if dots { &MERIDIEM_DOTS } else { &MERIDIEM };
                let index = r.one_of(words, f)?;
                set(&mut self.pm, (index % 2) as i32, f)?;
                self.twelve_hour = true;
            }
            Key::Hour12 | Key::Hour24 => {
                let (value, _) = r.int(2, f, next_sep)?;
                set(&mut self.hh, value, f)?;
                self.twelve_hour |= f.key == Key::Hour12;
                r.skip_ordinal(f);
            }
            Key::Minute => {
                let (value, _) = r.int(name_len, f, next_sep)?;
                set(&mut self.mi, value, f)?;
                r.skip_ordinal(f);
            }
            Key::Second => {
                let (value, _) = r.int(name_len, f, next_sep)?;
                set(&mut self.ss, value, f)?;
                r.skip_ordinal(f);
            }
            Key::Millisecond => {
                let (value, used) = r.int(3, f, next_sep)?;
                set(&mut self.ms, value, f)?;
                // "25" and "250" are both 0.25 s, "025" is 0.025 s.
                self.ms = self.ms.wrapping_mul(match used {
                    1 => 100,
                    2 => 10,
                    _ => 1,
                });
                r.skip_ordinal(f);
            }
            Key::Fraction(_) | Key::Microsecond => {
                let len = match f.key {
                    Key::Fraction(digits) => {
                        self.fraction_digits = digits;
                        usize::from(digits)
                    }
                    _ => 6,
                };
                let (value, used) = r.int(len, f, next_sep)?;
                set(&mut self.us, value, f)?;
                let scale = match used {
                    1 => 100_000,
                    2 => 10_000,
                    3 => 1000,
                    4 => 100,
                    5 => 10,
                    _ => 1,
                };
                self.us = self.us.wrapping_mul(scale);
                r.skip_ordinal(f);
            }
            Key::SecondsOfDay => {
                let (value, _) = r.int(name_len, f, next_sep)?;
                set(&mut self.ssss, value, f)?;
                r.skip_ordinal(f);
            }
            // As PostgreSQL 15 (17 reads them): zone names would need a
            // table of abbreviations we do not have.
            Key::TzAbbrev { .. } | Key::Offset => return Err(DateTimeError::OnlyInToChar(f.name)),
            Key::TzHour => {
                // The sign may have been taken for a separator: if spaces
                // were skipped and a '-' precedes, the hour is negative.
                match r.peek() {
                    Some(b @ (b'+' | b'-' | b' ')) => {
                        self.tz_sign = if b == b'-' { -1 } else { 1 };
                        r.pos += 1;
                    }
                    _ => {
                        let minus_before = r.pos > 0 && r.input.get(r.pos - 1) == Some(&b'-');
                        self.tz_sign = if extra_skip > 0 && minus_before {
                            -1
                        } else {
                            1
                        };
                    }
                }
                let (value, _) = r.int(2, f, next_sep)?;
                set(&mut self.tzh, value, f)?;
            }
            Key::TzMinute => {
                if self.tz_sign == 0 {
                    self.tz_sign = 1;
                }
                let (value, _) = r.int(2, f, next_sep)?;
                set(&mut self.tzm, value, f)?;
            }
            Key::Era { dots, .. } => {
                let index = r.one_of(if dots { &ERA_DOTS } else { &ERA }, f)?;
                set(&mut self.bc, (index % 2) as i32, f)?;
            }
            Key::MonthName(_) => {
                let index = r.one_of(&MONTHS, f)?;
                set(&mut self.mm, index as i32 + 1, f)?;
            }
            Key::MonthAbbrev(_) => {
                let index = r.one_of(&MONTHS_ABBREV, f)?;
                set(&mut self.mm, index as i32 + 1, f)?;
            }
            Key::Month => {
                let (value, _) = r.int(name_len, f, next_sep)?;
                set(&mut self.mm, value, f)?;
                r.skip_ordinal(f);
            }
            Key::DayName(_) | Key::DayAbbrev(_) => {
                let words: &[&str] = if matches!(f.key, Key::DayName(_)) {
                    &DAYS
                } else {
                    &DAYS_ABBREV
                };
                let index = r.one_of(words, f)?;
                set(&mut self.d, index as i32, f)?;
                self.d = self.d.wrapping_add(1);
            }
            Key::DayOfYear | Key::IsoDayOfYear => {
                let (value, _) = r.int(3, f, next_sep)?;
                set(&mut self.ddd, value, f)?;
                r.skip_ordinal(f);
            }
            Key::DayOfMonth => {
                let (value, _) = r.int(name_len, f, next_sep)?;
                set(&mut self.dd, value, f)?;
                r.skip_ordinal(f);
            }
            Key::DayOfWeek => {
                let (value, _) = r.int(1, f, next_sep)?;
                set(&mut self.d, value, f)?;
                r.skip_ordinal(f);
            }
            Key::IsoDayOfWeek => {
                let (value, _) = r.int(1, f, next_sep)?;
                set(&mut self.d, value, f)?;
                // Renumber to Sunday = 1, as the Gregorian `D`.
                self.d = self.d.wrapping_add(1);
                if self.d > 7 {
                    self.d = 1;
                }
                r.skip_ordinal(f);
            }
            Key::WeekOfYear | Key::IsoWeek => {
                let (value, _) = r.int(name_len, f, next_sep)?;
                set(&mut self.ww, value, f)?;
                r.skip_ordinal(f);
            }
            Key::Quarter => {
                // Read but ignored, as PostgreSQL: which day of the quarter
                // would it be?
                r.int(name_len, f, next_sep)?;
                r.skip_ordinal(f);
            }
            Key::Century => {
                let (value, _) = r.int(name_len, f, next_sep)?;
                set(&mut self.cc, value, f)?;
                r.skip_ordinal(f);
            }
            Key::YearWithComma => {
                let (millennia, years, used) =
                    scan_year_with_comma(r.rest()).ok_or(DateTimeError::InvalidYearWithComma)?;
                let year = millennia
                    .checked_mul(1000)
                    .and_then(|m| m.checked_add(years))
                    .and_then(|y| i32::try_from(y).ok())
                    .ok_or(DateTimeError::ValueOutOfRange { field: f.name })?;
                set(&mut self.year, year, f)?;
                self.year_digits = 4;
                r.pos += used;
                r.skip_ordinal(f);
            }
            Key::Year(digits) | Key::IsoYear(digits) => {
                let (value, used) = r.int(name_len, f, next_sep)?;
                set(&mut self.year, value, f)?;
                if digits < 4 && used < 4 {
                    self.year = adjust_partial_year_to_2020(self.year);
                }
                self.year_digits = digits;
                r.skip_ordinal(f);
            }
            Key::RomanMonth { .. } => {
                let index = r.one_of(&ROMAN_MONTHS, f)?;
                set(&mut self.mm, 12 - index as i32, f)?;
            }
            Key::WeekOfMonth => {
                let (value, _) = r.int(name_len, f, next_sep)?;
                set(&mut self.w, value, f)?;
                r.skip_ordinal(f);
            }
            Key::Julian => {
                let (value, _) = r.int(name_len, f, next_sep)?;
                set(&mut self.j, value, f)?;
                r.skip_ordinal(f);
            }
            Key::FixedFormat => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
