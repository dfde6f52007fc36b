//! Adding, replacing and removing events keeps everything else as it was.

use chrono_tz::Tz;

use super::{GOOGLE, OUTLOOK, at, iv, parse};
use crate::calendar::NewEvent;

const STANDUP: &str = "3f9k2m7q1v8c0b5n6x4z@google.com";

fn lunch(uid: &str) -> NewEvent {
    NewEvent {
        uid: uid.to_owned(),
        title: "Lunch with Bob".to_owned(),
        start: at("2024-03-20T11:00:00Z"),
        end: at("2024-03-20T12:00:00Z"),
        description: Some("Talk about the roadmap, budget; and hiring\nSecond line".to_owned()),
        attendees: vec![
            "@bob:example.org".to_owned(),
            "carol@example.com".to_owned(),
            "mailto:dan@example.com".to_owned(),
            "matrix:u/erin:example.net".to_owned(),
            "not an address".to_owned(),
        ],
        negotiation: None,
    }
}

/// The unfolded content lines of `text`.
fn unfolded(text: &str) -> Vec<String> {
    text.replace("\r\n ", "")
        .split("\r\n")
        .map(str::to_owned)
        .collect()
}

#[test]
fn upsert_adds_an_event_after_the_existing_ones_keeping_them_untouched() {
    let mut calendar = parse(GOOGLE);
    assert!(!calendar.has_event("twin-1"));
    calendar.upsert_event(&lunch("twin-1"));
    assert!(calendar.has_event("twin-1"));
    let ics = calendar.to_ics();
    let before = GOOGLE.strip_suffix("END:VCALENDAR\r\n").unwrap();
    assert!(
        ics.starts_with(before),
        "the export must be kept byte for byte"
    );
    let added = &ics[before.len()..];
    let lines = unfolded(added);
    assert_eq!(lines[0], "BEGIN:VEVENT");
    for expected in [
        "UID:twin-1",
        "DTSTART:20240320T110000Z",
        "DTEND:20240320T120000Z",
        "SUMMARY:Lunch with Bob",
        "DESCRIPTION:Talk about the roadmap\\, budget\\; and hiring\\nSecond line",
        "ATTENDEE:matrix:u/bob:example.org",
        "ATTENDEE:mailto:carol@example.com",
        "ATTENDEE:mailto:dan@example.com",
        "ATTENDEE:matrix:u/erin:example.net",
        "STATUS:CONFIRMED",
        "END:VEVENT",
        "END:VCALENDAR",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing {expected:?} in {added}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("DTSTAMP:") && l.ends_with('Z'))
    );
    assert!(!added.contains("not an address"));
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("ATTENDEE")).count(),
        4
    );
    assert!(
        added.split("\r\n").all(|l| l.len() <= 75),
        "long lines are folded: {added}"
    );

    // What was written reads back the same, with the new event busy.
    let again = parse(&ics);
    assert_eq!(again.to_ics(), ics);
    let busy = again.busy(
        at("2024-03-20T00:00:00Z"),
        at("2024-03-21T00:00:00Z"),
        Tz::UTC,
    );
    assert_eq!(
        busy,
        vec![iv("2024-03-20T11:00:00Z", "2024-03-20T12:00:00Z")]
    );
}

#[test]
fn upsert_replaces_by_uid_in_place_with_its_moved_instances() {
    let mut calendar = parse(GOOGLE);
    calendar.upsert_event(&NewEvent {
        uid: STANDUP.to_owned(),
        title: "Standup, once".to_owned(),
        start: at("2024-04-16T07:00:00Z"),
        end: at("2024-04-16T07:15:00Z"),
        description: None,
        attendees: vec![],
        negotiation: None,
    });
    let ics = calendar.to_ics();
    assert_eq!(ics.matches(&format!("UID:{STANDUP}")).count(), 1);
    assert!(
        !ics.contains("RECURRENCE-ID"),
        "the moved instance goes with its series"
    );
    assert!(!ics.contains("DESCRIPTION:Weekly team standup"));
    assert!(
        ics.find("SUMMARY:Standup\\, once") < ics.find("UID:0offsite2024q1@google.com"),
        "the replacement takes the place of the series"
    );
    let busy = parse(&ics).busy(
        at("2024-04-08T00:00:00Z"),
        at("2024-04-23T00:00:00Z"),
        Tz::UTC,
    );
    assert_eq!(
        busy,
        vec![iv("2024-04-16T07:00:00Z", "2024-04-16T07:15:00Z")]
    );

    // Upserting the twin's own event again replaces it too.
    calendar.upsert_event(&NewEvent {
        title: "Standup, moved again".to_owned(),
        ..lunch(STANDUP)
    });
    let ics = calendar.to_ics();
    assert_eq!(ics.matches(&format!("UID:{STANDUP}")).count(), 1);
    assert!(ics.contains("SUMMARY:Standup\\, moved again"));
    assert!(!ics.contains("SUMMARY:Standup\\, once"));
}

