//! Busy time from the fixtures: recurrences across DST changes, time zones, all-day events,
//! exclusions, moved and cancelled instances.

use chrono_tz::Tz;

use super::{APPLE, GOOGLE, OUTLOOK, at, iv, parse};

#[test]
fn google_weekly_standup_follows_berlin_across_the_dst_change() {
    let busy = parse(GOOGLE).busy(
        at("2024-03-11T00:00:00Z"),
        at("2024-05-01T00:00:00Z"),
        Tz::Europe__Berlin,
    );
    assert_eq!(
        busy,
        vec![
            // 09:00 CET is 08:00 UTC until the change on 31 March ...
            iv("2024-03-11T08:00:00Z", "2024-03-11T08:30:00Z"),
            iv("2024-03-18T08:00:00Z", "2024-03-18T08:30:00Z"),
            iv("2024-03-25T08:00:00Z", "2024-03-25T08:30:00Z"),
            // the all-day offsite, 27 and 28 March in Berlin; the holiday after it is
            // transparent and the cancelled lunch on 20 March is left out
            iv("2024-03-26T23:00:00Z", "2024-03-28T23:00:00Z"),
            // 1 April is an EXDATE
            iv("2024-04-02T12:00:00Z", "2024-04-02T13:00:00Z"),
            // ... and 07:00 UTC after it
            iv("2024-04-08T07:00:00Z", "2024-04-08T07:30:00Z"),
            // 15 April was moved to 10:00 CEST by a RECURRENCE-ID instance
            iv("2024-04-15T08:00:00Z", "2024-04-15T08:30:00Z"),
            iv("2024-04-22T07:00:00Z", "2024-04-22T07:30:00Z"),
            // UNTIL=20240429T215959Z still includes the 29th
            iv("2024-04-29T07:00:00Z", "2024-04-29T07:30:00Z"),
        ]
    );
}

#[test]
fn apple_series_count_cancelled_instance_floating_and_duration() {
    let busy = parse(APPLE).busy(
        at("2024-03-04T00:00:00Z"),
        at("2024-03-16T00:00:00Z"),
        Tz::America__New_York,
    );
    assert_eq!(
        busy,
        vec![
            // Yoga 18:00-19:00 New York: EST (-5) before 10 March ...
            iv("2024-03-05T23:00:00Z", "2024-03-06T00:00:00Z"),
            iv("2024-03-07T23:00:00Z", "2024-03-08T00:00:00Z"),
            // the floating farmers market is read in the caller's zone (EST)
            iv("2024-03-09T15:00:00Z", "2024-03-09T16:30:00Z"),
            // DURATION:PT45M at 15:00 EDT
            iv("2024-03-11T19:00:00Z", "2024-03-11T19:45:00Z"),
            // ... EDT (-4) after; 12 March is cancelled by its RECURRENCE-ID instance and
            // COUNT=4 ends the series on the 14th
            iv("2024-03-14T22:00:00Z", "2024-03-14T23:00:00Z"),
        ]
    );
}

#[test]
fn floating_times_follow_the_zone_asked_for() {
    let calendar = parse(APPLE);
    let range = (at("2024-03-09T00:00:00Z"), at("2024-03-10T00:00:00Z"));
    assert_eq!(
        calendar.busy(range.0, range.1, Tz::Europe__Paris),
        vec![iv("2024-03-09T09:00:00Z", "2024-03-09T10:30:00Z")]
    );
}

#[test]
fn outlook_zones_from_vtimezone_blocks() {
    let busy = parse(OUTLOOK).busy(
        at("2024-03-25T00:00:00Z"),
        at("2024-04-15T00:00:00Z"),
        Tz::Europe__Berlin,
    );
    assert_eq!(
        busy,
        vec![
            // "W. Europe Standard Time" is no IANA name: its VTIMEZONE (rules from 1601) is used
            iv("2024-03-26T09:00:00Z", "2024-03-26T10:00:00Z"),
            // "Customized Time Zone", +05:30
            iv("2024-03-27T09:00:00Z", "2024-03-27T10:00:00Z"),
            // all-day out of office in Berlin
            iv("2024-03-27T23:00:00Z", "2024-03-28T23:00:00Z"),
            iv("2024-04-02T08:00:00Z", "2024-04-02T09:00:00Z"),
            iv("2024-04-09T08:00:00Z", "2024-04-09T09:00:00Z"),
            // the transparent focus time on 4 April is free
        ]
    );
}

#[test]
fn all_day_events_are_whole_days_in_the_zone_asked_for() {
    let calendar = parse(OUTLOOK);
    let busy = calendar.busy(
        at("2024-03-28T00:00:00Z"),
        at("2024-03-29T12:00:00Z"),
        Tz::Asia__Tokyo,
    );
    assert_eq!(
        busy,
        vec![iv("2024-03-28T00:00:00Z", "2024-03-28T15:00:00Z")]
    );
}

