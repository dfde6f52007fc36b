//! What a turn asks the rest of the service to do once it is over (data flows one way: the
//! kernel never calls back into rooms; its tools record requests that the room session runs).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A meeting the owner asked for, checked by the `propose_meeting` tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingAsk {
    /// The other person (`@bob:other.server`); their twin is found by convention.
    pub with: ruma::OwnedUserId,
    /// What the meeting is about.
    pub title: String,
    /// How long it lasts.
    pub duration_minutes: u32,
    /// Earliest start.
    pub window_start: DateTime<Utc>,
    /// Latest end.
    pub window_end: DateTime<Utc>,
    /// The owner's IANA time zone.
    pub time_zone: String,
}

/// A request a turn's tools left for the room session (kept with the turn's record, so it
/// is carried out once even across a crash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum ToolRequest {
    /// Negotiate a meeting with another person's twin.
    ProposeMeeting(MeetingAsk),
    /// The owner's answer to a meeting their twin asked them about.
    AnswerMeeting {
        /// Which negotiation (`None`: the only one waiting).
        negotiation_id: Option<String>,
        /// Yes or no.
        accept: bool,
    },
    /// Call off a meeting (agreed or still negotiated).
    CancelMeeting {
        /// Which negotiation (the meeting's UID in `data/calendar.ics`).
        negotiation_id: String,
    },
    /// A risky call held for the owner's approval (see [`super::approvals`]).
    Hold(HeldCall),
    /// A change of a policy file for the owner to confirm in their DM.
    ProposePolicy(PolicyChange),
    /// Send a file of the home into a room (`send_file`).
    SendFile {
        /// The room of the turn that asked.
        room: String,
        /// The file, relative to the home and normalized.
        path: String,
        /// Words shown with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// Speak the answer as a voice message too (the owner sent a voice message and asked for
    /// spoken replies).
    SpeakReply {
        /// The text to speak.
        text: String,
    },
}

/// A tool call held until the owner approves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldCall {
    /// The tool's name.
    pub tool: String,
    /// Its arguments, as the model sent them.
    pub arguments: serde_json::Value,
    /// One line for the owner saying what it would do.
    pub summary: String,
}

/// A proposed new content of a policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChange {
    /// The file, relative to the home and normalized.
    pub path: String,
    /// Its whole new content.
    pub content: String,
    /// The change as a unified diff, shown to the owner.
    pub diff: String,
    /// SHA-256 (hex) of the file as it was when the diff was made (empty: no file), so that a
    /// confirmation never overwrites a change made since.
    #[serde(default)]
    pub base: String,
}