#[test]
fn remove_deletes_only_that_uid() {
    let mut calendar = parse(GOOGLE);
    assert!(calendar.remove_event(STANDUP));
    assert!(!calendar.has_event(STANDUP));
    assert!(!calendar.remove_event(STANDUP), "already gone");
    assert!(!calendar.remove_event("no-such-uid"));
    let ics = calendar.to_ics();
    assert!(!ics.contains("Team standup"));
    // Everything else is still there, as written.
    for kept in [
        "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n",
        "X-WR-CALNAME:alice@example.com\r\n",
        "SUMMARY:Karfreitag\r\n",
        "SUMMARY:Lunch with Carol\r\n",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\n",
    ] {
        assert!(ics.contains(kept), "lost {kept:?}");
    }
    assert!(calendar.has_event("dentist-4k9s@google.com"));
    assert!(calendar.remove_event("dentist-4k9s@google.com"));
    assert!(
        calendar
            .busy(
                at("2024-03-01T00:00:00Z"),
                at("2024-05-01T00:00:00Z"),
                Tz::Europe__Berlin
            )
            .iter()
            .all(|(s, _)| *s < at("2024-04-02T00:00:00Z")),
        "only the offsite is left"
    );
}

#[test]
fn round_trip_after_edits_keeps_unknown_properties_and_components() {
    let mut calendar = parse(OUTLOOK);
    calendar.upsert_event(&lunch("twin-2"));
    assert!(calendar.remove_event("twin-2"));
    assert_eq!(
        calendar.to_ics(),
        OUTLOOK,
        "adding then removing leaves the export as it was"
    );
    calendar.upsert_event(&lunch("twin-3"));
    let ics = calendar.to_ics();
    for kept in [
        "X-MS-OLK-WKHRSTART;TZID=\"W. Europe Standard Time\":080000\r\n",
        "X-MICROSOFT-CDO-BUSYSTATUS:OOF\r\n",
        "X-ALT-DESC;FMTTYPE=text/html:<html>",
        "TZID:Customized Time Zone\r\n",
        "TRIGGER:-PT15M\r\n",
    ] {
        assert!(ics.contains(kept), "lost {kept:?}");
    }
}

#[test]
fn upsert_into_an_empty_calendar_and_control_characters() {
    let mut calendar = parse("");
    calendar.upsert_event(&NewEvent {
        uid: "a\r\nb".to_owned(),
        title: "Evil\r\nBEGIN:VEVENT".to_owned(),
        start: at("2024-03-20T12:00:00Z"),
        end: at("2024-03-20T11:00:00Z"),
        description: Some("one\r\ntwo\u{7}".to_owned()),
        attendees: vec!["@bob:example.org\nEND:VEVENT".to_owned()],
        negotiation: None,
    });
    let ics = calendar.to_ics();
    let again = parse(&ics);
    assert_eq!(again.to_ics(), ics);
    assert!(again.has_event("a  b"));
    assert_eq!(
        ics.split("\r\n").filter(|l| *l == "BEGIN:VEVENT").count(),
        1,
        "{ics}"
    );
    assert!(ics.contains("DESCRIPTION:one\\ntwo\r\n"), "{ics}");
    assert!(!ics.contains("ATTENDEE"));
    assert!(
        ics.contains("DTEND:20240320T120000Z"),
        "an end before the start becomes the start"
    );
}
