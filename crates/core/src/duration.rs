//! FreeIPA's duration syntax (`1h30m`, `2 HOURS, 30 Minutes`, `1week -1 day`, `.5day`).
//!
//! Written by hand because no crate implements this exact grammar: humantime
//! and friends reject signed terms, `.5day`, the `M`/`m` month/minute split
//! and free punctuation between terms, all of which FreeIPA configurations use.
//! Unlike FreeIPA's regex scan, text that is neither a term nor a separator is
//! an error rather than silently skipped, so a typo cannot shorten a timeout.

use std::time::Duration;
use thiserror::Error;

/// Longest duration accepted anywhere (about 31,700 years): beyond it,
/// times computed from a duration overflow what stores and protocols keep
/// (memcached's 32-bit expiry, Unix seconds in tickets).
pub const MAX_DURATION_SECS: u64 = 1_000_000_000_000;

const MINUTE: f64 = 60.0;
const HOUR: f64 = 60.0 * MINUTE;
const DAY: f64 = 24.0 * HOUR;

/// Why a duration string was refused. Each variant names the offending text.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DurationError {
    #[error("no time duration found in \"{0}\"")]
    Empty(String),
    #[error("unknown time duration unit \"{unit}\" in \"{input}\"")]
    UnknownUnit { unit: String, input: String },
    #[error("number \"{number}\" has no time unit in \"{input}\" (write e.g. \"{number}s\")")]
    MissingUnit { number: String, input: String },
    #[error("unexpected \"{text}\" in \"{input}\": expected a number followed by a unit")]
    Unexpected { text: String, input: String },
    #[error("duration \"{0}\" is negative; a timeout must be zero or more")]
    Negative(String),
    #[error("duration \"{0}\" is too large")]
    TooLarge(String),
}

fn seconds_per_unit(unit: &str) -> Option<f64> {
    // Only the single letters M and m are case-sensitive (month vs minute).
    match unit {
        "M" => return Some(30.0 * DAY),
        "m" => return Some(MINUTE),
        _ => {}
    }
    Some(match unit.to_ascii_lowercase().as_str() {
        "year" | "years" | "y" => 365.0 * DAY,
        "month" | "months" => 30.0 * DAY,
        "week" | "weeks" | "w" => 7.0 * DAY,
        "day" | "days" | "d" => DAY,
        "hour" | "hours" | "h" => HOUR,
        "minute" | "minutes" | "min" => MINUTE,
        "second" | "seconds" | "sec" | "s" => 1.0,
        _ => return None,
    })
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ':' | ';')
}

/// Parses a duration to signed seconds, as FreeIPA's `parse_time_duration` does.
/// A plain integer (optionally signed, nothing else) means seconds.
pub fn parse_signed_seconds(input: &str) -> Result<f64, DurationError> {
    let trimmed = input.trim();
    if let Ok(n) = trimmed.parse::<i64>() {
        return Ok(n as f64);
    }
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut total = 0.0;
    let mut terms = 0;
    while i < chars.len() {
        if is_separator(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        if chars[i] == '+' || chars[i] == '-' {
            i += 1;
        }
        let digits_start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
            i += 1;
        }
        let number: String = chars[start..i].iter().collect();
        let digits: String = chars[digits_start..i].iter().collect();
        let dots = digits.matches('.').count();
        if digits.is_empty() || digits == "." || dots > 1 {
            let mut end = start + 1;
            while end < chars.len() && !is_separator(chars[end]) {
                end += 1;
            }
            return Err(DurationError::Unexpected {
                text: chars[start..end].iter().collect(),
                input: input.to_owned(),
            });
        }
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let unit_start = i;
        while i < chars.len() && chars[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit: String = chars[unit_start..i].iter().collect();
        if unit.is_empty() {
            return Err(DurationError::MissingUnit {
                number,
                input: input.to_owned(),
            });
        }
        let per = seconds_per_unit(&unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.clone(),
            input: input.to_owned(),
        })?;
        let magnitude: f64 = number.parse().map_err(|_| DurationError::Unexpected {
            text: number.clone(),
            input: input.to_owned(),
        })?;
        total += magnitude * per;
        terms += 1;
    }
    if terms == 0 {
        return Err(DurationError::Empty(input.to_owned()));
    }
    Ok(total)
}

