//! Busy intervals: occurrences of every busy event, clipped to the range, merged.

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::event::{End, Timing};
use super::props::When;
use super::recur;
use super::zone::Zone;

/// Most occurrences expanded per recurring event (from its `DTSTART` up to the range's end); a
/// rule with more (a minutely rule running for years) is cut there.
pub(super) const MAX_OCCURRENCES: usize = 100_000;

/// An interval in UTC.
pub(super) type Interval = (DateTime<Utc>, DateTime<Utc>);

/// Busy intervals of `events` (UID, timing) inside `[start, end)`, sorted and merged.
pub(super) fn busy<'a>(
    events: impl Iterator<Item = (Option<&'a str>, &'a Timing)> + Clone,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    tz: Tz,
) -> Vec<Interval> {
    if start >= end {
        return Vec::new();
    }
    // Instances that a RECURRENCE-ID event replaces (moved or cancelled instances).
    let mut replaced: HashMap<&str, Vec<DateTime<Utc>>> = HashMap::new();
    for (uid, timing) in events.clone() {
        if let (Some(uid), Some(id)) = (uid, &timing.recurrence_id)
            && let Some(at) = when_utc(id, tz)
        {
            replaced.entry(uid).or_default().push(at);
        }
    }
    let mut out = Vec::new();
    let mut keep = |interval: Interval| {
        let clipped = (interval.0.max(start), interval.1.min(end));
        if clipped.0 < clipped.1 {
            out.push(clipped);
        }
    };
    for (uid, timing) in events {
        if !timing.busy {
            continue;
        }
        let recurring = !timing.rules.is_empty() || !timing.rdates.is_empty();
        if timing.recurrence_id.is_some() || !recurring {
            if let Some(interval) = interval(timing, timing.local_start(), tz) {
                keep(interval);
            }
            continue;
        }
        let replaced = uid.and_then(|uid| replaced.get(uid));
        for local in occurrences(timing, end, tz) {
            let Some(interval) = interval(timing, local, tz) else {
                continue;
            };
            let is_replaced = replaced.is_some_and(|r| r.contains(&interval.0));
            if !is_replaced && !excluded(timing, local, interval.0, tz) {
                keep(interval);
            }
        }
    }
    merge(out)
}

/// Sorts intervals and merges those that overlap or touch.
pub(super) fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort();
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for (s, e) in intervals {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// The zone `DTSTART` is read in (a DATE uses the caller's zone).
fn start_zone(timing: &Timing) -> Zone {
    match &timing.start {
        When::Date(_) => Zone::Floating,
        When::DateTime(_, zone) => zone.clone(),
    }
}

/// The UTC instant a value stands for (a DATE is midnight in `tz`).
fn when_utc(when: &When, tz: Tz) -> Option<DateTime<Utc>> {
    match when {
        When::Date(date) => Zone::Floating.to_utc(tz, date.and_time(chrono::NaiveTime::MIN)),
        When::DateTime(naive, zone) => zone.to_utc(tz, *naive),
    }
}

/// Wall-clock starts of a recurring event's instances that can reach into `[.., end)`.
fn occurrences(timing: &Timing, end: DateTime<Utc>, tz: Tz) -> Vec<NaiveDateTime> {
    let zone = start_zone(timing);
    let start = timing.local_start();
    // Wall-clock times at least this late start after `end` in any zone (offsets < 26 h).
    let before = end
        .naive_utc()
        .checked_add_days(Days::new(2))
        .unwrap_or(NaiveDateTime::MAX);
    let until_to_local = |utc: NaiveDateTime| zone.to_local(tz, utc);
    let mut all = Vec::new();
    for rule in &timing.rules {
        match recur::expand(start, rule, &until_to_local, before, MAX_OCCURRENCES) {
            Ok(starts) => all.extend(starts),
            Err(problem) => {
                tracing::warn!(rule, problem, "cannot expand RRULE; using DTSTART only");
                all.push(start);
            }
        }
    }
    if timing.rules.is_empty() {
        all.push(start);
    }
    for rdate in &timing.rdates {
        let local = match rdate {
            When::Date(date) => Some(date.and_time(start.time())),
            When::DateTime(..) => {
                when_utc(rdate, tz).and_then(|u| zone.to_local(tz, u.naive_utc()))
            }
        };
        all.extend(local.filter(|l| *l < before));
    }
    all.sort();
    all.dedup();
    all
}

/// The UTC interval of the instance starting at wall-clock `local`; `None` when it is empty.
fn interval(timing: &Timing, local: NaiveDateTime, tz: Tz) -> Option<Interval> {
    let zone = start_zone(timing);
    let start = zone.to_utc(tz, local)?;
    let end = match (&timing.start, &timing.end) {
        (When::Date(first), End::At(When::Date(last))) => {
            let days = (*last - *first).num_days().max(1);
            zone.to_utc(tz, local.checked_add_days(Days::new(days.unsigned_abs()))?)?
        }
        (_, End::At(at)) => {
            start.checked_add_signed(when_utc(at, tz)? - when_utc(&timing.start, tz)?)?
        }
        (_, End::Length(length)) => {
            let local_end = local.checked_add_days(Days::new(length.days.unsigned_abs()))?;
            zone.to_utc(tz, local_end)?
                .checked_add_signed(TimeDelta::try_seconds(length.seconds)?)?
        }
        (When::Date(_), End::Missing) => zone.to_utc(tz, local.checked_add_days(Days::new(1))?)?,
        (When::DateTime(..), End::Missing) => start,
    };
    (start < end).then_some((start, end))
}

/// Whether an `EXDATE` removes the instance starting at wall-clock `local` / UTC `utc`.
fn excluded(timing: &Timing, local: NaiveDateTime, utc: DateTime<Utc>, tz: Tz) -> bool {
    timing.exdates.iter().any(|exdate| match exdate {
        When::Date(date) => local.date() == *date,
        When::DateTime(..) => when_utc(exdate, tz) == Some(utc),
    })
}
