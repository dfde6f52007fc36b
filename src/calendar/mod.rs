//! The owner's calendar: an RFC 5545 iCalendar file at [`CALENDAR_FILE`] in their home.
//!
//! The owner can drop a calendar exported from Google, Apple or Outlook there; the twin adds
//! and removes its own events. Only free/busy leaves the server: [`Calendar::busy`] and
//! [`free_slots`] return bare intervals, never titles, attendees or descriptions.
//!
//! Reading checks the structure itself (so a malformed file is an error naming the line) and
//! parses content lines with the `icalendar` crate; recurrences are expanded with the `rrule`
//! crate, time zones come from chrono-tz or from the file's own `VTIMEZONE` blocks. Writing
//! keeps every component it did not touch exactly as it was read (only line endings become
//! CRLF), so an exported calendar round-trips without losing events or unknown properties.
//!
//! Supported for busy time: `VEVENT`s that are not `TRANSP:TRANSPARENT` and not
//! `STATUS:CANCELLED`; `DTSTART` with `DTEND`, `DURATION` or neither (a DATE event then lasts
//! one day, a DATE-TIME event no time); DATE (all-day) events as whole days in the caller's
//! zone; UTC, `TZID` and floating times; every `RRULE` the `rrule` crate supports (all of RFC
//! 5545's FREQ and BY* parts, COUNT, UNTIL, INTERVAL, WKST); `RDATE` (DATE, DATE-TIME, PERIOD
//! start); `EXDATE`; `RECURRENCE-ID` instances replacing (moving or cancelling) one instance of
//! their series. `DTSTART` is always an instance, also when the rule does not produce it (so
//! with `COUNT` such a series has one instance more than the count). A series is expanded up to
//! 100 000 instances from its `DTSTART` (an hourly rule running for decades is cut there); a
//! `TZID` that is neither an IANA name nor defined by a `VTIMEZONE` is read as floating.
//! Not supported: `RANGE=THISANDFUTURE` (such an instance replaces only its own occurrence),
//! `EXRULE`, `VFREEBUSY` components, Outlook's `X-MICROSOFT-CDO-BUSYSTATUS` without a matching
//! `TRANSP`, several `VCALENDAR`s in one file.

mod busy;
mod error;
mod event;
mod props;
mod recur;
mod scan;
mod slots;
mod write;
mod zone;

#[cfg(test)]
mod tests;

use std::io::Read;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::home::Home;
use event::EventInfo;
use scan::Item;

pub use error::CalendarError;
pub use slots::{MAX_FREE_SLOTS, free_slots};

/// Where the calendar lives in the owner's home.
pub const CALENDAR_FILE: &str = "data/calendar.ics";
/// Largest calendar file [`Calendar::load`] reads.
pub const MAX_CALENDAR_BYTES: u64 = 32 * 1024 * 1024;
/// How [`Calendar::parse`] names its input in errors.
const TEXT_NAME: &str = "iCalendar text";
/// Calendar properties of a calendar that did not come from a file.
const NEW_CALENDAR_PROPERTIES: &str =
    "VERSION:2.0\r\nPRODID:-//matrix-os//calendar//EN\r\nCALSCALE:GREGORIAN\r\n";

/// A parsed calendar file.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// The `VCALENDAR`'s properties and components in file order.
    entries: Vec<Entry>,
}

/// One property or component directly inside the `VCALENDAR`.
#[derive(Debug, Clone)]
struct Entry {
    /// Its lines as written, each ending in CRLF.
    text: String,
    /// Set for `VEVENT`s.
    event: Option<EventInfo>,
}

impl Entry {
    fn is_event(&self, uid: &str) -> bool {
        self.event
            .as_ref()
            .is_some_and(|e| e.uid.as_deref() == Some(uid))
    }
}

/// An event the twin adds to its owner's calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// `UID`; an existing event with the same UID is replaced.
    pub uid: String,
    /// `SUMMARY`.
    pub title: String,
    /// `DTSTART`.
    pub start: DateTime<Utc>,
    /// `DTEND` (an end before the start is written as the start).
    pub end: DateTime<Utc>,
    /// `DESCRIPTION`, when set.
    pub description: Option<String>,
    /// `ATTENDEE`s: `mailto:`/`matrix:` URIs, e-mail addresses or Matrix user IDs (the latter
    /// two are turned into URIs; anything else is left out).
    pub attendees: Vec<String>,
    /// The negotiation that agreed it, written as [`NEGOTIATION_PROPERTY`]: only that
    /// negotiation may later replace or remove the event.
    pub negotiation: Option<String>,
}

/// The property naming the negotiation that wrote an event.
pub const NEGOTIATION_PROPERTY: &str = "X-MATRIXOS-NEGOTIATION";

impl Default for Calendar {
    /// An empty calendar (what a missing file reads as).
    fn default() -> Self {
        Self {
            entries: vec![Entry {
                text: NEW_CALENDAR_PROPERTIES.to_owned(),
                event: None,
            }],
        }
    }
}

