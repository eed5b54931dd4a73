//! PostgreSQL 15.18 results for `to_timestamp`/`to_date`, read through
//! [`parse`](super::parse).

use super::*;

fn read(text: &str, pattern: &str) -> Result<ParsedDateTime, DateTimeError> {
    parse(&Template::compile(pattern), text)
}

/// `(year, month, day, hour, minute, second, microsecond)`.
fn fields(p: &ParsedDateTime) -> (i64, i64, i64, i64, i64, i64, i64) {
    (
        p.year,
        p.month,
        p.day,
        p.hour,
        p.minute,
        p.second,
        p.microsecond,
    )
}

fn check(text: &str, pattern: &str, expected: (i64, i64, i64, i64, i64, i64, i64)) {
    match read(text, pattern) {
        Ok(p) => assert_eq!(fields(&p), expected, "{text:?} with {pattern:?}"),
        Err(e) => panic!("{text:?} with {pattern:?}: {e}"),
    }
}

fn check_date(text: &str, pattern: &str, (y, m, d): (i64, i64, i64)) {
    check(text, pattern, (y, m, d, 0, 0, 0, 0));
}

fn check_err(text: &str, pattern: &str, expected: &str) {
    match read(text, pattern) {
        Ok(p) => panic!("{text:?} with {pattern:?}: expected an error, got {p:?}"),
        Err(e) => assert_eq!(e.to_string(), expected, "{text:?} with {pattern:?}"),
    }
}

/// Each expectation is PostgreSQL 15.18's result for the same call
/// (year 0 is what PostgreSQL prints as 0001 BC).
#[test]
fn timestamps_match_postgres() {
    check(
        "2026-03-05 14:07:09.123456",
        "YYYY-MM-DD HH24:MI:SS.US",
        (2026, 3, 5, 14, 7, 9, 123_456),
    );
    check_date("05 Mar 2026", "DD Mon YYYY", (2026, 3, 5));
    check(
        "2026-03-05 12:30 am",
        "YYYY-MM-DD HH:MI AM",
        (2026, 3, 5, 0, 30, 0, 0),
    );
    check(
        "2026-03-05 01:30 p.m.",
        "YYYY-MM-DD HH:MI P.M.",
        (2026, 3, 5, 13, 30, 0, 0),
    );
    check(
        "  2026-3-5   4:7:9",
        "YYYY-MM-DD HH24:MI:SS",
        (2026, 3, 5, 4, 7, 9, 0),
    );
    check_date("2026/03/05", "YYYY-MM-DD", (2026, 3, 5));
    check_date("2026 03 05", "YYYY-MM-DD", (2026, 3, 5));
    check_date("2026-03-05", "FXYYYY MM DD", (2026, 3, 5));
    check_date("2026  03 05", "FXYYYY MM DD", (2026, 3, 5));
    check_date("2026x03x05", "FXYYYY MM DD", (2026, 3, 5));
    check_date("2026-03-05", "YYYYMMDD", (2026, 1, 3));
    check_date("2026035", "YYYYMMDD", (2026, 3, 5));
    check_date("thursday 05 MARCH 2026", "Day DD Month YYYY", (2026, 3, 5));
    check_date("Thu Mar 05 2026", "Dy Mon DD YYYY", (2026, 3, 5));
    check("14:07:09.5", "HH24:MI:SS.MS", (0, 1, 1, 14, 7, 9, 500_000));
    check(
        "2026-03-05 14:07:09.12",
        "YYYY-MM-DD HH24:MI:SS.MS",
        (2026, 3, 5, 14, 7, 9, 120_000),
    );
    check(
        "2026-03-05 14:07:09.1",
        "YYYY-MM-DD HH24:MI:SS.US",
        (2026, 3, 5, 14, 7, 9, 100_000),
    );
    check(
        "2026-03-05 50829",
        "YYYY-MM-DD SSSS",
        (2026, 3, 5, 14, 7, 9, 0),
    );
    check(
        "2026-03-05 10 PM",
        "YYYY-MM-DD HH24 AM",
        (2026, 3, 5, 22, 0, 0, 0),
    );
    check(
        "2026-03-05 14:07 extra",
        "YYYY-MM-DD HH24:MI",
        (2026, 3, 5, 14, 7, 0, 0),
    );
    check("2026-03-05 1a", "YYYY-MM-DD HH24", (2026, 3, 5, 1, 0, 0, 0));
    check(
        "20260305 1407",
        "YYYYMMDD HH24MI",
        (2026, 3, 5, 14, 7, 0, 0),
    );
    check(
        "2026-03-05 01 07",
        "YYYY-MM-DD HH24MI",
        (2026, 3, 5, 1, 7, 0, 0),
    );
    check(
        "2026-03-05T14:07:09",
        "YYYY-MM-DD\"T\"HH24:MI:SS",
        (2026, 3, 5, 14, 7, 9, 0),
    );
    // An unquoted T is a literal that eats one character: here the "1".
    check(
        "2026-03-05T14:07:09",
        "YYYY-MM-DDTHH24:MI:SS",
        (2026, 3, 5, 0, 7, 9, 0),
    );
    check(
        "2026-03-05 14:07:09Z",
        "YYYY-MM-DD HH24:MI:SSZ",
        (2026, 3, 5, 14, 7, 9, 0),
    );
    check_date("2026 5th March", "YYYY DDth Month", (2026, 3, 5));
    check_date("-2026-03-05", "YYYY-MM-DD", (-2025, 3, 5));
}

