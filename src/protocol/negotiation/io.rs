//! What goes into a [`Negotiation`](super::Negotiation) and what comes out of it.

use chrono::{DateTime, Utc};
use ruma::OwnedUserId;
use serde::{Deserialize, Serialize};

use crate::protocol::{
    events::{DeclineReason, ProtocolEvent, RejectCode},
    free_time::{SlotStep, WorkingHours},
    ids::Uid,
    time::Interval,
};

/// A twin and the owner it acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// The human.
    pub owner: OwnedUserId,
    /// Their twin.
    pub twin: OwnedUserId,
}

/// Settings fixed when a negotiation is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegotiationConfig {
    /// How long to wait for the peer's next event before declining with `timeout`.
    pub peer_timeout_minutes: u32,
    /// How long to wait for the owner's decision before declining with `timeout`.
    pub owner_timeout_minutes: u32,
    /// Where offered slots may start.
    pub step: SlotStep,
}

impl Default for NegotiationConfig {
    /// 48 hours for the peer (which may itself wait up to a day for its owner), 24 hours for the
    /// owner, slots on the quarter hour.
    fn default() -> Self {
        NegotiationConfig {
            peer_timeout_minutes: 48 * 60,
            owner_timeout_minutes: 24 * 60,
            step: SlotStep::QuarterHour,
        }
    }
}

/// Facts the caller supplies with every input; the negotiation reads no clock and no calendar.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The current time.
    pub now: DateTime<Utc>,
    /// The own owner's busy intervals, covering at least the negotiation's window (the window is
    /// in the request: [`StartMeeting::window`], or the received request, or
    /// [`Negotiation::request`](super::Negotiation::request)). Callers running several
    /// negotiations for one owner should add the other negotiations'
    /// [`held_slot`](super::Negotiation::held_slot)s.
    pub busy: &'a [Interval],
    /// The own owner's working hours; their time zone is also the requester's `time_zone`.
    pub hours: &'a WorkingHours,
    /// What the own owner allows for this peer.
    pub policy: Policy,
}

/// The own owner's policy towards the peer, decided by the caller (e.g. from the owner's policy
/// file and the peer's MXID in [`Negotiation::peer`](super::Negotiation::peer)). Read only by the
/// responder, when the request arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Whether the peer may request meetings at all; if not, requests are declined `not_allowed`.
    pub allowed: bool,
    /// Whether a common slot may be accepted without asking the owner.
    pub auto_accept: bool,
}

/// The requester's owner asks for a meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartMeeting {
    /// Who to meet: the owner, and the twin found by convention (`@bob:hs2` -> `@bob_ai:hs2`).
    /// The peer's hello must confirm both.
    pub peer: Party,
    /// What the meeting is about.
    pub title: String,
    /// How long it lasts, 5 to 480 minutes.
    pub duration_minutes: u32,
    /// When it may take place, at most 90 days.
    pub window: Interval,
}

/// A protocol event received in the negotiation's room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The Matrix sender.
    pub sender: OwnedUserId,
    /// The parsed event (see [`parse`](crate::protocol::parse())).
    pub event: ProtocolEvent,
    /// The Matrix event ID, echoed in a rejection.
    pub event_id: Option<String>,
}

/// Something that happened, for the negotiation to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The own owner asks for a meeting: this side becomes the requester.
    Start(StartMeeting),
    /// The peer twin sent an event. A hello as the very first input makes this side the responder.
    Received(Received),
    /// The own owner approves one of the slots offered in [`Notice::AskOwner`].
    OwnerApprove {
        /// The chosen slot.
        slot: Interval,
    },
    /// The own owner turns the request down.
    OwnerDecline,
    /// The own owner calls the meeting (or the negotiation) off.
    OwnerCancel {
        /// Their words, 1 to 1000 characters; sent to the peer.
        reason: String,
    },
    /// Time passed: checks the deadline against [`Context::now`]. Call it regularly.
    Tick,
}

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this event to the peer twin's room, in order.
    Send(ProtocolEvent),
    /// Change the own owner's calendar.
    Calendar(CalendarWrite),
    /// Tell the own owner, in words of the caller's choosing.
    Notify(Notice),
}

impl Output {
    /// What it is, for logs: the event type sent, `calendar` or `notify`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Send(event) => event.event_type(),
            Self::Calendar(_) => "calendar",
            Self::Notify(_) => "notify",
        }
    }
}

/// A change to the own owner's calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarWrite {
    /// Add the agreed meeting.
    Add {
        /// The iCalendar UID, the same in both owners' calendars.
        uid: Uid,
        /// The request's title.
        title: String,
        /// When.
        slot: Interval,
    },
    /// Remove the meeting with this UID.
    Remove {
        /// The iCalendar UID.
        uid: Uid,
    },
}

/// News for the own owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The meeting is agreed and in the calendar.
    Agreed {
        /// When.
        slot: Interval,
        /// Its UID.
        uid: Uid,
    },
    /// The peer asks for a meeting: approve one slot ([`Input::OwnerApprove`]) or decline.
    AskOwner {
        /// The peer's owner.
        from: OwnedUserId,
        /// The requested slots that are free for the own owner, earliest first.
        slots: Vec<Interval>,
    },
    /// No slot suits both owners.
    NoCommonSlot,
    /// The peer declined.
    Declined {
        /// Its reason code.
        reason: DeclineReason,
        /// Its words, if any.
        text: Option<String>,
    },
    /// Nobody answered in time; the peer was told.
    TimedOut,
    /// The peer cancelled the agreed meeting; it was removed from the calendar.
    Cancelled {
        /// The peer's words.
        reason: String,
    },
    /// The negotiation broke: the peer rejected an event for good, or is not the twin it should
    /// be.
    Failed {
        /// What went wrong.
        code: RejectCode,
        /// Details for logs.
        detail: String,
    },
}

/// The caller gave an input that does not fit the negotiation's state. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// `Start` on a negotiation that already started or already answers a peer.
    #[error("this negotiation has already started")]
    AlreadyStarted,
    /// The meeting asked for breaks a protocol rule.
    #[error("invalid meeting: {0}")]
    InvalidMeeting(String),
    /// An owner decision while no decision is pending.
    #[error("the owner was not asked for a decision")]
    NotAwaitingOwner,
    /// The owner approved a slot that was not among those offered.
    #[error("that slot was not among those offered to the owner")]
    NotACandidate,
    /// A cancel before anything started or after the negotiation ended.
    #[error("there is nothing to cancel")]
    NothingToCancel,
    /// The cancel reason breaks a protocol rule.
    #[error("invalid reason: {0}")]
    InvalidReason(String),
}
