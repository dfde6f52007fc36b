//! Malformed input is an error naming the line, never a panic.

use chrono_tz::Tz;

use super::{APPLE, GOOGLE, OUTLOOK, at};
use crate::calendar::{Calendar, CalendarError};

/// The line and problem of a parse error.
fn error(text: &str) -> (usize, String) {
    match Calendar::parse(text) {
        Err(CalendarError::Malformed {
            line,
            problem,
            file,
        }) => {
            assert_eq!(file, "iCalendar text");
            (line, problem)
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("parsed: {text}"),
    }
}

/// 1-based line number of the first line that is `line`.
fn line_of(text: &str, line: &str) -> usize {
    text.lines().position(|l| l == line).unwrap() + 1
}

#[test]
fn structural_errors_name_the_line() {
    let cases: Vec<(String, usize, &str)> = vec![
        ("VERSION:2.0\r\n".to_owned(), 1, "expected BEGIN:VCALENDAR"),
        (
            "BEGIN:VEVENT\r\nEND:VEVENT\r\n".to_owned(),
            1,
            "expected BEGIN:VCALENDAR, found BEGIN:VEVENT",
        ),
        (" folded\r\n".to_owned(), 1, "continuation line"),
        (
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n".to_owned(),
            2,
            "BEGIN:VEVENT is never closed",
        ),
        (
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VTODO\r\nEND:VCALENDAR\r\n".to_owned(),
            3,
            "does not match BEGIN:VEVENT of line 2",
        ),
        (
            "BEGIN:VCALENDAR\r\nEND:VEVENT\r\n".to_owned(),
            2,
            "END:VEVENT does not match",
        ),
        (
            "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\nEND:VCALENDAR\r\n".to_owned(),
            3,
            "without a matching BEGIN",
        ),
        (
            "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\nX-TRAILING:1\r\n".to_owned(),
            3,
            "after END:VCALENDAR",
        ),
        (
            "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_owned(),
            3,
            "after the calendar ended on line 2",
        ),
        (
            "BEGIN:VCALENDAR\r\nthis is not a property\r\nEND:VCALENDAR\r\n".to_owned(),
            2,
            "no ':'",
        ),
        (
            "BEGIN:VCALENDAR\r\nX-A;P=\"open:value\r\nEND:VCALENDAR\r\n".to_owned(),
            2,
            "unterminated quote",
        ),
        (
            "BEGIN:VCALENDAR\r\n:value\r\nEND:VCALENDAR\r\n".to_owned(),
            2,
            "expected a property name",
        ),
        (
            "BEGIN:\r\nEND:\r\n".to_owned(),
            1,
            "BEGIN without a component name",
        ),
    ];
    for (text, line, problem) in cases {
        let (at_line, message) = error(&text);
        assert_eq!(at_line, line, "{text:?}: {message}");
        assert!(
            message.contains(problem),
            "{text:?}: {message:?} lacks {problem:?}"
        );
    }
}

#[test]
fn bad_values_name_the_line_as_written_counting_folded_lines() {
    let cases = [
        (
            "DTSTART:20240402T120000Z",
            "DTSTART:20240402T1200",
            "DTSTART value",
        ),
        ("DTEND:20240402T130000Z", "DTEND:2024-04-02", "DTEND value"),
        (
            "EXDATE;TZID=Europe/Berlin:20240401T090000",
            "EXDATE;TZID=Europe/Berlin:20240401T090000,tomorrow",
            "EXDATE value \"tomorrow\"",
        ),
        (
            "RECURRENCE-ID;TZID=Europe/Berlin:20240415T090000",
            "RECURRENCE-ID:20240415T090000,20240416T090000",
            "exactly one value",
        ),
        (
            "RRULE:FREQ=WEEKLY;WKST=MO;UNTIL=20240429T215959Z;BYDAY=MO",
            "RRULE:FREQ=SOMETIMES",
            "RRULE",
        ),
        (
            "RRULE:FREQ=WEEKLY;WKST=MO;UNTIL=20240429T215959Z;BYDAY=MO",
            "RRULE:FREQ=WEEKLY;UNTIL=soon",
            "UNTIL value",
        ),
        (
            "RRULE:FREQ=WEEKLY;WKST=MO;UNTIL=20240429T215959Z;BYDAY=MO",
            "RRULE:FREQ=WEEKLY;BYDAY=XX",
            "RRULE",
        ),
        (
            "RRULE:FREQ=WEEKLY;WKST=MO;UNTIL=20240429T215959Z;BYDAY=MO",
            "RRULE:FREQ",
            "KEY=VALUE",
        ),
    ];
    for (original, replacement, problem) in cases {
        assert!(GOOGLE.contains(original), "{original}");
        let text = GOOGLE.replacen(original, replacement, 1);
        let (line, message) = error(&text);
        assert_eq!(
            line,
            line_of(&text, replacement),
            "{replacement}: {message}"
        );
        assert!(
            message.contains(problem),
            "{replacement}: {message:?} lacks {problem:?}"
        );
    }
    // VTIMEZONE blocks are read when their TZID is not an IANA name (Outlook's).
    let vtimezone_cases = [
        (
            "TZOFFSETTO:+0200",
            "TZOFFSETTO:two hours",
            "not a UTC offset",
        ),
        (
            "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3",
            "RRULE:FREQ=YEARLY;BYMONTH=13",
            "RRULE",
        ),
        (
            "TZOFFSETFROM:+0530",
            "TZOFFSETFROM:+2561",
            "not a UTC offset",
        ),
    ];
    for (original, replacement, problem) in vtimezone_cases {
        assert!(OUTLOOK.contains(original), "{original}");
        let text = OUTLOOK.replacen(original, replacement, 1);
        let (line, message) = error(&text);
        assert_eq!(
            line,
            line_of(&text, replacement),
            "{replacement}: {message}"
        );
        assert!(
            message.contains(problem),
            "{replacement}: {message:?} lacks {problem:?}"
        );
    }
    // ... and ignored (kept as written) when it is, so a broken one does not matter.
    let text = GOOGLE.replacen("TZOFFSETTO:+0200", "TZOFFSETTO:two hours", 1);
    assert_eq!(
        Calendar::parse(&text).map(|c| c.to_ics()).ok(),
        Some(text.clone())
    );
    let text = APPLE.replacen("DURATION:PT45M", "DURATION:45 minutes", 1);
    let (line, message) = error(&text);
    assert_eq!(line, line_of(&text, "DURATION:45 minutes"));
    assert!(message.contains("DURATION"), "{message}");
    let text = APPLE.replacen("DURATION:PT45M", "DURATION:-PT45M", 1);
    assert_eq!(error(&text).0, line_of(&text, "DURATION:-PT45M"));
}

#[test]
fn odd_but_valid_rules_do_not_hang_or_panic() {
    for rule in [
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MINUTELY;INTERVAL=1",
        "FREQ=MONTHLY;BYDAY=5FR;BYSETPOS=-1",
        "FREQ=DAILY;UNTIL=20000101T000000Z",
        "FREQ=WEEKLY;COUNT=0",
        "FREQ=WEEKLY;X-NAME=1;BYDAY=mo",
    ] {
        let text = GOOGLE.replacen(
            "FREQ=WEEKLY;WKST=MO;UNTIL=20240429T215959Z;BYDAY=MO",
            rule,
            1,
        );
        if let Ok(calendar) = Calendar::parse(&text) {
            let busy = calendar.busy(
                at("2024-03-01T00:00:00Z"),
                at("2024-03-15T00:00:00Z"),
                Tz::UTC,
            );
            assert!(
                busy.windows(2).all(|w| w[0].1 < w[1].0),
                "{rule}: not merged and sorted"
            );
        }
    }
}

#[test]
fn truncated_and_mangled_exports_never_panic() {
    for fixture in [GOOGLE, APPLE, OUTLOOK] {
        let cuts: Vec<usize> = fixture.char_indices().map(|(i, _)| i).step_by(37).collect();
        for cut in cuts {
            let truncated = &fixture[..cut];
            if let Ok(calendar) = Calendar::parse(truncated) {
                let _ = calendar.busy(
                    at("2024-03-01T00:00:00Z"),
                    at("2024-05-01T00:00:00Z"),
                    Tz::UTC,
                );
                let _ = calendar.to_ics();
            }
            let spliced = format!("{truncated}{}", &fixture[cut / 2..]);
            if let Ok(calendar) = Calendar::parse(&spliced) {
                let _ = calendar.busy(
                    at("2024-03-01T00:00:00Z"),
                    at("2024-05-01T00:00:00Z"),
                    Tz::UTC,
                );
            }
        }
    }
}
