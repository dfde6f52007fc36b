//! Where a negotiation stands. Serializable, so the caller can persist a negotiation between
//! inputs and across restarts.

use serde::{Deserialize, Serialize};

use crate::protocol::{
    events::{DeclineReason, RejectCode},
    ids::Uid,
    time::Interval,
};

/// Which side of the negotiation this twin is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Its owner asked for the meeting; it sent the request.
    Requester,
    /// It answers the request.
    Responder,
}

/// The negotiation's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Nothing has happened yet.
    Idle,
    /// Responder: hellos exchanged, waiting for the request.
    AwaitingRequest,
    /// Slots were offered (request or counter); waiting for the peer to accept, counter or
    /// decline.
    AwaitingAnswer {
        /// The slots offered.
        offered: Vec<Interval>,
    },
    /// Responder: waiting for the own owner to pick a slot or decline.
    AwaitingOwner {
        /// The slots put to the owner.
        candidates: Vec<Interval>,
    },
    /// A slot was accepted; waiting for the peer's confirm.
    AwaitingConfirm {
        /// The accepted slot.
        slot: Interval,
    },
    /// The meeting is agreed and booked; only a cancel (or a late decline) changes that.
    Agreed {
        /// When.
        slot: Interval,
        /// Its iCalendar UID.
        uid: Uid,
    },
    /// The negotiation is over; received events are ignored.
    Ended {
        /// How it ended.
        outcome: Outcome,
    },
}

/// How a negotiation ended without (or after) a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// This side declined (or, as requester, had no free time at all and sent nothing).
    DeclinedByUs {
        /// The reason sent.
        reason: DeclineReason,
    },
    /// The peer declined.
    DeclinedByPeer {
        /// The reason received.
        reason: DeclineReason,
    },
    /// An agreed meeting was cancelled, by either side.
    Cancelled,
    /// The peer rejected an event for good, or its hello did not match.
    Failed {
        /// The rejection code.
        code: RejectCode,
    },
}