#[test]
fn fraction_precision_is_recorded() {
    match read("2026-03-05 14:07:09.123456", "YYYY-MM-DD HH24:MI:SS.FF3") {
        Ok(p) => {
            assert_eq!(p.microsecond, 123_456);
            assert_eq!(p.fraction_digits, 3);
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn utc_offsets() {
    let offset = |text: &str, pattern: &str| match read(text, pattern) {
        Ok(p) => p.utc_offset,
        Err(e) => panic!("{text:?}: {e}"),
    };
    let h = 3600;
    assert_eq!(
        offset(
            "2026-03-05 14:07:09 +05:30",
            "YYYY-MM-DD HH24:MI:SS TZH:TZM"
        ),
        Some(5 * h + 1800)
    );
    assert_eq!(
        offset("2026-03-05 14:07:09 -05", "YYYY-MM-DD HH24:MI:SS TZH"),
        Some(-5 * h)
    );
    assert_eq!(
        offset("2026-03-05 14:07:09-05", "YYYY-MM-DD HH24:MI:SSTZH"),
        Some(-5 * h)
    );
    assert_eq!(offset("2026-05", "YYYY-TZH"), Some(5 * h));
    assert_eq!(offset("2026 --05", "YYYY-TZH"), Some(-5 * h));
    assert_eq!(offset("2026 15", "YYYY TZH"), Some(15 * h));
    assert_eq!(offset("2026 30", "YYYY TZM"), Some(1800));
    assert_eq!(offset("2026-03-05", "YYYY-MM-DD"), None);
    check_err(
        "2026 16",
        "YYYY TZH",
        "time zone displacement out of range: \"2026 16\"",
    );
    check_err(
        "2026 UTC",
        "YYYY TZ",
        "formatting field \"TZ\" is only supported in to_char",
    );
}

#[test]
fn dates_match_postgres() {
    check_date("2026-03-05", "YYYY-MM-DD", (2026, 3, 5));
    check_date("20260305", "YYYYMMDD", (2026, 3, 5));
    check_date("02-30", "MM-DD", (0, 2, 30));
    check_date("2026 064", "YYYY DDD", (2026, 3, 5));
    check_date("2026-10-4", "IYYY-IW-ID", (2026, 3, 5));
    check_date("2461105", "J", (2026, 3, 5));
    check_date("26-03-05", "YY-MM-DD", (2026, 3, 5));
    check_date("99-03-05", "YY-MM-DD", (1999, 3, 5));
    check_date("5th March 2026", "DDth Month YYYY", (2026, 3, 5));
    check_date("21 26", "CC YY", (2026, 1, 1));
    check_date("2,026 03 05", "Y,YYY MM DD", (2026, 3, 5));
    check_date("44 BC 03 15", "YYYY BC MM DD", (-43, 3, 15));
    check_date("III 05 2026", "RM DD YYYY", (2026, 3, 5));
    check_date("2026 XIII", "YYYY RM", (2026, 12, 1));
    check_date("2026 VIIII", "YYYY RM", (2026, 8, 1));
    check_date("2026-03-05", "YYYY-MM-DD-", (2026, 3, 5));
    check_date("", "YYYY", (0, 1, 1));
    check_date("2026", "", (0, 1, 1));
    check_date("2026 2026", "YYYY YYYY", (2026, 1, 1));
    check_date("2026 Fri 03 05", "YYYY Dy MM DD", (2026, 3, 5));
    check_date("2026 10", "YYYY WW", (2026, 3, 5));
    check_date("2026 03 2", "YYYY MM W", (2026, 3, 8));
    check_date("2026 q1", "YYYY \"q\"Q", (2026, 1, 1));
    check_date("2026abc03", "YYYY\"abc\"MM", (2026, 3, 1));
    check_date("2026 03 05", "YYYYxMMxDD", (2026, 3, 5));
    check_date("2026-2", "IYYY-IW", (2026, 1, 5));
    check_date("2026 54", "IYYY IW", (2027, 1, 4));
    check_date("2026 1 8", "IYYY IW ID", (2026, 1, 4));
    check_date("2026 2 0", "IYYY IW ID", (2026, 1, 11));
    check_date("2026 12", "IYYY IDDD", (2026, 1, 9));
    check_date("21", "CC", (2001, 1, 1));
    check_date("-21", "CC", (-2099, 1, 1));
    check_date("20 BC", "CC BC", (-1999, 1, 1));
    check_date("+2026-03-05", "YYYY-MM-DD", (2026, 3, 5));
    check_date("2026-03-0 5", "YYYY-MM-DD", (2026, 3, 1));
    check_date(" 2026 - 03 - 05", "YYYY - MM - DD", (2026, 3, 5));
    check_date("2026--03--05", "YYYY--MM--DD", (2026, 3, 5));
    check_date("2026 - 03", "YYYY-MM", (2026, 3, 1));
    check_date("2026 3", "YYYYMM", (2026, 3, 1));
    check_date("2026 0", "YYYY MM", (2026, 1, 1));
    check_date("12345 01 01", "YYYY MM DD", (12345, 1, 1));
    check_date("1 01 01", "Y MM DD", (2001, 1, 1));
    check_date("123 01 01", "YYY MM DD", (2123, 1, 1));
    check_date("1999 01 01", "YY MM DD", (1999, 1, 1));
    check_date("5 Mar", "DD Mon YYYY", (0, 3, 5));
    // The quoted "Mar" eats "202", leaving "6" for the year.
    check_date("5 2026", "DD \"Mar\" YYYY", (6, 1, 5));
    check_date("5  2026", "DD  YYYY", (2026, 1, 5));
    check_date("5 Mar 2026", "DD\\ Mon\\ YYYY", (2026, 3, 5));
    check_date("2026年03月05日", "YYYY年MM月DD日", (2026, 3, 5));
    check_date("2026 03 05", "YYYY年MM月DD日", (2026, 3, 5));
}

#[test]
fn errors_match_postgres() {
    check_err(
        "2026-13-05",
        "YYYY-MM-DD",
        "date/time field value out of range: \"2026-13-05\"",
    );
    check_err(
        "garbage",
        "YYYY-MM-DD",
        "invalid value \"garb\" for \"YYYY\"",
    );
    check_err(
        "2026-03-05 25:00",
        "YYYY-MM-DD HH24:MI",
        "date/time field value out of range: \"2026-03-05 25:00\"",
    );
    check_err(
        "2026-03-05 13:00 PM",
        "YYYY-MM-DD HH:MI AM",
        "hour \"13\" is invalid for the 12-hour clock",
    );
    check_err(
        "2026-03-05 00 AM",
        "YYYY-MM-DD HH AM",
        "hour \"0\" is invalid for the 12-hour clock",
    );
    check_err(
        "05 MARC 2026",
        "DD Mon YYYY",
        "invalid value \"C 20\" for \"YYYY\"",
    );
    check_err(
        "2026-02-30",
        "YYYY-MM-DD",
        "date/time field value out of range: \"2026-02-30\"",
    );
    check_err(
        "2026-03-05 x",
        "YYYY-MM-DD HH24",
        "invalid value \"x\" for \"HH24\"",
    );
    check_err(
        "Jan 2026 Mar",
        "Mon YYYY Mon",
        "conflicting values for \"Mon\" field in formatting string",
    );
    check_err(
        "2026 2027",
        "YYYY YYYY",
        "conflicting values for \"YYYY\" field in formatting string",
    );
    check_err(
        "2026-03-05",
        "IYYY-MM-DD",
        "invalid combination of date conventions",
    );
    check_err(
        "2026--03--05",
        "YYYY-MM-DD",
        "date/time field value out of range: \"2026--03--05\"",
    );
    check_err(
        "2026 123",
        "YYYY MM",
        "date/time field value out of range: \"2026 123\"",
    );
    check_err(
        "2026 01 32",
        "YYYY MM DD",
        "date/time field value out of range: \"2026 01 32\"",
    );
    check_err(
        "99999999999",
        "YYYY",
        "value for \"YYYY\" in source string is out of range",
    );
    check_err(
        "202",
        "YYYYMM",
        "source string too short for \"YYYY\" formatting field",
    );
    check_err(
        "2026-03-05 1",
        "YYYY-MM-DD HH24MI",
        "source string too short for \"HH24\" formatting field",
    );
    check_err(
        "2026-03-05 1x07",
        "YYYY-MM-DD HH24MI",
        "invalid value \"1x\" for \"HH24\"",
    );
    check_err(
        "2026-03-05 1:07",
        "YYYY-MM-DD HH24MI",
        "invalid value \"1:\" for \"HH24\"",
    );
    check_err("xyz", "DAY", "invalid value \"xyz\" for \"DAY\"");
    check_err(
        "2026 05 March",
        "YYYY DDth Month",
        "invalid value \"arch\" for \"Month\"",
    );
    check_err(
        "2026 10 xm",
        "YYYY HH12 PM",
        "invalid value \"xm\" for \"PM\"",
    );
    check_err(
        "2026 10 p.m",
        "YYYY HH12 P.M.",
        "invalid value \"p.m\" for \"P.M.\"",
    );
    check_err(
        "2026 400",
        "YYYY DDD",
        "date/time field value out of range: \"2026 400\"",
    );
    check_err(
        "2025 366",
        "YYYY DDD",
        "date/time field value out of range: \"2025 366\"",
    );
    check_err(
        "064",
        "DDD",
        "cannot calculate day of year without year information",
    );
    check_err(
        "2026 54",
        "YYYY WW",
        "date/time field value out of range: \"2026 54\"",
    );
    check_err("2026", "Y,YYY", "invalid input string for \"Y,YYY\"");
    check_err(
        "5032026",
        "DDMMYYYY",
        "date/time field value out of range: \"5032026\"",
    );
}

#[test]
fn date32_range() {
    let date = |text: &str, pattern: &str| read(text, pattern).and_then(|p| p.date32(text));
    assert_eq!(date("2026-03-05", "YYYY-MM-DD"), Ok(20_517));
    assert_eq!(date("1970-01-01", "YYYY-MM-DD"), Ok(0));
    // Julian day 0 is "not given"; negative days are before PostgreSQL's
    // first date even where `j2date` makes a valid-looking date of them.
    assert_eq!(date("1", "J"), Ok(-2_440_587));
    assert_eq!(date("0", "J"), date("", "YYYY"));
    assert_eq!(
        date("-5", "J"),
        Err(DateTimeError::DateOutOfRange("-5".to_string()))
    );
    assert_eq!(
        date("9999999 01 01", "YYYY MM DD"),
        Err(DateTimeError::DateOutOfRange("9999999 01 01".to_string()))
    );
}

#[test]
fn odd_input_does_not_panic() {
    for pattern in [
        "YYYY-MM-DD HH24:MI:SS",
        "FXY,YYY TZH TZM",
        "J",
        "IYYY IW ID",
        "DDth Month",
        "MS US FF6",
    ] {
        for text in [
            "",
            " ",
            "-",
            "9999999999999999999999",
            "é",
            "2026-é",
            "-2147483648",
            "2147483647 2147483647",
            "\0x",
        ] {
            // Errors are fine; panics are not.
            if let Err(e) = read(text, pattern) {
                assert!(!e.to_string().is_empty());
            }
        }
    }
}
