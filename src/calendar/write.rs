//! Writing a new `VEVENT`. Each content line is produced by the `icalendar` crate's
//! `Property` serializer, which escapes TEXT values, quotes parameters and folds long lines.

use chrono::{DateTime, Utc};

use super::NewEvent;
use super::event::{End, EventInfo, Timing};
use super::props::When;
use super::zone::Zone;

/// The event's lines (`BEGIN:VEVENT` .. `END:VEVENT`, CRLF) and what it means for free/busy.
pub(super) fn event(event: &NewEvent, stamp: DateTime<Utc>) -> (String, EventInfo) {
    let uid = one_line(&event.uid);
    let end = event.end.max(event.start);
    let mut out = String::from("BEGIN:VEVENT\r\n");
    push(&mut out, "UID", &uid);
    push(&mut out, "DTSTAMP", &utc(stamp));
    push(&mut out, "DTSTART", &utc(event.start));
    push(&mut out, "DTEND", &utc(end));
    push(&mut out, "SUMMARY", &one_line(&event.title));
    if let Some(description) = &event.description {
        push(&mut out, "DESCRIPTION", &multi_line(description));
    }
    for attendee in &event.attendees {
        match attendee_uri(attendee) {
            Some(uri) => push(&mut out, "ATTENDEE", &uri),
            None => tracing::warn!(attendee, "not a mailto: or matrix: attendee; left out"),
        }
    }
    if let Some(negotiation) = &event.negotiation {
        push(
            &mut out,
            super::NEGOTIATION_PROPERTY,
            &one_line(negotiation),
        );
    }
    push(&mut out, "STATUS", "CONFIRMED");
    out.push_str("END:VEVENT\r\n");
    let info = EventInfo {
        uid: Some(uid),
        timing: Some(Timing {
            start: When::DateTime(event.start.naive_utc(), Zone::Utc),
            end: End::At(When::DateTime(end.naive_utc(), Zone::Utc)),
            rules: Vec::new(),
            rdates: Vec::new(),
            exdates: Vec::new(),
            recurrence_id: None,
            busy: true,
        }),
    };
    (out, info)
}

/// An attendee as a calendar address: `mailto:`/`matrix:` URIs as given, `@user:server` as
/// `matrix:u/user:server` (MSC2312), `name@domain` as `mailto:`; anything else is refused.
pub(super) fn attendee_uri(attendee: &str) -> Option<String> {
    let attendee = attendee.trim();
    if attendee.is_empty()
        || attendee
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let lower = attendee.to_ascii_lowercase();
    if (lower.starts_with("mailto:") || lower.starts_with("matrix:")) && attendee.len() > 7 {
        return Some(attendee.to_owned());
    }
    if let Some(mxid) = attendee.strip_prefix('@') {
        return match mxid.split_once(':') {
            Some((user, server)) if !user.is_empty() && !server.is_empty() => {
                Some(format!("matrix:u/{mxid}"))
            }
            _ => None,
        };
    }
    match attendee.split_once('@') {
        Some((user, domain)) if !user.is_empty() && domain.contains('.') => {
            Some(format!("mailto:{attendee}"))
        }
        _ => None,
    }
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Appends one content line.
fn push(out: &mut String, name: &str, value: &str) {
    let line: Result<String, std::fmt::Error> = icalendar::Property::new(name, value).try_into();
    // Formatting into a String cannot fail; the match only satisfies the type.
    if let Ok(line) = line {
        out.push_str(&line);
    }
}

/// Text on one line: line breaks and other control characters become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Text that may span lines: CRLF and CR become LF (escaped as `\n` when written), other
/// control characters except tab are dropped.
fn multi_line(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect()
}