impl Calendar {
    /// Reads [`CALENDAR_FILE`] from `home`; a missing file is an empty calendar.
    ///
    /// A file that is not valid iCalendar is a [`CalendarError::Malformed`] naming the file and
    /// the line; a file over [`MAX_CALENDAR_BYTES`] is [`CalendarError::TooLarge`].
    pub fn load(home: &Home) -> Result<Self, CalendarError> {
        let path = home.resolve(CALENDAR_FILE)?;
        let read_error = |source| CalendarError::Read {
            file: CALENDAR_FILE.to_owned(),
            source,
        };
        let size = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(read_error(e)),
        };
        if size > MAX_CALENDAR_BYTES {
            return Err(CalendarError::TooLarge {
                file: CALENDAR_FILE.to_owned(),
                size,
                limit: MAX_CALENDAR_BYTES,
            });
        }
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_CALENDAR_BYTES).read_to_end(&mut bytes))
            .map_err(read_error)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            CalendarError::Malformed {
                file: CALENDAR_FILE.to_owned(),
                line: 1 + valid.iter().filter(|b| **b == b'\n').count(),
                problem: "the file is not UTF-8 text".to_owned(),
            }
        })?;
        Self::parse(&text).map_err(|e| e.in_file(CALENDAR_FILE))
    }

    /// Parses iCalendar text (CRLF or LF line endings); blank text is an empty calendar.
    pub fn parse(text: &str) -> Result<Self, CalendarError> {
        let malformed = |e: scan::ScanError| CalendarError::Malformed {
            file: TEXT_NAME.to_owned(),
            line: e.line,
            problem: e.problem,
        };
        let doc = scan::scan(text).map_err(malformed)?;
        let Some(root) = &doc.root else {
            return Ok(Self::default());
        };
        let zones = zone::Zones::from_root(root).map_err(malformed)?;
        let mut entries = Vec::with_capacity(root.items.len());
        for item in &root.items {
            let event = match item {
                Item::Comp(node) if node.name == "VEVENT" => {
                    Some(event::read_event(node, &zones).map_err(malformed)?)
                }
                _ => None,
            };
            entries.push(Entry {
                text: item.raw(&doc),
                event,
            });
        }
        Ok(Self { entries })
    }

    /// Busy intervals (UTC, merged, sorted, clipped to the range) overlapping `[start, end)`.
    ///
    /// Counts `VEVENT`s that are not `TRANSP:TRANSPARENT` and not `STATUS:CANCELLED`, with
    /// recurrences expanded; DATE (all-day) events are busy for whole days in `tz`, and
    /// floating times are read in `tz`. See the module docs for what is supported.
    pub fn busy(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        tz: Tz,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let events = self.entries.iter().filter_map(|entry| {
            let info = entry.event.as_ref()?;
            Some((info.uid.as_deref(), info.timing.as_ref()?))
        });
        busy::busy(events, start, end, tz)
    }

    /// Adds an event, or replaces the events with its UID (a recurring series together with
    /// its moved instances) where the first of them was: `UID`, `DTSTAMP` (now), `SUMMARY`,
    /// `DTSTART`/`DTEND` in UTC, `DESCRIPTION` when set, one `ATTENDEE` per attendee,
    /// `STATUS:CONFIRMED`. Control characters in the UID and title become spaces.
    pub fn upsert_event(&mut self, event: &NewEvent) {
        let (text, info) = write::event(event, Utc::now());
        let uid = info.uid.clone().unwrap_or_default();
        let entry = Entry {
            text,
            event: Some(info),
        };
        match self.entries.iter().position(|e| e.is_event(&uid)) {
            Some(index) => {
                self.entries.retain(|e| !e.is_event(&uid));
                self.entries.insert(index.min(self.entries.len()), entry);
            }
            None => self.entries.push(entry),
        }
    }

    /// Removes the events with this UID (a series together with its moved instances); whether
    /// there was one.
    pub fn remove_event(&mut self, uid: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| !e.is_event(uid));
        self.entries.len() != before
    }

    /// Who wrote the event with this UID: `None` when there is no such event, `Some(None)`
    /// when it was not written by a negotiation (the owner's own), `Some(Some(id))` when
    /// negotiation `id` wrote it.
    pub fn negotiation_of(&self, uid: &str) -> Option<Option<String>> {
        let entry = self.entries.iter().find(|e| e.is_event(uid))?;
        let prefix = format!("{NEGOTIATION_PROPERTY}:");
        Some(
            entry
                .text
                .lines()
                .find_map(|line| line.strip_prefix(&prefix))
                .map(|id| id.trim_end().to_owned()),
        )
    }

    /// Whether an event with this UID exists.
    pub fn has_event(&self, uid: &str) -> bool {
        self.entries.iter().any(|e| e.is_event(uid))
    }

    /// The calendar as iCalendar text (CRLF). Everything it did not add or replace is written
    /// exactly as it was read.
    pub fn to_ics(&self) -> String {
        let mut out = String::from("BEGIN:VCALENDAR\r\n");
        for entry in &self.entries {
            out.push_str(&entry.text);
        }
        out.push_str("END:VCALENDAR\r\n");
        out
    }

    /// Writes [`CALENDAR_FILE`] atomically. Does not commit: the caller does.
    pub fn save(&self, home: &Home) -> Result<(), CalendarError> {
        home.write_atomic(CALENDAR_FILE, self.to_ics().as_bytes())?;
        Ok(())
    }
}
