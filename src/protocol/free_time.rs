//! Free time and candidate slots: deterministic arithmetic on UTC intervals, no clock, no I/O.
//!
//! An owner's free time in a window is the window, from `now` on, intersected with their working
//! hours and minus their busy intervals. Candidate slots are laid into free time earliest first,
//! starting on multiples of 15 or 30 minutes (counted in UTC, which is the same as local time in
//! every zone whose offset is a multiple of the step).

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::time::Interval;

/// When an owner takes meetings, in their own time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    /// The owner's IANA time zone.
    pub time_zone: Tz,
    /// Local time the working day starts.
    pub start: NaiveTime,
    /// Local time the working day ends; at or before `start` means it ends on the next day
    /// (`00:00` is midnight, `22:00`-`06:00` a night shift).
    pub end: NaiveTime,
    /// The working days, by the local date the working day starts on.
    pub days: Vec<Weekday>,
}

impl WorkingHours {
    /// Monday to Friday, 09:00 to 17:00 in `time_zone`.
    pub fn office(time_zone: Tz) -> Self {
        WorkingHours {
            time_zone,
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or(NaiveTime::MIN),
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
        }
    }

    /// The working period that starts on local date `day`, if `day` is a working day.
    fn on(&self, day: NaiveDate) -> Option<Interval> {
        if !self.days.contains(&day.weekday()) {
            return None;
        }
        let end_day = if self.end <= self.start {
            day.succ_opt()?
        } else {
            day
        };
        let start = to_utc(self.time_zone, day.and_time(self.start))?;
        let end = to_utc(self.time_zone, end_day.and_time(self.end))?;
        Interval::new(start, end).ok()
    }
}

/// Where candidate slots may start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotStep {
    /// On the hour, :15, :30 and :45.
    #[default]
    QuarterHour,
    /// On the hour and :30.
    HalfHour,
}

impl SlotStep {
    fn seconds(self) -> i64 {
        match self {
            SlotStep::QuarterHour => 15 * 60,
            SlotStep::HalfHour => 30 * 60,
        }
    }
}

/// The owner's free time inside `window`, from `not_before` on: working hours minus `busy`,
/// sorted, with touching or overlapping pieces merged.
pub fn free_time(
    window: &Interval,
    not_before: DateTime<Utc>,
    hours: &WorkingHours,
    busy: &[Interval],
) -> Vec<Interval> {
    let Ok(range) = Interval::new(window.start().max(not_before), window.end()) else {
        return Vec::new();
    };
    let tz = hours.time_zone;
    // A working day that starts the evening before the range may reach into it.
    let mut day = range.start().with_timezone(&tz).date_naive().pred_opt();
    let last = range.end().with_timezone(&tz).date_naive();
    let mut working = Vec::new();
    while let Some(d) = day.filter(|d| *d <= last) {
        working.extend(hours.on(d).and_then(|period| period.intersect(&range)));
        day = d.succ_opt();
    }
    merge(subtract(working, busy))
}

/// Up to `limit` slots of `duration` inside `free`, earliest first, each starting on a multiple
/// of `step`. Slots may overlap each other (09:00-10:00, 09:15-10:15, ...).
pub fn candidate_slots(
    free: &[Interval],
    duration: TimeDelta,
    step: SlotStep,
    limit: usize,
) -> Vec<Interval> {
    let mut slots = Vec::new();
    for period in free {
        let mut start = align_up(period.start(), step);
        while let Some(slot) = start.and_then(|s| Interval::new(s, s + duration).ok()) {
            if slots.len() >= limit || !period.contains(&slot) {
                break;
            }
            slots.push(slot);
            start = Some(slot.start() + TimeDelta::seconds(step.seconds()));
        }
    }
    slots
}

/// Whether `slot` lies entirely inside one piece of `free` (as returned by [`free_time`]).
pub fn fits(slot: &Interval, free: &[Interval]) -> bool {
    free.iter().any(|period| period.contains(slot))
}

/// The first instant at or after `t` that is a whole multiple of `step` since the Unix epoch.
fn align_up(t: DateTime<Utc>, step: SlotStep) -> Option<DateTime<Utc>> {
    let secs = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
    let rem = secs.rem_euclid(step.seconds());
    let aligned = if rem == 0 {
        secs
    } else {
        secs + (step.seconds() - rem)
    };
    DateTime::from_timestamp(aligned, 0)
}

/// A local wall-clock time in UTC: the earlier instant when the clock is turned back, and the
/// first valid quarter hour after it when the time falls into a gap (clocks turned forward).
fn to_utc(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    (0..=8).find_map(|quarter| {
        let shifted = local + TimeDelta::minutes(15 * quarter);
        tz.from_local_datetime(&shifted)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// `free` minus every `busy` interval.
fn subtract(free: Vec<Interval>, busy: &[Interval]) -> Vec<Interval> {
    let mut busy = busy.to_vec();
    busy.sort();
    let mut out = Vec::new();
    for period in free {
        let mut cursor = period.start();
        for b in busy
            .iter()
            .filter(|b| b.end() > period.start() && b.start() < period.end())
        {
            out.extend(Interval::new(cursor, b.start()).ok());
            cursor = cursor.max(b.end());
        }
        out.extend(Interval::new(cursor, period.end()).ok());
    }
    out
}

/// Sorts and joins intervals that overlap or touch.
fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort();
    let mut out: Vec<Interval> = Vec::with_capacity(intervals.len());
    for next in intervals {
        match out.last_mut() {
            Some(last) if next.start() <= last.end() => {
                if let Ok(joined) = Interval::new(last.start(), last.end().max(next.end())) {
                    *last = joined;
                }
            }
            _ => out.push(next),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "free_time_tests.rs"]
mod tests;
