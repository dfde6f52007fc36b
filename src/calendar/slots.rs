//! Free slots for scheduling: candidate starts on a step grid inside working hours that do not
//! overlap busy time.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

use super::busy::{Interval, merge};
use super::zone::Zone;

/// Most slots [`free_slots`] returns.
pub const MAX_FREE_SLOTS: usize = 200;
/// Most days of a window [`free_slots`] looks at.
const MAX_DAYS: usize = 3660;

/// Free slots of exactly `duration` inside `window`, earliest first, at most
/// [`MAX_FREE_SLOTS`].
///
/// A slot starts on a multiple of `step_minutes` after local midnight in `tz` (a step of 0
/// counts as 1), lies inside `working_hours` (start inclusive, end inclusive for the slot's
/// end) of one local day, skips Saturdays and Sundays when `weekdays_only`, and overlaps no
/// interval of `busy` (which need not be sorted or merged). Local times that do not exist
/// (skipped when clocks go forward) are not offered; a time that occurs twice is its first
/// occurrence. Working hours whose end is not after their start, a non-positive duration or an
/// empty window give no slots. At most 3660 days of the window are looked at.
pub fn free_slots(
    busy: &[(DateTime<Utc>, DateTime<Utc>)],
    window: (DateTime<Utc>, DateTime<Utc>),
    duration: Duration,
    tz: Tz,
    working_hours: (NaiveTime, NaiveTime),
    weekdays_only: bool,
    step_minutes: u32,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut slots = Vec::new();
    if duration <= TimeDelta::zero() || window.0 >= window.1 || working_hours.0 >= working_hours.1 {
        return slots;
    }
    let busy = merge(busy.iter().copied().filter(|(s, e)| s < e).collect());
    let search = Search {
        busy: &busy,
        window,
        duration,
        tz,
        working_hours,
        step: i64::from(step_minutes.max(1)) * 60,
    };
    let first_day = window.0.with_timezone(&tz).date_naive();
    let last_day = window.1.with_timezone(&tz).date_naive();
    for day in first_day
        .iter_days()
        .take_while(|d| *d <= last_day)
        .take(MAX_DAYS)
    {
        if weekdays_only && matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            continue;
        }
        if search.fill_day(day, &mut slots).is_none() {
            break;
        }
    }
    slots
}

/// The fixed inputs of one [`free_slots`] call.
struct Search<'a> {
    busy: &'a [Interval],
    window: (DateTime<Utc>, DateTime<Utc>),
    duration: Duration,
    tz: Tz,
    working_hours: (NaiveTime, NaiveTime),
    /// Step in seconds.
    step: i64,
}

impl Search<'_> {
    /// Adds the free slots of one local day to `out`; `None` when the search is over (the
    /// window ended, `out` is full, or a time fell outside chrono's range).
    fn fill_day(&self, day: NaiveDate, out: &mut Vec<Interval>) -> Option<()> {
        let zone = Zone::Iana(self.tz);
        let midnight = day.and_time(NaiveTime::MIN);
        let day_end = day.and_time(self.working_hours.1);
        let work_end = zone.to_utc(self.tz, day_end)?;
        let first_second = i64::from(self.working_hours.0.num_seconds_from_midnight());
        let mut offset = (first_second + self.step - 1) / self.step * self.step;
        loop {
            let local = midnight.checked_add_signed(TimeDelta::try_seconds(offset)?)?;
            offset += self.step;
            if local >= day_end {
                return Some(());
            }
            let start = zone.to_utc(self.tz, local)?;
            if zone.to_local(self.tz, start.naive_utc()) != Some(local) {
                continue; // does not exist on this day (clocks went forward)
            }
            let end = start.checked_add_signed(self.duration)?;
            if end > work_end {
                return Some(());
            }
            if end > self.window.1 {
                return None;
            }
            if start < self.window.0 || self.overlaps_busy(start, end) {
                continue;
            }
            out.push((start, end));
            if out.len() >= MAX_FREE_SLOTS {
                return None;
            }
        }
    }

    fn overlaps_busy(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        let next = self
            .busy
            .partition_point(|(_, busy_end)| *busy_end <= start);
        self.busy
            .get(next)
            .is_some_and(|(busy_start, _)| *busy_start < end)
    }
}
