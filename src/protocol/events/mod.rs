//! The protocol's Matrix events: one module per event type, each with its content struct, the
//! rules a content must follow beyond its JSON shape, and a snapshot of its wire format.
//!
//! Every event of a negotiation (everything but [`Reject`]) is a [`Message`]: the envelope fields
//! `version`, `negotiation_id` and `seq`, plus the type's own fields ([`Body`]).

use serde::Serialize;

use super::{
    ids::NegotiationId,
    time::Interval,
    {MAX_SLOTS, VERSION},
};

mod accept;
mod cancel;
mod confirm;
mod counter;
mod decline;
mod hello;
mod reject;
mod request;

pub use accept::Accept;
pub use cancel::Cancel;
pub use confirm::Confirm;
pub use counter::Counter;
pub use decline::{Decline, DeclineReason};
pub use hello::{AgentCapabilities, AgentCard, AgentSkill, Hello};
pub use reject::{Reject, RejectCode};
pub use request::MeetingRequest;

/// The Matrix event type names, all in matrix-os' reverse-DNS namespace.
pub mod types {
    /// The namespace every protocol event type starts with.
    pub const PREFIX: &str = "dev.matrixos.a2a.";
    /// [`Hello`](super::Hello): a twin introduces itself and its owner.
    pub const HELLO: &str = "dev.matrixos.a2a.hello";
    /// [`MeetingRequest`](super::MeetingRequest): the requester asks for a meeting.
    pub const REQUEST: &str = "dev.matrixos.a2a.request";
    /// [`Counter`](super::Counter): the responder offers its own free slots instead.
    pub const COUNTER: &str = "dev.matrixos.a2a.counter";
    /// [`Accept`](super::Accept): one offered slot is taken.
    pub const ACCEPT: &str = "dev.matrixos.a2a.accept";
    /// [`Decline`](super::Decline): the negotiation ends without a meeting.
    pub const DECLINE: &str = "dev.matrixos.a2a.decline";
    /// [`Confirm`](super::Confirm): the accepted slot is booked under a UID.
    pub const CONFIRM: &str = "dev.matrixos.a2a.confirm";
    /// [`Cancel`](super::Cancel): a confirmed meeting is called off.
    pub const CANCEL: &str = "dev.matrixos.a2a.cancel";
    /// [`Reject`](super::Reject): an event was not understood or not expected.
    pub const REJECT: &str = "dev.matrixos.a2a.reject";
}

/// Any protocol event, as parsed from or sent to the room.
///
/// Serializing it yields the event's `content`; [`ProtocolEvent::event_type`] gives its `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolEvent {
    /// An event of a negotiation.
    Message(Message),
    /// A typed rejection of some earlier event.
    Reject(Reject),
}

/// An event of a negotiation: the envelope plus the type's own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The negotiation this event belongs to.
    pub negotiation_id: NegotiationId,
    /// The sender's sequence number within the negotiation: 1 for its first event, then 2, 3...
    /// A receiver ignores any event whose `seq` it has already processed.
    pub seq: u64,
    /// The type-specific content.
    pub body: Body,
}

/// The type-specific part of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Body {
    /// `dev.matrixos.a2a.hello` (boxed: the agent card makes it several times larger than the rest)
    Hello(Box<Hello>),
    /// `dev.matrixos.a2a.request`
    Request(MeetingRequest),
    /// `dev.matrixos.a2a.counter`
    Counter(Counter),
    /// `dev.matrixos.a2a.accept`
    Accept(Accept),
    /// `dev.matrixos.a2a.decline`
    Decline(Decline),
    /// `dev.matrixos.a2a.confirm`
    Confirm(Confirm),
    /// `dev.matrixos.a2a.cancel`
    Cancel(Cancel),
}

impl Body {
    /// The Matrix event type this body is sent as.
    pub fn event_type(&self) -> &'static str {
        match self {
            Body::Hello(_) => types::HELLO,
            Body::Request(_) => types::REQUEST,
            Body::Counter(_) => types::COUNTER,
            Body::Accept(_) => types::ACCEPT,
            Body::Decline(_) => types::DECLINE,
            Body::Confirm(_) => types::CONFIRM,
            Body::Cancel(_) => types::CANCEL,
        }
    }
}

impl ProtocolEvent {
    /// The Matrix event type to send this event as.
    pub fn event_type(&self) -> &'static str {
        match self {
            ProtocolEvent::Message(m) => m.body.event_type(),
            ProtocolEvent::Reject(_) => types::REJECT,
        }
    }

    /// The negotiation the event belongs to; `None` only for a rejection of content whose
    /// negotiation could not be read.
    pub fn negotiation_id(&self) -> Option<&NegotiationId> {
        match self {
            ProtocolEvent::Message(m) => Some(&m.negotiation_id),
            ProtocolEvent::Reject(r) => r.negotiation_id.as_ref(),
        }
    }
}

impl Serialize for ProtocolEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct WireReject<'a> {
            version: &'static str,
            #[serde(flatten)]
            reject: &'a Reject,
        }
        match self {
            ProtocolEvent::Message(m) => m.serialize(serializer),
            ProtocolEvent::Reject(reject) => WireReject {
                version: VERSION,
                reject,
            }
            .serialize(serializer),
        }
    }
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            version: &'static str,
            negotiation_id: &'a NegotiationId,
            seq: u64,
            #[serde(flatten)]
            body: &'a Body,
        }
        Wire {
            version: VERSION,
            negotiation_id: &self.negotiation_id,
            seq: self.seq,
            body: &self.body,
        }
        .serialize(serializer)
    }
}

/// Checks a list of offered slots on its own: 1 to [`MAX_SLOTS`] slots, strictly ascending.
pub(crate) fn check_slot_list(slots: &[Interval]) -> Result<(), String> {
    if slots.is_empty() || slots.len() > MAX_SLOTS {
        return Err(format!(
            "slots must hold 1 to {MAX_SLOTS} slots, not {}",
            slots.len()
        ));
    }
    if slots
        .windows(2)
        .any(|pair| pair[0].start() >= pair[1].start())
    {
        return Err("slots must be sorted by start, earliest first, without repeats".into());
    }
    Ok(())
}

/// Checks offered slots against the request they answer: each inside `window` and exactly
/// `duration_minutes` long.
pub(crate) fn check_slots_fit(
    slots: &[Interval],
    window: &Interval,
    duration_minutes: u32,
) -> Result<(), String> {
    for slot in slots {
        if !window.contains(slot) {
            return Err(format!("slot {slot:?} is not inside the window {window:?}"));
        }
        if slot.duration() != chrono::TimeDelta::minutes(i64::from(duration_minutes)) {
            return Err(format!(
                "slot {slot:?} is not {duration_minutes} minutes long"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod samples;