/// Parses a duration that must not be negative (every timeout in configuration).
/// Fractions of a second are kept to the millisecond.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let secs = parse_signed_seconds(input)?;
    if secs < 0.0 {
        return Err(DurationError::Negative(input.to_owned()));
    }
    if !secs.is_finite() || secs > MAX_DURATION_SECS as f64 {
        return Err(DurationError::TooLarge(input.to_owned()));
    }
    Ok(Duration::from_millis((secs * 1000.0).round() as u64))
}

/// A whole number of seconds, as configuration may give instead of text,
/// under the same cap as [`parse_duration`].
pub fn duration_from_secs(secs: u64) -> Result<Duration, DurationError> {
    if secs > MAX_DURATION_SECS {
        return Err(DurationError::TooLarge(secs.to_string()));
    }
    Ok(Duration::from_secs(secs))
}

/// Formats a duration back into the syntax above (largest units first), for
/// messages and `check-config` output. Milliseconds are kept as a decimal
/// fraction of the seconds, so the text parses back to the same duration.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    let millis = d.subsec_millis();
    if secs == 0 && millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size {
            out.push_str(&format!("{}{}", secs / size, unit));
            secs %= size;
        }
    }
    match (secs, millis) {
        (0, 0) => {}
        (s, 0) => out.push_str(&format!("{s}s")),
        (s, ms) => {
            let fraction = format!("{ms:03}");
            out.push_str(&format!("{s}.{}s", fraction.trim_end_matches('0')));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> f64 {
        parse_signed_seconds(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_example_in_the_design() {
        assert_eq!(secs("1h"), HOUR);
        assert_eq!(secs("1h30m"), 1.5 * HOUR);
        assert_eq!(secs("1h:15m"), 1.25 * HOUR);
        assert_eq!(secs("2 HOURS, 30 Minutes"), 2.5 * HOUR);
        assert_eq!(secs("1week -1 day"), 6.0 * DAY);
        assert_eq!(secs(".5day"), 12.0 * HOUR);
        assert_eq!(secs("30 seconds"), 30.0);
    }

    #[test]
    fn freeipa_docstring_examples() {
        assert_eq!(secs("2M"), 60.0 * DAY);
        assert_eq!(secs("1h, -15min"), 45.0 * MINUTE);
    }

    #[test]
    fn every_unit_and_its_spellings() {
        for (u, s) in [
            ("year", 365.0 * DAY),
            ("years", 365.0 * DAY),
            ("y", 365.0 * DAY),
            ("month", 30.0 * DAY),
            ("months", 30.0 * DAY),
            ("M", 30.0 * DAY),
            ("week", 7.0 * DAY),
            ("weeks", 7.0 * DAY),
            ("w", 7.0 * DAY),
            ("day", DAY),
            ("days", DAY),
            ("d", DAY),
            ("hour", HOUR),
            ("hours", HOUR),
            ("h", HOUR),
            ("minute", MINUTE),
            ("minutes", MINUTE),
            ("min", MINUTE),
            ("m", MINUTE),
            ("second", 1.0),
            ("seconds", 1.0),
            ("sec", 1.0),
            ("s", 1.0),
        ] {
            assert_eq!(secs(&format!("2{u}")), 2.0 * s, "unit {u}");
        }
    }

    #[test]
    fn case_rules() {
        assert_eq!(secs("1HOUR"), HOUR);
        assert_eq!(secs("1Day"), DAY);
        assert_eq!(secs("1MIN"), MINUTE);
        assert_eq!(secs("1M"), 30.0 * DAY);
        assert_eq!(secs("1m"), MINUTE);
    }

    #[test]
    fn plain_integers_are_seconds() {
        assert_eq!(secs("90"), 90.0);
        assert_eq!(secs(" 3600 "), 3600.0);
        assert_eq!(secs("-5"), -5.0);
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn signs_and_fractions() {
        assert_eq!(secs("+1h -30m"), 30.0 * MINUTE);
        assert_eq!(secs("1.5h"), 1.5 * HOUR);
        assert_eq!(secs("2.s"), 2.0);
        assert_eq!(parse_duration("0.25s").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn errors_name_the_offending_text() {
        let e = parse_signed_seconds("").unwrap_err();
        assert_eq!(e, DurationError::Empty(String::new()));
        let e = parse_signed_seconds(" , ").unwrap_err();
        assert!(matches!(e, DurationError::Empty(_)));
        let e = parse_signed_seconds("5 fortnights").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown time duration unit \"fortnights\" in \"5 fortnights\""
        );
        let e = parse_signed_seconds("1h 30").unwrap_err();
        assert!(matches!(e, DurationError::MissingUnit { ref number, .. } if number == "30"));
        let e = parse_signed_seconds("hour").unwrap_err();
        assert!(e.to_string().contains("\"hour\""), "{e}");
        let e = parse_signed_seconds("1h/2").unwrap_err();
        assert!(e.to_string().contains("\"/2\""), "{e}");
        let e = parse_signed_seconds("1.2.3h").unwrap_err();
        assert!(matches!(e, DurationError::Unexpected { .. }));
        let e = parse_duration("1h -2h").unwrap_err();
        assert_eq!(e, DurationError::Negative("1h -2h".into()));
        let e = parse_duration("99999999999 years").unwrap_err();
        assert!(matches!(e, DurationError::TooLarge(_)));
    }

    #[test]
    fn format_round_trips() {
        for s in ["1h30m", "2d", "45s", "1d1h1m1s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for (ms, text) in [(500, "0.5s"), (90_250, "1m30.25s"), (3_600_001, "1h0.001s")] {
            let d = Duration::from_millis(ms);
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text).unwrap(), d);
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        const UNITS: &[(&str, f64)] = &[
            ("years", 365.0 * DAY),
            ("y", 365.0 * DAY),
            ("Months", 30.0 * DAY),
            ("M", 30.0 * DAY),
            ("week", 7.0 * DAY),
            ("w", 7.0 * DAY),
            ("DAYS", DAY),
            ("d", DAY),
            ("hour", HOUR),
            ("h", HOUR),
            ("min", MINUTE),
            ("m", MINUTE),
            ("seconds", 1.0),
            ("s", 1.0),
        ];
        const SEPARATORS: &[&str] = &["", " ", ", ", ":", "; ", "  "];

        proptest! {
            /// Any sum of signed terms with any units and separators parses
            /// to the sum of its terms.
            #[test]
            fn sums_of_terms(terms in proptest::collection::vec(
                (any::<bool>(), 0u32..100_000, 0..UNITS.len(), 0..SEPARATORS.len(), any::<bool>()), 1..6)
            ) {
                let mut text = String::new();
                let mut expect = 0.0;
                for (negative, magnitude, unit, sep, space) in terms {
                    let (name, per) = UNITS[unit];
                    let sign = if negative { "-" } else { "" };
                    let gap = if space { " " } else { "" };
                    text.push_str(&format!("{sign}{magnitude}{gap}{name}{}", SEPARATORS[sep]));
                    expect += if negative { -1.0 } else { 1.0 } * f64::from(magnitude) * per;
                }
                prop_assert_eq!(parse_signed_seconds(&text).unwrap(), expect, "{}", text);
            }

            /// Whatever the input, the parser answers (a value or an error
            /// naming the text) and never panics.
            #[test]
            fn never_panics(text in ".{0,40}") {
                if let Err(e) = parse_signed_seconds(&text) {
                    prop_assert!(!e.to_string().is_empty());
                }
            }

            #[test]
            fn format_round_trips(millis in 0u64..10_000_000_000) {
                let d = Duration::from_millis(millis);
                prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
            }
        }
    }
}
