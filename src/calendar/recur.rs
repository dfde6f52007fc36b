//! `RRULE` expansion with the `rrule` crate.
//!
//! Recurrences are expanded in wall-clock time: the rule runs on the naive local `DTSTART`
//! (handed to `rrule` as if it were UTC), and the caller converts each occurrence with the
//! event's own zone afterwards. That keeps a weekly 09:00 meeting at 09:00 local time across a
//! DST change, works the same for IANA zones and zones defined by a `VTIMEZONE` block, and
//! lets floating times use the caller's zone. `UNTIL` is rewritten into the same wall-clock
//! frame first (a UTC `UNTIL` is converted with the event's zone, a DATE `UNTIL` covers that
//! whole day), and `X-` rule parts are dropped.

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use rrule::{RRule, Unvalidated};

/// Occurrence starts (wall-clock) of `DTSTART` = `start` with rule `rule` (an `RRULE` value),
/// in order, `start` first (RFC 5545 counts `DTSTART` as the first instance), all before
/// `before`, at most `max`.
///
/// `until_to_local` converts a UTC `UNTIL` into the event's wall-clock time. An `UNTIL`
/// before `DTSTART` leaves just `DTSTART`.
pub(super) fn expand(
    start: NaiveDateTime,
    rule: &str,
    until_to_local: &dyn Fn(NaiveDateTime) -> Option<NaiveDateTime>,
    before: NaiveDateTime,
    max: usize,
) -> Result<Vec<NaiveDateTime>, String> {
    let mut parts = Vec::new();
    let mut until = None;
    for part in rule.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("rule part {part:?} is not KEY=VALUE"))?;
        let key = key.trim().to_ascii_uppercase();
        if key == "UNTIL" {
            until = Some(parse_until(value.trim(), until_to_local)?);
        } else if !key.starts_with("X-") {
            parts.push(format!("{key}={}", value.trim().to_ascii_uppercase()));
        }
    }
    let first: Vec<NaiveDateTime> = [start]
        .into_iter()
        .filter(|s| *s < before)
        .take(max)
        .collect();
    if let Some(until) = until {
        if until < start {
            return Ok(first);
        }
        parts.push(format!("UNTIL={}Z", until.format("%Y%m%dT%H%M%S")));
    }
    let text = parts.join(";");
    // `rrule` is third-party code fed with the owner's file: a panic inside it must not take
    // the caller down, so it becomes an error like any other bad rule.
    let run = || -> Result<Vec<NaiveDateTime>, String> {
        let rule: RRule<Unvalidated> =
            text.parse().map_err(|e: rrule::RRuleError| e.to_string())?;
        let set = rule
            .build(rrule::Tz::UTC.from_utc_datetime(&start))
            .map_err(|e| e.to_string())?
            .limit();
        let mut out = first;
        for occurrence in &set {
            if out.len() >= max {
                break;
            }
            let occurrence = occurrence.naive_utc();
            if occurrence >= before {
                break;
            }
            if occurrence != start {
                out.push(occurrence);
            }
        }
        Ok(out)
    };
    catch_unwind(AssertUnwindSafe(run))
        .unwrap_or_else(|_| Err("the recurrence rule could not be expanded".to_owned()))
}

/// Checks that `rule` parses and is valid for `DTSTART` = `start`, without expanding it.
pub(super) fn check(start: NaiveDateTime, rule: &str) -> Result<(), String> {
    expand(start, rule, &Some, start, 0).map(|_| ())
}

fn parse_until(
    value: &str,
    until_to_local: &dyn Fn(NaiveDateTime) -> Option<NaiveDateTime>,
) -> Result<NaiveDateTime, String> {
    let invalid = || format!("UNTIL value {value:?} is not a DATE or DATE-TIME");
    if value.len() == 8 {
        let date = NaiveDate::parse_from_str(value, "%Y%m%d").map_err(|_| invalid())?;
        let last_second = NaiveTime::from_hms_opt(23, 59, 59).ok_or_else(invalid)?;
        return Ok(date.and_time(last_second));
    }
    match value.strip_suffix(['Z', 'z']) {
        Some(utc) => {
            let utc = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").map_err(|_| invalid())?;
            until_to_local(utc).ok_or_else(invalid)
        }
        None => NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S").map_err(|_| invalid()),
    }
}
