//! Free slots respect working hours, weekends, busy time, the step grid and the cap.

use chrono::{Duration, NaiveTime};
use chrono_tz::Tz;

use super::{GOOGLE, at, iv, parse};
use crate::calendar::{MAX_FREE_SLOTS, free_slots};

fn hours(start: (u32, u32), end: (u32, u32)) -> (NaiveTime, NaiveTime) {
    (
        NaiveTime::from_hms_opt(start.0, start.1, 0).unwrap(),
        NaiveTime::from_hms_opt(end.0, end.1, 0).unwrap(),
    )
}

#[test]
fn working_hours_weekends_busy_and_dst() {
    // Friday 29 March to Monday 1 April 2024 in Berlin; clocks go forward on Sunday the 31st.
    let window = (at("2024-03-29T06:00:00Z"), at("2024-04-02T00:00:00Z"));
    let busy = [iv("2024-03-29T08:00:00Z", "2024-03-29T11:00:00Z")]; // Friday 09:00-12:00 CET
    let nine_to_five = hours((9, 0), (17, 0));
    let slots = free_slots(
        &busy,
        window,
        Duration::hours(1),
        Tz::Europe__Berlin,
        nine_to_five,
        true,
        30,
    );
    let mut expected = Vec::new();
    // Friday 12:00..16:00 CET, every 30 minutes (16:00 + 1 h ends at 17:00 exactly).
    for half_hours in 0..=8 {
        let start = at("2024-03-29T11:00:00Z") + Duration::minutes(30 * half_hours);
        expected.push((start, start + Duration::hours(1)));
    }
    // Monday 09:00..16:00 CEST (07:00..14:00 UTC); the weekend is skipped.
    for half_hours in 0..=14 {
        let start = at("2024-04-01T07:00:00Z") + Duration::minutes(30 * half_hours);
        expected.push((start, start + Duration::hours(1)));
    }
    assert_eq!(slots, expected);

    let with_weekend = free_slots(
        &busy,
        window,
        Duration::hours(1),
        Tz::Europe__Berlin,
        nine_to_five,
        false,
        30,
    );
    assert_eq!(with_weekend.len(), expected.len() + 15 + 15);
    // Sunday starts at 09:00 CEST, already after the change.
    assert!(with_weekend.contains(&iv("2024-03-31T07:00:00Z", "2024-03-31T08:00:00Z")));
    assert!(with_weekend.contains(&iv("2024-03-30T08:00:00Z", "2024-03-30T09:00:00Z")));
    assert!(!with_weekend.contains(&iv("2024-03-31T06:00:00Z", "2024-03-31T07:00:00Z")));
    assert!(
        with_weekend.windows(2).all(|w| w[0].0 < w[1].0),
        "earliest first"
    );
}

#[test]
fn slots_start_on_the_step_grid_inside_the_window() {
    let window = (at("2024-03-25T08:15:00Z"), at("2024-03-25T23:00:00Z")); // 09:15 CET
    let slots = free_slots(
        &[],
        window,
        Duration::minutes(30),
        Tz::Europe__Berlin,
        hours((9, 10), (10, 30)),
        true,
        30,
    );
    // 09:10 rounds up to 09:30; 10:00 + 30 min ends exactly at 10:30.
    assert_eq!(
        slots,
        vec![
            iv("2024-03-25T08:30:00Z", "2024-03-25T09:00:00Z"),
            iv("2024-03-25T09:00:00Z", "2024-03-25T09:30:00Z"),
        ]
    );
}

#[test]
fn busy_edges_touch_but_do_not_overlap() {
    let window = (at("2024-03-25T00:00:00Z"), at("2024-03-26T00:00:00Z"));
    let busy = [
        iv("2024-03-25T10:00:00Z", "2024-03-25T10:30:00Z"),
        iv("2024-03-25T11:10:00Z", "2024-03-25T11:20:00Z"),
    ];
    let slots = free_slots(
        &busy,
        window,
        Duration::minutes(30),
        Tz::UTC,
        hours((9, 30), (12, 0)),
        false,
        30,
    );
    assert_eq!(
        slots,
        vec![
            iv("2024-03-25T09:30:00Z", "2024-03-25T10:00:00Z"),
            iv("2024-03-25T10:30:00Z", "2024-03-25T11:00:00Z"),
            iv("2024-03-25T11:30:00Z", "2024-03-25T12:00:00Z"),
        ]
    );
}

#[test]
fn slots_around_a_real_calendar() {
    let calendar = parse(GOOGLE);
    let window = (at("2024-03-25T00:00:00Z"), at("2024-03-30T00:00:00Z"));
    let busy = calendar.busy(window.0, window.1, Tz::Europe__Berlin);
    let slots = free_slots(
        &busy,
        window,
        Duration::hours(2),
        Tz::Europe__Berlin,
        hours((9, 0), (12, 0)),
        true,
        60,
    );
    // Monday has the 09:00 standup; Wednesday and Thursday the offsite; Friday the (transparent)
    // holiday does not block.
    assert_eq!(
        slots,
        vec![
            iv("2024-03-25T09:00:00Z", "2024-03-25T11:00:00Z"),
            iv("2024-03-26T08:00:00Z", "2024-03-26T10:00:00Z"),
            iv("2024-03-26T09:00:00Z", "2024-03-26T11:00:00Z"),
            iv("2024-03-29T08:00:00Z", "2024-03-29T10:00:00Z"),
            iv("2024-03-29T09:00:00Z", "2024-03-29T11:00:00Z"),
        ]
    );
}

#[test]
fn at_most_200_and_nothing_for_degenerate_input() {
    let year = (at("2024-01-01T00:00:00Z"), at("2025-01-01T00:00:00Z"));
    let all_day = hours((0, 0), (23, 59));
    let slots = free_slots(
        &[],
        year,
        Duration::minutes(15),
        Tz::UTC,
        all_day,
        false,
        15,
    );
    assert_eq!(slots.len(), MAX_FREE_SLOTS);
    assert_eq!(slots[0], iv("2024-01-01T00:00:00Z", "2024-01-01T00:15:00Z"));
    // 95 slots a day (00:00..23:30; 23:45 would end after 23:59)
    assert_eq!(
        slots[199],
        iv("2024-01-03T02:15:00Z", "2024-01-03T02:30:00Z")
    );

    let nine_to_five = hours((9, 0), (17, 0));
    assert!(
        free_slots(
            &[],
            year,
            Duration::zero(),
            Tz::UTC,
            nine_to_five,
            false,
            30
        )
        .is_empty()
    );
    assert!(
        free_slots(
            &[],
            (year.1, year.0),
            Duration::hours(1),
            Tz::UTC,
            nine_to_five,
            false,
            30
        )
        .is_empty()
    );
    assert!(
        free_slots(
            &[],
            year,
            Duration::hours(1),
            Tz::UTC,
            hours((17, 0), (9, 0)),
            false,
            30
        )
        .is_empty()
    );
    assert!(
        free_slots(
            &[],
            year,
            Duration::hours(9),
            Tz::UTC,
            nine_to_five,
            false,
            30
        )
        .is_empty()
    );
    // Fully busy: nothing, and it finishes.
    let busy = [year];
    assert!(
        free_slots(
            &busy,
            year,
            Duration::minutes(5),
            Tz::UTC,
            nine_to_five,
            false,
            0
        )
        .is_empty()
    );
}
