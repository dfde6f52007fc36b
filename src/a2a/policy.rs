//! An owner's meeting policy: `system/meetings.toml` in their home. When they take meetings
//! (time zone, hours, days) and whose meetings their twin may accept without asking.

use chrono::{NaiveTime, Weekday};
use globset::GlobSet;
use ruma::UserId;
use serde::{Deserialize, Serialize};

use crate::{
    home::{Home, HomeError},
    protocol::{free_time::WorkingHours, negotiation::NegotiationConfig},
};

/// Where the policy lives in the home.
pub const MEETINGS_FILE: &str = "system/meetings.toml";

/// The file's shape; missing keys take the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeetingsFile {
    /// The owner's IANA time zone.
    pub time_zone: String,
    /// Working hours, `HH:MM-HH:MM` local time.
    pub working_hours: String,
    /// Working days (`mon` ... `sun`).
    pub days: Vec<String>,
    /// MXID globs of people whose meeting requests the twin accepts without asking.
    pub auto_accept: Vec<String>,
    /// Minutes to wait for the other twin before giving up.
    pub peer_timeout_minutes: u32,
    /// Minutes to wait for the owner's answer before declining.
    pub owner_timeout_minutes: u32,
    /// Whether the twin's model words the owner's notices in its own voice (checked against
    /// the facts; the plain wording is sent when the model changes any). `false`: plain only.
    pub reword_notices: bool,
}

impl Default for MeetingsFile {
    fn default() -> Self {
        Self {
            time_zone: "UTC".into(),
            working_hours: "09:00-17:00".into(),
            days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            auto_accept: Vec::new(),
            peer_timeout_minutes: 48 * 60,
            owner_timeout_minutes: 24 * 60,
            reword_notices: true,
        }
    }
}

/// A meeting policy, checked.
#[derive(Debug, Clone)]
pub struct MeetingPolicy {
    /// When the owner takes meetings.
    pub hours: WorkingHours,
    /// Timeouts and slot steps of new negotiations.
    pub config: NegotiationConfig,
    /// Whether the model words notices to the owner.
    pub reword_notices: bool,
    auto_accept: GlobSet,
}

/// The file is wrong: what and where.
#[derive(Debug, thiserror::Error)]
#[error("{MEETINGS_FILE}: {0}")]
pub struct MeetingsError(String);

fn weekday(name: &str) -> Option<Weekday> {
    name.trim().to_ascii_lowercase().get(..3)?.parse().ok()
}

impl MeetingPolicy {
    /// Checks a file.
    pub fn from_file(file: &MeetingsFile) -> Result<Self, MeetingsError> {
        let time_zone = file.time_zone.parse().map_err(|_| {
            MeetingsError(format!(
                "time_zone {:?} is not an IANA zone",
                file.time_zone
            ))
        })?;
        let (start, end) = file
            .working_hours
            .split_once('-')
            .and_then(|(a, b)| {
                Some((
                    NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?,
                    NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?,
                ))
            })
            .ok_or_else(|| {
                MeetingsError(format!(
                    "working_hours {:?} is not HH:MM-HH:MM",
                    file.working_hours
                ))
            })?;
        let days = file
            .days
            .iter()
            .map(|d| {
                weekday(d).ok_or_else(|| MeetingsError(format!("days: {d:?} is not a weekday")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let auto_accept = crate::policy::glob::user_set(&file.auto_accept)
            .map_err(|e| MeetingsError(format!("auto_accept: {e}")))?;
        if file.peer_timeout_minutes == 0 || file.owner_timeout_minutes == 0 {
            return Err(MeetingsError("timeouts must be at least 1 minute".into()));
        }
        Ok(Self {
            hours: WorkingHours {
                time_zone,
                start,
                end,
                days,
            },
            config: NegotiationConfig {
                peer_timeout_minutes: file.peer_timeout_minutes,
                owner_timeout_minutes: file.owner_timeout_minutes,
                ..NegotiationConfig::default()
            },
            reword_notices: file.reword_notices,
            auto_accept,
        })
    }

    /// Reads the owner's policy; a missing file is the defaults.
    pub fn load(home: &Home) -> Result<Self, MeetingsError> {
        let file = match home.read_to_string(MEETINGS_FILE) {
            Ok(text) => toml::from_str(&text).map_err(|e| MeetingsError(e.to_string()))?,
            Err(HomeError::NotFound(_)) => MeetingsFile::default(),
            Err(err) => return Err(MeetingsError(err.to_string())),
        };
        Self::from_file(&file)
    }

    /// Whether the twin may accept a meeting with `person` without asking its owner.
    pub fn auto_accepts(&self, person: &UserId) -> bool {
        self.auto_accept.is_match(person.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_office_hours_in_utc_and_ask_everyone() {
        let policy = MeetingPolicy::from_file(&MeetingsFile::default()).unwrap();
        assert_eq!(policy.hours, WorkingHours::office(chrono_tz::UTC));
        assert!(!policy.auto_accepts(ruma::user_id!("@bob:x")));
    }

    #[test]
    fn a_file_sets_zone_hours_days_and_auto_accept() {
        let file: MeetingsFile = toml::from_str(
            "time_zone = \"Europe/Berlin\"\nworking_hours = \"08:30-12:00\"\ndays = [\"Mon\", \"saturday\"]\nauto_accept = [\"@*:friends.org\"]\n",
        )
        .unwrap();
        let policy = MeetingPolicy::from_file(&file).unwrap();
        assert_eq!(policy.hours.days, vec![Weekday::Mon, Weekday::Sat]);
        assert_eq!(
            policy.hours.start,
            NaiveTime::from_hms_opt(8, 30, 0).unwrap()
        );
        assert!(policy.auto_accepts(ruma::user_id!("@bob:friends.org")));
        assert!(!policy.auto_accepts(ruma::user_id!("@bob:enemies.org")));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (toml, key) in [
            ("time_zone = \"Mars/Olympus\"", "time_zone"),
            ("working_hours = \"nine to five\"", "working_hours"),
            ("days = [\"someday\"]", "days"),
            ("auto_accept = [\"bob\"]", "auto_accept"),
        ] {
            let file: MeetingsFile = toml::from_str(toml).unwrap();
            let err = MeetingPolicy::from_file(&file).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
