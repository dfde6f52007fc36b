//! Reacting to the own owner and to the passing of time.

use chrono::DateTime;
use chrono::Utc;

use super::{
    CalendarWrite, Context, Negotiation, NegotiationError, Notice, Outcome, Output, Phase, Role,
    StartMeeting,
};
use crate::protocol::{
    MAX_SLOTS, MAX_TEXT,
    events::{Accept, Body, Cancel, DeclineReason, Hello, MeetingRequest},
    free_time::{candidate_slots, free_time},
    ids::check_text,
    time::Interval,
};

impl Negotiation {
    /// The owner asks for a meeting: offer up to 50 free slots, or report that there are none.
    pub(super) fn start(
        &mut self,
        start: StartMeeting,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, NegotiationError> {
        if self.role.is_some() || self.phase != Phase::Idle {
            return Err(NegotiationError::AlreadyStarted);
        }
        if start.peer.owner == self.me.owner || start.peer.twin == self.me.twin {
            return Err(NegotiationError::InvalidMeeting(
                "an owner cannot meet themselves".into(),
            ));
        }
        let mut request = MeetingRequest {
            title: start.title,
            duration_minutes: start.duration_minutes,
            window: start.window,
            time_zone: ctx.hours.time_zone.name().to_owned(),
            slots: Vec::new(),
        };
        request
            .validate_terms()
            .map_err(NegotiationError::InvalidMeeting)?;
        let free = free_time(&request.window, ctx.now, ctx.hours, ctx.busy);
        request.slots = candidate_slots(&free, request.duration(), self.config.step, MAX_SLOTS);
        self.role = Some(Role::Requester);
        self.peer = Some(start.peer);
        let offered = request.slots.clone();
        self.request = Some(request.clone());
        if offered.is_empty() {
            // Nothing to offer: the peer is never contacted.
            self.end(Outcome::DeclinedByUs {
                reason: DeclineReason::NoCommonSlot,
            });
            return Ok(vec![Output::Notify(Notice::NoCommonSlot)]);
        }
        let hello = self.send(Body::Hello(Box::new(Hello::new(
            self.me.owner.clone(),
            self.me.twin.clone(),
        ))));
        let request = self.send(Body::Request(request));
        self.enter(Phase::AwaitingAnswer { offered }, ctx.now);
        Ok(vec![hello, request])
    }

    /// The owner picks one of the slots put to them.
    pub(super) fn approve(
        &mut self,
        slot: Interval,
        now: DateTime<Utc>,
    ) -> Result<Vec<Output>, NegotiationError> {
        let Phase::AwaitingOwner { candidates } = &self.phase else {
            return Err(NegotiationError::NotAwaitingOwner);
        };
        if !candidates.contains(&slot) {
            return Err(NegotiationError::NotACandidate);
        }
        let accept = self.send(Body::Accept(Accept { slot }));
        self.enter(Phase::AwaitingConfirm { slot }, now);
        Ok(vec![accept])
    }

    /// The owner turns the request down.
    pub(super) fn owner_decline(&mut self) -> Result<Vec<Output>, NegotiationError> {
        if !matches!(self.phase, Phase::AwaitingOwner { .. }) {
            return Err(NegotiationError::NotAwaitingOwner);
        }
        let decline = self.decline_and_end(DeclineReason::OwnerDeclined, None);
        Ok(vec![decline])
    }

    /// The owner calls it off: a cancel (and calendar removal) once agreed, a decline before.
    pub(super) fn owner_cancel(&mut self, reason: String) -> Result<Vec<Output>, NegotiationError> {
        check_text("reason", &reason, 1, MAX_TEXT).map_err(NegotiationError::InvalidReason)?;
        match &self.phase {
            Phase::Idle | Phase::Ended { .. } => Err(NegotiationError::NothingToCancel),
            Phase::Agreed { uid, .. } => {
                let uid = uid.clone();
                let cancel = self.send(Body::Cancel(Cancel {
                    uid: uid.clone(),
                    reason,
                }));
                self.end(Outcome::Cancelled);
                Ok(vec![
                    cancel,
                    Output::Calendar(CalendarWrite::Remove { uid }),
                ])
            }
            _ => {
                let decline = self.decline_and_end(DeclineReason::Cancelled, Some(reason));
                Ok(vec![decline])
            }
        }
    }

    /// Past the deadline, waiting ends: the peer gets a `timeout` decline, the owner a notice.
    pub(super) fn tick(&mut self, now: DateTime<Utc>) -> Vec<Output> {
        match self.deadline {
            Some(deadline) if now >= deadline => {
                let decline = self.decline_and_end(DeclineReason::Timeout, None);
                vec![decline, Output::Notify(Notice::TimedOut)]
            }
            _ => Vec::new(),
        }
    }
}
