//! `dev.matrixos.a2a.request`: the requester asks for a meeting and offers its free slots.
//!
//! Sent by the requester right after its hello. It carries only free slots, never what the
//! requester's owner is busy with.

use chrono::TimeDelta;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{check_slot_list, check_slots_fit};
use crate::protocol::{
    MAX_DURATION_MINUTES, MAX_WINDOW_DAYS, MIN_DURATION_MINUTES, ids::check_text, time::Interval,
};

/// Content of `dev.matrixos.a2a.request` (besides the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingRequest {
    /// What the meeting is about: 1 to 255 characters, used as the calendar entry's summary.
    pub title: String,
    /// How long the meeting lasts, 5 to 480 minutes.
    pub duration_minutes: u32,
    /// When the meeting may take place: at most 90 days long.
    pub window: Interval,
    /// The requester's IANA time zone (e.g. `Europe/Berlin`), for wording times to the owner.
    pub time_zone: String,
    /// The requester's free slots, earliest first: 1 to 50, each inside the window and exactly
    /// `duration_minutes` long.
    pub slots: Vec<Interval>,
}

impl MeetingRequest {
    /// The meeting's length.
    pub fn duration(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.duration_minutes))
    }

    /// The requester's time zone (validated on parse, so this only fails for hand-built values).
    pub fn tz(&self) -> Option<Tz> {
        self.time_zone.parse().ok()
    }

    /// Checks the rules the JSON shape cannot express.
    pub(crate) fn validate(&self) -> Result<(), String> {
        self.validate_terms()?;
        check_slot_list(&self.slots)?;
        check_slots_fit(&self.slots, &self.window, self.duration_minutes)
    }

    /// Checks everything but the slots: title, duration, window, time zone.
    pub(crate) fn validate_terms(&self) -> Result<(), String> {
        check_text("title", &self.title, 1, 255)?;
        if !(MIN_DURATION_MINUTES..=MAX_DURATION_MINUTES).contains(&self.duration_minutes) {
            return Err(format!(
                "duration_minutes must be {MIN_DURATION_MINUTES} to {MAX_DURATION_MINUTES}, not {}",
                self.duration_minutes
            ));
        }
        if self.window.duration() > TimeDelta::days(MAX_WINDOW_DAYS) {
            return Err(format!(
                "window must be at most {MAX_WINDOW_DAYS} days long"
            ));
        }
        if self.window.duration() < self.duration() {
            return Err("window is shorter than the meeting".into());
        }
        if self.tz().is_none() {
            return Err(format!(
                "time_zone {:?} is not an IANA time zone name",
                self.time_zone
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::protocol::{events::samples, time::tests::iv};

    fn request() -> MeetingRequest {
        samples::request_body()
    }

    #[test]
    fn request_wire_format() {
        insta::assert_json_snapshot!(samples::request());
    }

    #[test]
    fn the_sample_is_valid() {
        assert_eq!(request().validate(), Ok(()));
    }

    #[test]
    fn duration_must_be_5_to_480_minutes() {
        for (minutes, ok) in [(4, false), (5, true), (480, true), (481, false), (0, false)] {
            let r = MeetingRequest {
                duration_minutes: minutes,
                ..request()
            };
            assert_eq!(r.validate_terms().is_ok(), ok, "{minutes} minutes");
        }
    }

    #[test]
    fn slots_must_fit_window_and_duration_and_be_sorted() {
        let outside = iv("2026-05-01T09:00:00Z", "2026-05-01T09:30:00Z");
        let too_long = iv("2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z");
        let first = iv("2026-05-04T09:00:00Z", "2026-05-04T09:30:00Z");
        let second = iv("2026-05-04T10:00:00Z", "2026-05-04T10:30:00Z");
        for (slots, ok) in [
            (vec![first, second], true),
            (vec![second, first], false),
            (vec![first, first], false),
            (vec![outside], false),
            (vec![too_long], false),
            (vec![], false),
            (vec![first; 51], false),
        ] {
            let r = MeetingRequest {
                slots: slots.clone(),
                ..request()
            };
            assert_eq!(r.validate().is_ok(), ok, "{slots:?}");
        }
    }

    #[test]
    fn time_zone_must_be_iana_and_window_bounded() {
        let r = MeetingRequest {
            time_zone: "Mars/Olympus".into(),
            ..request()
        };
        assert!(r.validate().unwrap_err().contains("IANA"));
        let r = MeetingRequest {
            window: iv("2026-05-04T00:00:00Z", "2026-09-01T00:00:00Z"),
            ..request()
        };
        assert!(r.validate().unwrap_err().contains("90 days"));
    }
}
