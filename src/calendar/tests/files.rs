//! Fixtures parse and round-trip exactly; load and save go through the home.

use chrono_tz::Tz;

use super::{APPLE, GOOGLE, OUTLOOK, at, parse};
use crate::calendar::{CALENDAR_FILE, Calendar, CalendarError, NewEvent};
use crate::home::Home;

#[test]
fn calendar_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Calendar>();
}

#[test]
fn fixtures_have_crlf_line_endings_and_folded_lines() {
    for fixture in [GOOGLE, APPLE, OUTLOOK] {
        assert!(
            fixture.contains("\r\n"),
            "a fixture lost its CRLF line endings"
        );
        assert!(!fixture.replace("\r\n", "").contains('\n'));
        assert!(fixture.contains("\r\n "), "a fixture has no folded line");
    }
}

#[test]
fn exports_round_trip_byte_for_byte() {
    for fixture in [GOOGLE, APPLE, OUTLOOK] {
        assert_eq!(parse(fixture).to_ics(), fixture);
    }
}

#[test]
fn lf_only_text_is_read_and_written_with_crlf() {
    let lf = GOOGLE.replace("\r\n", "\n");
    let calendar = parse(&lf);
    assert_eq!(calendar.to_ics(), GOOGLE);
    assert!(calendar.has_event("dentist-4k9s@google.com"));
}

#[test]
fn byte_order_mark_and_blank_lines_are_tolerated() {
    let text = format!(
        "\u{feff}{}\r\n\r\n",
        GOOGLE.replace("END:VTIMEZONE\r\n", "END:VTIMEZONE\r\n\r\n")
    );
    assert!(parse(&text).has_event("dentist-4k9s@google.com"));
}

#[test]
fn uids_are_read_unfolded() {
    let calendar = parse(OUTLOOK);
    assert!(calendar.has_event(
        "040000008200E00074C5B7101A82E00800000000D0B2A8E9D567DA01000000000000000010000000C1F4B3A2\
         E5D6C7B8A9F0E1D2C3B4A596"
    ));
    assert!(parse(APPLE).has_event("5F3C2A1B-7D4E-4B2A-9C1D-0E8F7A6B5C4D"));
    assert!(
        !parse(APPLE).has_event("9A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9"),
        "an alarm's UID"
    );
}

#[test]
fn blank_text_is_an_empty_calendar() {
    for text in ["", "\r\n", "  \n\n"] {
        let calendar = parse(text);
        assert!(
            calendar
                .busy(
                    at("2000-01-01T00:00:00Z"),
                    at("2100-01-01T00:00:00Z"),
                    Tz::UTC
                )
                .is_empty()
        );
        let ics = calendar.to_ics();
        assert!(
            ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"),
            "{ics}"
        );
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(parse(&ics).to_ics() == ics);
    }
}

fn new_home() -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home =
        Home::open_or_create(&dir.path().join("alice"), None, "@alice:example.org").expect("home");
    (dir, home)
}

#[test]
fn missing_file_loads_empty_and_save_writes_it_without_committing() {
    let (_dir, home) = new_home();
    let mut calendar = Calendar::load(&home).expect("load");
    assert!(!calendar.has_event("x"));
    home.commit("before").expect("commit");
    calendar.upsert_event(&NewEvent {
        uid: "x".to_owned(),
        title: "Lunch".to_owned(),
        start: at("2024-03-20T12:00:00Z"),
        end: at("2024-03-20T13:00:00Z"),
        description: None,
        attendees: vec![],
        negotiation: None,
    });
    calendar.save(&home).expect("save");
    let again = Calendar::load(&home).expect("load again");
    assert!(again.has_event("x"));
    assert_eq!(again.to_ics(), calendar.to_ics());
    let written = std::fs::read_to_string(home.root().join(CALENDAR_FILE)).expect("read");
    assert_eq!(written, calendar.to_ics());
    assert!(
        home.commit("calendar").expect("commit").is_some(),
        "save must leave the change uncommitted"
    );
}

#[test]
fn dropped_export_loads_and_large_files_are_not_capped_by_the_home_read_limit() {
    let (_dir, home) = new_home();
    let mut big = GOOGLE.replace("END:VCALENDAR\r\n", "");
    let event = "BEGIN:VEVENT\r\nUID:filler-{n}\r\nDTSTART:20200101T000000Z\r\nDTEND:20200101T010000Z\r\n\
                 DESCRIPTION:padding padding padding padding padding padding padding padding\r\n\
                 END:VEVENT\r\n";
    for n in 0..3000 {
        big.push_str(&event.replace("{n}", &n.to_string()));
    }
    big.push_str("END:VCALENDAR\r\n");
    assert!(big.len() > crate::home::MAX_READ_BYTES as usize);
    home.write_atomic(CALENDAR_FILE, big.as_bytes())
        .expect("write");
    let calendar = Calendar::load(&home).expect("load");
    assert!(calendar.has_event("filler-2999"));
    assert_eq!(calendar.to_ics(), big);
}

#[test]
fn malformed_file_error_names_the_file_and_line() {
    let (_dir, home) = new_home();
    let broken = GOOGLE.replace("DTSTART:20240402T120000Z", "DTSTART:2024-04-02 12:00");
    home.write_atomic(CALENDAR_FILE, broken.as_bytes())
        .expect("write");
    let err = Calendar::load(&home).expect_err("malformed");
    let line = broken
        .lines()
        .position(|l| l.starts_with("DTSTART:2024-04-02"))
        .unwrap()
        + 1;
    match &err {
        CalendarError::Malformed { file, line: at, .. } => {
            assert_eq!(file, CALENDAR_FILE);
            assert_eq!(*at, line);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{CALENDAR_FILE} line {line}: ")),
        "{message}"
    );
    assert!(message.contains("DTSTART"), "{message}");
}

#[test]
fn non_utf8_file_is_an_error_with_its_line() {
    let (_dir, home) = new_home();
    let mut bytes = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nSUMMARY:caf".to_vec();
    bytes.push(0xe9);
    bytes.extend_from_slice(b"\r\nEND:VCALENDAR\r\n");
    home.write_atomic(CALENDAR_FILE, &bytes).expect("write");
    let err = Calendar::load(&home).expect_err("not utf-8");
    assert!(
        err.to_string().starts_with("data/calendar.ics line 3: "),
        "{err}"
    );
}
