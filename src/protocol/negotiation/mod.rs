//! The negotiation state machine: one per negotiation, one on each side.
//!
//! It is pure: [`Negotiation::handle`] takes an [`Input`] and a [`Context`] (the time, the owner's
//! busy intervals, working hours and policy) and returns [`Output`]s (events to send, calendar
//! writes, notices for the owner), changing only itself. The caller parses received events,
//! persists the negotiation (it is serde-serializable) and carries out the outputs in order.
//!
//! Flow (see `docs/protocol.md` for the diagrams): the requester sends hello and request; the
//! responder answers with its hello and then accept, counter or decline; whoever receives an
//! accept books the meeting and sends confirm; whoever receives the confirm books it too.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{
    events::{
        Body, Decline, DeclineReason, MeetingRequest, Message, ProtocolEvent, Reject, RejectCode,
    },
    free_time::free_time,
    ids::NegotiationId,
    time::Interval,
};

mod io;
mod owner;
mod peer;
mod state;

pub use io::{
    CalendarWrite, Context, Input, NegotiationConfig, NegotiationError, Notice, Output, Party,
    Policy, Received, StartMeeting,
};
pub use state::{Outcome, Phase, Role};

/// One twin's side of one negotiation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Negotiation {
    id: NegotiationId,
    me: Party,
    config: NegotiationConfig,
    role: Option<Role>,
    phase: Phase,
    /// Requester: who it means to reach. Responder: who said hello.
    peer: Option<Party>,
    /// Whether the peer's hello was received.
    peer_hello: bool,
    /// The request, as sent or received (the requester's offered slots included).
    request: Option<MeetingRequest>,
    /// The `seq` of the last event sent.
    sent_seq: u64,
    /// The highest `seq` of a peer event processed; anything at or below it is a duplicate.
    received_seq: u64,
    /// When waiting ends with a `timeout` decline.
    deadline: Option<DateTime<Utc>>,
}

impl Negotiation {
    /// A negotiation with ID `id` for the twin `me`, not started yet. Feed it
    /// [`Input::Start`] to request a meeting, or the peer's hello to answer one.
    pub fn new(id: NegotiationId, me: Party, config: NegotiationConfig) -> Self {
        Negotiation {
            id,
            me,
            config,
            role: None,
            phase: Phase::Idle,
            peer: None,
            peer_hello: false,
            request: None,
            sent_seq: 0,
            received_seq: 0,
            deadline: None,
        }
    }

    /// Reacts to one input. On `Err` nothing changed; received events never cause an `Err` (a
    /// bad one is answered with a reject in the outputs).
    pub fn handle(
        &mut self,
        input: Input,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, NegotiationError> {
        match input {
            Input::Start(start) => self.start(start, ctx),
            Input::Received(received) => Ok(self.receive(received, ctx)),
            Input::OwnerApprove { slot } => self.approve(slot, ctx.now),
            Input::OwnerDecline => self.owner_decline(),
            Input::OwnerCancel { reason } => self.owner_cancel(reason),
            Input::Tick => Ok(self.tick(ctx.now)),
        }
    }

    /// The negotiation's ID.
    pub fn id(&self) -> &NegotiationId {
        &self.id
    }

    /// Which side this twin is on, once known.
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// Where the negotiation stands.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The other side: as started (requester) or as introduced by its hello (responder).
    pub fn peer(&self) -> Option<&Party> {
        self.peer.as_ref()
    }

    /// The meeting request, once sent or received.
    pub fn request(&self) -> Option<&MeetingRequest> {
        self.request.as_ref()
    }

    /// A slot this side accepted and awaits the confirm for: not in the calendar yet, so other
    /// negotiations of the same owner should count it as busy.
    pub fn held_slot(&self) -> Option<Interval> {
        match self.phase {
            Phase::AwaitingConfirm { slot } => Some(slot),
            _ => None,
        }
    }

    /// When the negotiation times out if nothing happens, if it is waiting at all.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.deadline
    }

    /// Whether the negotiation is over (an agreed meeting is not: it can still be cancelled).
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Ended { .. })
    }

    /// The next event of this side's sequence.
    fn send(&mut self, body: Body) -> Output {
        self.sent_seq += 1;
        Output::Send(ProtocolEvent::Message(Message {
            negotiation_id: self.id.clone(),
            seq: self.sent_seq,
            body,
        }))
    }

    /// Declines: the negotiation ends, and the peer is told why.
    fn decline_and_end(&mut self, reason: DeclineReason, text: Option<String>) -> Output {
        let decline = self.send(Body::Decline(Decline { reason, text }));
        self.end(Outcome::DeclinedByUs { reason });
        decline
    }

    /// A reject of a received event (outside the sequence).
    fn reject(
        &self,
        code: RejectCode,
        detail: String,
        event_type: &str,
        event_id: Option<&str>,
    ) -> Output {
        Output::Send(ProtocolEvent::Reject(Reject::new(
            Some(self.id.clone()),
            code,
            detail,
            Some(event_type),
            event_id,
        )))
    }

    /// Moves to `phase`, setting the deadline for whoever is awaited.
    fn enter(&mut self, phase: Phase, now: DateTime<Utc>) {
        let minutes = match phase {
            Phase::Idle | Phase::Agreed { .. } | Phase::Ended { .. } => None,
            Phase::AwaitingOwner { .. } => Some(self.config.owner_timeout_minutes),
            _ => Some(self.config.peer_timeout_minutes),
        };
        self.deadline = minutes.map(|m| now + TimeDelta::minutes(i64::from(m)));
        self.phase = phase;
    }

    /// Ends the negotiation.
    fn end(&mut self, outcome: Outcome) {
        self.deadline = None;
        self.phase = Phase::Ended { outcome };
    }

    /// The own owner's free time in the request's window, from now on.
    fn free(&self, ctx: &Context<'_>) -> Vec<Interval> {
        match &self.request {
            Some(request) => free_time(&request.window, ctx.now, ctx.hours, ctx.busy),
            None => Vec::new(),
        }
    }

    /// The request's title (empty only before a request exists, which no caller of this sees).
    fn title(&self) -> String {
        self.request
            .as_ref()
            .map(|r| r.title.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod tests;
