//! Tests of the calendar, on fixture files shaped like real Google, Apple and Outlook exports
//! (VTIMEZONE blocks, all-day events, recurrences with EXDATE and moved or cancelled instances,
//! cancelled and transparent events, folded lines, CRLF line endings).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod busy;
mod edit;
mod files;
mod malformed;
mod slots;

use chrono::{DateTime, Utc};

use super::Calendar;

const GOOGLE: &str = include_str!("fixtures/google.ics");
const APPLE: &str = include_str!("fixtures/apple.ics");
const OUTLOOK: &str = include_str!("fixtures/outlook.ics");

/// A UTC instant from RFC 3339 text.
fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

/// An interval from two RFC 3339 texts.
fn iv(start: &str, end: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    (at(start), at(end))
}

fn parse(text: &str) -> Calendar {
    Calendar::parse(text).unwrap_or_else(|e| panic!("parse: {e}"))
}
