//! The AI-to-AI meeting protocol (`dev.matrixos.a2a.*`): how two twins agree on a meeting for
//! their owners over Matrix. The wire format is specified in `docs/protocol.md` and
//! `docs/schemas/`.
//!
//! - [`events`]: the event types and their contents, one module each.
//! - [`parse()`]: strict parsing of a received event into a [`ProtocolEvent`] or a typed
//!   [`Rejection`].
//! - [`free_time`]: deterministic slot arithmetic (working hours, busy times, alignment).
//! - [`negotiation`]: the pure state machine one twin runs per negotiation. It does no I/O and
//!   reads no clock; the caller feeds it events, owner decisions and ticks, and carries out what
//!   it returns.

pub mod events;
pub mod free_time;
pub mod ids;
pub mod negotiation;
mod parse;
pub mod time;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod schema_tests;

pub use events::{Body, Message, ProtocolEvent, types};
pub use ids::{NegotiationId, Uid};
pub use negotiation::Negotiation;
pub use parse::{Rejection, parse};
pub use time::Interval;

/// The protocol version this implementation writes: the `version` of every event it sends.
pub const VERSION: &str = "1";

/// Every protocol version this implementation reads.
pub const SUPPORTED_VERSIONS: &[&str] = &[VERSION];

/// The capability (and A2A skill ID) of meeting scheduling, the one thing version 1 negotiates.
pub const MEETING_SCHEDULING: &str = "meeting-scheduling";

/// Shortest meeting, in minutes.
pub const MIN_DURATION_MINUTES: u32 = 5;

/// Longest meeting, in minutes.
pub const MAX_DURATION_MINUTES: u32 = 480;

/// Most slots one request or counter may offer.
pub const MAX_SLOTS: usize = 50;

/// Longest window a request may span, in days.
pub const MAX_WINDOW_DAYS: i64 = 90;

/// Longest free text (decline text, cancel reason, reject detail), in characters.
pub const MAX_TEXT: usize = 1000;

/// Largest `seq`: the largest integer Matrix' canonical JSON allows (2^53 - 1).
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// [`SUPPORTED_VERSIONS`] as sent in a hello's `versions` and a reject's `versions`.
pub(crate) fn supported_versions() -> Vec<String> {
    SUPPORTED_VERSIONS.iter().map(|v| (*v).to_owned()).collect()
}

/// A list of versions: 1 to 16 version strings, no repeats.
pub(crate) fn check_versions(versions: &[String]) -> Result<(), String> {
    if versions.is_empty() || versions.len() > 16 {
        return Err("versions must hold 1 to 16 versions".into());
    }
    for (i, v) in versions.iter().enumerate() {
        check_version_string(v)?;
        if versions[..i].contains(v) {
            return Err(format!("version {v:?} is listed twice"));
        }
    }
    Ok(())
}

/// A version string is a positive decimal number without leading zeros, at most 9 digits.
fn check_version_string(v: &str) -> Result<(), String> {
    let digits = !v.is_empty() && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit());
    if digits && !v.starts_with('0') {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a protocol version (a positive number like \"1\")",
            ids::truncate_chars(v.to_owned(), 16)
        ))
    }
}
