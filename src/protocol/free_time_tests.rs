use chrono_tz::{Asia::Kathmandu, Europe::Berlin, UTC};

use super::*;
use crate::protocol::time::tests::{iv, utc};

fn week() -> Interval {
    // Monday 4 May 2026 to Saturday 9 May 2026, UTC.
    iv("2026-05-04T00:00:00Z", "2026-05-09T00:00:00Z")
}

fn long_ago() -> DateTime<Utc> {
    utc("2026-01-01T00:00:00Z")
}

#[test]
fn office_hours_follow_the_owners_time_zone() {
    let free = free_time(&week(), long_ago(), &WorkingHours::office(Berlin), &[]);
    // Berlin is UTC+2 in May: 09:00-17:00 local is 07:00-15:00 UTC, five weekdays.
    assert_eq!(free.len(), 5);
    assert_eq!(free[0], iv("2026-05-04T07:00:00Z", "2026-05-04T15:00:00Z"));
    assert_eq!(free[4], iv("2026-05-08T07:00:00Z", "2026-05-08T15:00:00Z"));
}

#[test]
fn weekends_and_the_past_are_not_free() {
    let weekend = iv("2026-05-09T00:00:00Z", "2026-05-11T00:00:00Z");
    assert!(free_time(&weekend, long_ago(), &WorkingHours::office(UTC), &[]).is_empty());
    let now = utc("2026-05-08T16:10:00Z");
    let free = free_time(&week(), now, &WorkingHours::office(UTC), &[]);
    assert_eq!(
        free,
        vec![Interval::new(now, utc("2026-05-08T17:00:00Z")).unwrap()]
    );
}

#[test]
fn busy_time_is_cut_out() {
    let monday = iv("2026-05-04T00:00:00Z", "2026-05-05T00:00:00Z");
    let busy = [
        iv("2026-05-04T11:00:00Z", "2026-05-04T12:00:00Z"),
        iv("2026-05-04T08:00:00Z", "2026-05-04T10:00:00Z"),
        iv("2026-05-04T09:30:00Z", "2026-05-04T10:30:00Z"),
        iv("2026-05-04T16:30:00Z", "2026-05-04T20:00:00Z"),
    ];
    let free = free_time(&monday, long_ago(), &WorkingHours::office(UTC), &busy);
    assert_eq!(
        free,
        vec![
            iv("2026-05-04T10:30:00Z", "2026-05-04T11:00:00Z"),
            iv("2026-05-04T12:00:00Z", "2026-05-04T16:30:00Z"),
        ]
    );
}

#[test]
fn working_hours_ending_at_or_before_their_start_run_into_the_next_day() {
    let night = WorkingHours {
        end: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
        start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
        ..WorkingHours::office(UTC)
    };
    // Sunday night belongs to no working day; Monday's shift runs into Tuesday morning.
    let free = free_time(
        &iv("2026-05-04T00:00:00Z", "2026-05-05T12:00:00Z"),
        long_ago(),
        &night,
        &[],
    );
    assert_eq!(
        free,
        vec![iv("2026-05-04T22:00:00Z", "2026-05-05T06:00:00Z")]
    );
    let always = WorkingHours {
        end: NaiveTime::MIN,
        start: NaiveTime::MIN,
        ..WorkingHours::office(UTC)
    };
    let free = free_time(&week(), long_ago(), &always, &[]);
    assert_eq!(free, vec![week()], "touching days merge into one piece");
}

#[test]
fn candidates_are_aligned_earliest_first_and_capped() {
    let free = [
        iv("2026-05-04T09:05:00Z", "2026-05-04T10:00:00Z"),
        iv("2026-05-04T13:00:00Z", "2026-05-04T17:00:00Z"),
    ];
    let slots = candidate_slots(&free, TimeDelta::minutes(30), SlotStep::QuarterHour, 4);
    assert_eq!(
        slots,
        vec![
            iv("2026-05-04T09:15:00Z", "2026-05-04T09:45:00Z"),
            iv("2026-05-04T09:30:00Z", "2026-05-04T10:00:00Z"),
            iv("2026-05-04T13:00:00Z", "2026-05-04T13:30:00Z"),
            iv("2026-05-04T13:15:00Z", "2026-05-04T13:45:00Z"),
        ]
    );
    let half = candidate_slots(&free, TimeDelta::minutes(30), SlotStep::HalfHour, 2);
    assert_eq!(half[0], iv("2026-05-04T09:30:00Z", "2026-05-04T10:00:00Z"));
    assert!(slots.iter().all(|s| fits(s, &free)));
}

#[test]
fn a_start_with_fractional_seconds_is_rounded_up() {
    let now = utc("2026-05-04T09:00:00Z") + TimeDelta::milliseconds(1);
    let free = [Interval::new(now, utc("2026-05-04T10:00:00Z")).unwrap()];
    let slots = candidate_slots(&free, TimeDelta::minutes(30), SlotStep::QuarterHour, 1);
    assert_eq!(
        slots,
        vec![iv("2026-05-04T09:15:00Z", "2026-05-04T09:45:00Z")]
    );
}

#[test]
fn odd_offsets_and_dst_gaps_are_handled() {
    // Kathmandu is UTC+5:45: 09:00 local is 03:15 UTC, still on a quarter hour.
    let monday = iv("2026-05-04T00:00:00Z", "2026-05-05T00:00:00Z");
    let free = free_time(&monday, long_ago(), &WorkingHours::office(Kathmandu), &[]);
    assert_eq!(
        free,
        vec![iv("2026-05-04T03:15:00Z", "2026-05-04T11:15:00Z")]
    );
    // Berlin springs forward at 02:00 on Sunday 29 March 2026: a 02:30 start becomes 03:00 CEST.
    let gap = WorkingHours {
        start: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
        end: NaiveTime::from_hms_opt(4, 0, 0).unwrap(),
        days: vec![Weekday::Sun],
        time_zone: Berlin,
    };
    let sunday = iv("2026-03-29T00:00:00Z", "2026-03-30T00:00:00Z");
    let free = free_time(&sunday, long_ago(), &gap, &[]);
    assert_eq!(
        free,
        vec![iv("2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z")]
    );
}
