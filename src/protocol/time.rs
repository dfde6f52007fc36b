//! Times on the wire: RFC 3339 timestamps in UTC with a `Z` and whole seconds, and half-open
//! intervals `[start, end)` built from them (meeting slots, request windows, busy times).

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The only timestamp spelling the protocol accepts, e.g. `2026-05-04T09:30:00Z`.
const FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Writes a timestamp in the protocol's one spelling.
pub(crate) fn format_utc(t: &DateTime<Utc>) -> String {
    t.format(FORMAT).to_string()
}

/// Reads a timestamp, accepting exactly the spelling [`format_utc`] writes: RFC 3339, UTC, `Z`,
/// whole seconds. Anything else (offsets, fractions, lowercase `z`, a space for `T`) is refused.
pub(crate) fn parse_utc(s: &str) -> Result<DateTime<Utc>, String> {
    let parsed = DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{s:?} is not an RFC 3339 timestamp: {e}"))?
        .with_timezone(&Utc);
    if format_utc(&parsed) != s {
        return Err(format!(
            "{s:?} must be written in UTC as YYYY-MM-DDTHH:MM:SSZ (whole seconds, 'Z')"
        ));
    }
    Ok(parsed)
}

/// A half-open UTC time range `[start, end)` with `end > start`: a meeting slot, a request window
/// or a busy interval. On the wire: `{"start": "...Z", "end": "...Z"}`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// An interval whose end is not after its start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("interval end {end} is not after its start {start}")]
pub struct EmptyInterval {
    /// The start given.
    pub start: DateTime<Utc>,
    /// The end given.
    pub end: DateTime<Utc>,
}

impl Interval {
    /// An interval from `start` (inclusive) to `end` (exclusive); `end` must be after `start`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, EmptyInterval> {
        if end > start {
            Ok(Self { start, end })
        } else {
            Err(EmptyInterval { start, end })
        }
    }

    /// The first instant inside the interval.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// The first instant after the interval.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// How long the interval lasts.
    pub fn duration(&self) -> TimeDelta {
        self.end - self.start
    }

    /// Whether `other` lies entirely inside this interval.
    pub fn contains(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// The overlap of two intervals, if they overlap at all.
    pub fn intersect(&self, other: &Interval) -> Option<Interval> {
        Interval::new(self.start.max(other.start), self.end.min(other.end)).ok()
    }
}

impl fmt::Debug for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", format_utc(&self.start), format_utc(&self.end))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireInterval {
    start: String,
    end: String,
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireInterval {
            start: format_utc(&self.start),
            end: format_utc(&self.end),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = WireInterval::deserialize(deserializer)?;
        let start = parse_utc(&wire.start).map_err(D::Error::custom)?;
        let end = parse_utc(&wire.end).map_err(D::Error::custom)?;
        Interval::new(start, end).map_err(D::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod tests {
    use super::*;

    /// A UTC time from its protocol spelling, for tests.
    pub(crate) fn utc(s: &str) -> DateTime<Utc> {
        parse_utc(s).unwrap()
    }

    /// An interval from two protocol spellings, for tests.
    pub(crate) fn iv(start: &str, end: &str) -> Interval {
        Interval::new(utc(start), utc(end)).unwrap()
    }

    #[test]
    fn only_the_canonical_utc_spelling_is_accepted() {
        assert!(parse_utc("2026-05-04T09:30:00Z").is_ok());
        for bad in [
            "2026-05-04T09:30:00+00:00",
            "2026-05-04T11:30:00+02:00",
            "2026-05-04T09:30:00.5Z",
            "2026-05-04t09:30:00z",
            "2026-05-04 09:30:00Z",
            "2026-05-04T09:30Z",
            "2026-02-30T09:30:00Z",
            "",
        ] {
            assert!(parse_utc(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn intervals_must_not_be_empty_and_round_trip() {
        let json =
            serde_json::json!({"start": "2026-05-04T09:00:00Z", "end": "2026-05-04T09:30:00Z"});
        let slot: Interval = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(slot.duration(), TimeDelta::minutes(30));
        assert_eq!(serde_json::to_value(slot).unwrap(), json);
        let backwards =
            serde_json::json!({"start": "2026-05-04T09:30:00Z", "end": "2026-05-04T09:00:00Z"});
        assert!(serde_json::from_value::<Interval>(backwards).is_err());
        let extra = serde_json::json!({"start": "2026-05-04T09:00:00Z", "end": "2026-05-04T09:30:00Z", "x": 1});
        assert!(serde_json::from_value::<Interval>(extra).is_err());
    }

    #[test]
    fn containment_and_intersection() {
        let day = iv("2026-05-04T09:00:00Z", "2026-05-04T17:00:00Z");
        let slot = iv("2026-05-04T16:30:00Z", "2026-05-04T17:00:00Z");
        assert!(day.contains(&slot));
        assert!(!slot.contains(&day));
        let late = iv("2026-05-04T16:45:00Z", "2026-05-04T18:00:00Z");
        assert_eq!(
            day.intersect(&late),
            Some(iv("2026-05-04T16:45:00Z", "2026-05-04T17:00:00Z"))
        );
        assert_eq!(
            day.intersect(&iv("2026-05-04T17:00:00Z", "2026-05-04T18:00:00Z")),
            None
        );
    }
}
