//! Property values. A content line is parsed by the `icalendar` crate's parser (parameters,
//! quoted parameter values, TEXT unescaping); the DATE, DATE-TIME, DURATION and UTC-OFFSET
//! values the free/busy computation needs are read here.

use chrono::{NaiveDate, NaiveDateTime};
use icalendar::Property;

use super::scan::{Line, ScanError};
use super::zone::{Zone, Zones};

/// A DATE or DATE-TIME value.
#[derive(Debug, Clone)]
pub(super) enum When {
    /// A DATE (all-day), always read in the caller's time zone.
    Date(NaiveDate),
    /// A DATE-TIME: wall-clock time in a zone (UTC for a trailing `Z`).
    DateTime(NaiveDateTime, Zone),
}

/// A DURATION: nominal days (weeks count 7) plus exact seconds, as RFC 5545 3.3.6 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Length {
    /// Whole days, added in wall-clock time (a day across a DST change is 23 or 25 hours).
    pub(super) days: i64,
    /// Seconds, added as exact time.
    pub(super) seconds: i64,
}

impl Length {
    /// Whether the duration is negative.
    pub(super) fn is_negative(self) -> bool {
        self.days < 0 || self.seconds < 0
    }
}

/// Parses a content line into a property.
pub(super) fn property(line: &Line) -> Result<Property, ScanError> {
    icalendar::parser::Property::try_from(line.text.as_str())
        .map(Property::from)
        .map_err(|e| bad(line, format!("cannot parse {}: {e}", line.name)))
}

/// A [`ScanError`] for `line`.
pub(super) fn bad(line: &Line, problem: impl Into<String>) -> ScanError {
    ScanError {
        line: line.number,
        problem: problem.into(),
    }
}

/// A parameter's value, the name compared case-insensitively.
pub(super) fn param<'p>(prop: &'p Property, name: &str) -> Option<&'p str> {
    prop.params()
        .values()
        .find(|p| p.key().eq_ignore_ascii_case(name))
        .map(|p| p.value())
}

/// The single DATE or DATE-TIME value of a `DTSTART`-like line.
pub(super) fn when(line: &Line, zones: &Zones) -> Result<When, ScanError> {
    let mut list = when_list(line, zones)?;
    match (list.pop(), list.is_empty()) {
        (Some(value), true) => Ok(value),
        _ => Err(bad(
            line,
            format!("{} must have exactly one value", line.name),
        )),
    }
}

/// The comma-separated DATE, DATE-TIME (or PERIOD, whose start is taken) values of an
/// `EXDATE`/`RDATE` line.
pub(super) fn when_list(line: &Line, zones: &Zones) -> Result<Vec<When>, ScanError> {
    let prop = property(line)?;
    let value_type = param(&prop, "VALUE").map(str::to_ascii_uppercase);
    let date_only = value_type.as_deref() == Some("DATE");
    let zone = match param(&prop, "TZID") {
        Some(tzid) => zones.resolve(tzid),
        None => Zone::Floating,
    };
    prop.value()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|value| {
            let start = value.split('/').next().unwrap_or(value);
            parse_when(start, date_only, &zone).ok_or_else(|| {
                bad(
                    line,
                    format!("{} value {value:?} is not a DATE or DATE-TIME", line.name),
                )
            })
        })
        .collect()
}

fn parse_when(value: &str, date_only: bool, zone: &Zone) -> Option<When> {
    if date_only || (value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit())) {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .ok()
            .map(When::Date);
    }
    let (naive, zone) = match value.strip_suffix(['Z', 'z']) {
        Some(utc) => (utc, Zone::Utc),
        None => (value, zone.clone()),
    };
    let naive = NaiveDateTime::parse_from_str(naive, "%Y%m%dT%H%M%S").ok()?;
    Some(When::DateTime(naive, zone))
}

/// Parses an RFC 5545 DURATION (`P1W`, `P1DT2H`, `-PT15M`).
pub(super) fn duration(value: &str) -> Option<Length> {
    let value = value.trim();
    let (negative, rest) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let (mut days, mut seconds, mut in_time, mut any) = (0i64, 0i64, false, false);
    let mut number = String::new();
    for c in rest.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        if c.eq_ignore_ascii_case(&'T') {
            if !number.is_empty() || in_time {
                return None;
            }
            in_time = true;
            continue;
        }
        let n: i64 = number.parse().ok()?;
        number.clear();
        any = true;
        match (c.to_ascii_uppercase(), in_time) {
            ('W', false) => days = days.checked_add(n.checked_mul(7)?)?,
            ('D', false) => days = days.checked_add(n)?,
            ('H', true) => seconds = seconds.checked_add(n.checked_mul(3600)?)?,
            ('M', true) => seconds = seconds.checked_add(n.checked_mul(60)?)?,
            ('S', true) => seconds = seconds.checked_add(n)?,
            _ => return None,
        }
    }
    if !number.is_empty() || !any {
        return None;
    }
    Some(if negative {
        Length {
            days: -days,
            seconds: -seconds,
        }
    } else {
        Length { days, seconds }
    })
}

/// Parses a UTC-OFFSET (`+0100`, `-0430`, `+053000`) into seconds east of UTC.
pub(super) fn utc_offset(value: &str) -> Option<i32> {
    let value = value.trim();
    let (sign, digits) = match value.as_bytes().first() {
        Some(b'+') => (1, &value[1..]),
        Some(b'-') => (-1, &value[1..]),
        _ => return None,
    };
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| digits.get(range)?.parse::<i32>().ok();
    let hours = field(0..2)?;
    let minutes = field(2..4)?;
    let seconds = if digits.len() == 6 { field(4..6)? } else { 0 };
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60 + seconds))
}