#[test]
fn intervals_are_clipped_to_the_range_and_merged() {
    let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n\
        BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20240301T090000Z\r\nDTEND:20240301T110000Z\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20240301T110000Z\r\nDTEND:20240301T120000Z\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:c\r\nDTSTART:20240301T113000Z\r\nDURATION:PT2H\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:d\r\nDTSTART:20240301T150000Z\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:e\r\nSUMMARY:no start\r\nEND:VEVENT\r\n\
        END:VCALENDAR\r\n";
    let calendar = parse(text);
    assert_eq!(
        calendar.busy(
            at("2024-03-01T10:00:00Z"),
            at("2024-03-01T16:00:00Z"),
            Tz::UTC
        ),
        // a, b and c merge; d has no end and takes no time
        vec![iv("2024-03-01T10:00:00Z", "2024-03-01T13:30:00Z")]
    );
    assert!(
        calendar
            .busy(
                at("2024-03-01T16:00:00Z"),
                at("2024-03-01T10:00:00Z"),
                Tz::UTC
            )
            .is_empty()
    );
}

#[test]
fn yearly_all_day_series_from_years_ago_reaches_the_range() {
    let text = APPLE.replace("TRANSP:TRANSPARENT", "TRANSP:OPAQUE");
    let busy = parse(&text).busy(
        at("2031-03-01T00:00:00Z"),
        at("2031-03-31T00:00:00Z"),
        Tz::UTC,
    );
    assert_eq!(
        busy,
        vec![iv("2031-03-08T00:00:00Z", "2031-03-09T00:00:00Z")]
    );
}

#[test]
fn a_time_skipped_by_dst_uses_the_offset_before_the_gap() {
    let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:gap\r\n\
        DTSTART;TZID=Europe/Berlin:20240331T023000\r\nDURATION:PT30M\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let busy = parse(text).busy(
        at("2024-03-30T00:00:00Z"),
        at("2024-04-01T00:00:00Z"),
        Tz::UTC,
    );
    // 02:30 does not exist that night; read at +01:00 it is 01:30 UTC (03:30 CEST)
    assert_eq!(
        busy,
        vec![iv("2024-03-31T01:30:00Z", "2024-03-31T02:00:00Z")]
    );
}

#[test]
fn daily_rule_with_interval_byday_rdate_and_date_exdate() {
    let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:r\r\n\
        DTSTART:20240304T140000Z\r\nDTEND:20240304T150000Z\r\n\
        RRULE:FREQ=DAILY;INTERVAL=2;BYDAY=MO,WE,FR;UNTIL=20240315\r\n\
        EXDATE;VALUE=DATE:20240308\r\n\
        RDATE:20240316T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let busy = parse(text).busy(
        at("2024-03-01T00:00:00Z"),
        at("2024-04-01T00:00:00Z"),
        Tz::UTC,
    );
    // every other day from Monday 4 March: 4 (Mo), 6 (We), 8 (Fr, excluded), 10, 12, 14 are not
    // Mo/We/Fr; UNTIL ends it; the RDATE adds an instance of the same length
    assert_eq!(
        busy,
        vec![
            iv("2024-03-04T14:00:00Z", "2024-03-04T15:00:00Z"),
            iv("2024-03-06T14:00:00Z", "2024-03-06T15:00:00Z"),
            iv("2024-03-16T10:00:00Z", "2024-03-16T11:00:00Z"),
        ]
    );
}

#[test]
fn dtstart_off_the_rule_is_an_extra_instance() {
    // Wednesday 6 March, weekly on Mondays, two times.
    let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:w\r\n\
        DTSTART:20240306T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2\r\n\
        END:VEVENT\r\nEND:VCALENDAR\r\n";
    let busy = parse(text).busy(
        at("2024-03-01T00:00:00Z"),
        at("2024-04-01T00:00:00Z"),
        Tz::UTC,
    );
    assert_eq!(
        busy,
        vec![
            iv("2024-03-06T10:00:00Z", "2024-03-06T11:00:00Z"),
            iv("2024-03-11T10:00:00Z", "2024-03-11T11:00:00Z"),
            iv("2024-03-18T10:00:00Z", "2024-03-18T11:00:00Z"),
        ]
    );
}

#[test]
fn unknown_tzid_is_read_as_floating() {
    let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:u\r\n\
        DTSTART;TZID=Mars/Olympus_Mons:20240306T100000\r\nDURATION:PT1H\r\n\
        END:VEVENT\r\nEND:VCALENDAR\r\n";
    let busy = parse(text).busy(
        at("2024-03-01T00:00:00Z"),
        at("2024-04-01T00:00:00Z"),
        Tz::Asia__Tokyo,
    );
    assert_eq!(
        busy,
        vec![iv("2024-03-06T01:00:00Z", "2024-03-06T02:00:00Z")]
    );
}
