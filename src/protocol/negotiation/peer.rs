//! Reacting to events from the peer twin.

use ruma::UserId;

use super::{
    CalendarWrite, Context, Negotiation, Notice, Outcome, Output, Party, Phase, Received, Role,
};
use crate::protocol::{
    MAX_SLOTS,
    events::{
        Accept, Body, Cancel, Confirm, Counter, Decline, DeclineReason, Hello, MeetingRequest,
        ProtocolEvent, Reject, RejectCode, check_slots_fit, types,
    },
    free_time::{candidate_slots, fits},
    ids::Uid,
};

/// Why a received event is refused: answered with a reject, state unchanged.
type Refusal = (RejectCode, String);

fn out_of_order(what: &str) -> Refusal {
    (RejectCode::OutOfOrder, what.to_owned())
}

impl Negotiation {
    pub(super) fn receive(&mut self, received: Received, ctx: &Context<'_>) -> Vec<Output> {
        let Received {
            sender,
            event,
            event_id,
        } = received;
        let message = match event {
            ProtocolEvent::Reject(reject) => return self.on_reject(reject, &sender),
            ProtocolEvent::Message(message) => message,
        };
        let event_type = message.body.event_type();
        let event_id = event_id.as_deref();
        if message.negotiation_id != self.id {
            let detail = format!("this room's negotiation is {}", self.id);
            return vec![self.reject(RejectCode::UnknownNegotiation, detail, event_type, event_id)];
        }
        if let Some(peer) = self.peer.as_ref().filter(|peer| peer.twin != sender) {
            let detail = format!("only {} takes part in this negotiation", peer.twin);
            return vec![self.reject(RejectCode::NotAllowed, detail, event_type, event_id)];
        }
        if self.is_finished() || message.seq <= self.received_seq {
            return Vec::new();
        }
        let result = match message.body {
            Body::Hello(hello) => self.on_hello(hello, &sender, event_id, ctx),
            _ if !self.peer_hello => Err(out_of_order("the peer's hello must come first")),
            Body::Request(request) => self.on_request(request, ctx),
            Body::Counter(counter) => self.on_counter(counter, ctx),
            Body::Accept(accept) => self.on_accept(accept, ctx),
            Body::Decline(decline) => Ok(self.on_decline(decline)),
            Body::Confirm(confirm) => self.on_confirm(confirm, ctx),
            Body::Cancel(cancel) => self.on_cancel(cancel),
        };
        match result {
            Ok(outputs) => {
                self.received_seq = message.seq;
                outputs
            }
            Err((code, detail)) => vec![self.reject(code, detail, event_type, event_id)],
        }
    }

    fn on_hello(
        &mut self,
        hello: Box<Hello>,
        sender: &UserId,
        event_id: Option<&str>,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, Refusal> {
        if self.peer_hello {
            return Err(out_of_order("hello was already received"));
        }
        let Some(expected) = self.peer.clone() else {
            // First contact: this side answers the request to come.
            if hello.twin != sender {
                return Err((
                    RejectCode::NotAllowed,
                    "hello.twin must be the sender".into(),
                ));
            }
            self.role = Some(Role::Responder);
            self.peer = Some(Party {
                owner: hello.owner,
                twin: hello.twin,
            });
            self.peer_hello = true;
            let own = self.send(Body::Hello(Box::new(Hello::new(
                self.me.owner.clone(),
                self.me.twin.clone(),
            ))));
            self.enter(Phase::AwaitingRequest, ctx.now);
            return Ok(vec![own]);
        };
        if hello.owner != expected.owner || hello.twin != expected.twin {
            let detail = format!(
                "{} introduced itself as the twin of {}, not of {}",
                hello.twin, hello.owner, expected.owner
            );
            let reject = self.reject(
                RejectCode::NotAllowed,
                detail.clone(),
                types::HELLO,
                event_id,
            );
            self.end(Outcome::Failed {
                code: RejectCode::NotAllowed,
            });
            let notice = Notice::Failed {
                code: RejectCode::NotAllowed,
                detail,
            };
            return Ok(vec![reject, Output::Notify(notice)]);
        }
        self.peer_hello = true;
        Ok(Vec::new())
    }

    fn on_request(
        &mut self,
        request: MeetingRequest,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, Refusal> {
        let (Some(Role::Responder), Phase::AwaitingRequest, Some(peer)) =
            (self.role, &self.phase, &self.peer)
        else {
            return Err(out_of_order(
                "a request is only taken once, by the responder, after the hellos",
            ));
        };
        let from = peer.owner.clone();
        let duration = request.duration();
        let offered = request.slots.clone();
        self.request = Some(request);
        if !ctx.policy.allowed {
            let decline = self.decline_and_end(DeclineReason::NotAllowed, None);
            return Ok(vec![decline]);
        }
        let free = self.free(ctx);
        let common: Vec<_> = offered
            .into_iter()
            .filter(|slot| fits(slot, &free))
            .collect();
        if let Some(&earliest) = common.first() {
            if ctx.policy.auto_accept {
                let accept = self.send(Body::Accept(Accept { slot: earliest }));
                self.enter(Phase::AwaitingConfirm { slot: earliest }, ctx.now);
                return Ok(vec![accept]);
            }
            let ask = Notice::AskOwner {
                from,
                slots: common.clone(),
            };
            self.enter(Phase::AwaitingOwner { candidates: common }, ctx.now);
            return Ok(vec![Output::Notify(ask)]);
        }
        let own = candidate_slots(&free, duration, self.config.step, MAX_SLOTS);
        if own.is_empty() {
            let decline = self.decline_and_end(DeclineReason::NoCommonSlot, None);
            return Ok(vec![decline]);
        }
        let counter = self.send(Body::Counter(Counter { slots: own.clone() }));
        self.enter(Phase::AwaitingAnswer { offered: own }, ctx.now);
        Ok(vec![counter])
    }

    fn on_counter(&mut self, counter: Counter, ctx: &Context<'_>) -> Result<Vec<Output>, Refusal> {
        let (Some(Role::Requester), Phase::AwaitingAnswer { .. }, Some(request)) =
            (self.role, &self.phase, &self.request)
        else {
            return Err(out_of_order("a counter only answers a request"));
        };
        check_slots_fit(&counter.slots, &request.window, request.duration_minutes)
            .map_err(|detail| (RejectCode::Malformed, detail))?;
        let free = self.free(ctx);
        match counter.slots.iter().find(|slot| fits(slot, &free)) {
            Some(&slot) => {
                let accept = self.send(Body::Accept(Accept { slot }));
                self.enter(Phase::AwaitingConfirm { slot }, ctx.now);
                Ok(vec![accept])
            }
            None => {
                let decline = self.decline_and_end(DeclineReason::NoCommonSlot, None);
                Ok(vec![decline, Output::Notify(Notice::NoCommonSlot)])
            }
        }
    }

    fn on_accept(&mut self, accept: Accept, ctx: &Context<'_>) -> Result<Vec<Output>, Refusal> {
        let Phase::AwaitingAnswer { offered } = &self.phase else {
            return Err(out_of_order("nothing was offered that could be accepted"));
        };
        let slot = accept.slot;
        if !offered.contains(&slot) {
            return Err((
                RejectCode::Malformed,
                format!("slot {slot:?} was not offered"),
            ));
        }
        if !fits(&slot, &self.free(ctx)) {
            // Our owner's calendar changed since the offer (or the slot has begun).
            let text = Some("The accepted slot is no longer free.".to_owned());
            let decline = self.decline_and_end(DeclineReason::Other, text);
            return Ok(vec![decline, Output::Notify(Notice::NoCommonSlot)]);
        }
        let uid = Uid::from(self.id.clone());
        let confirm = self.send(Body::Confirm(Confirm {
            slot,
            uid: uid.clone(),
        }));
        let write = CalendarWrite::Add {
            uid: uid.clone(),
            title: self.title(),
            slot,
        };
        self.enter(
            Phase::Agreed {
                slot,
                uid: uid.clone(),
            },
            ctx.now,
        );
        Ok(vec![
            confirm,
            Output::Calendar(write),
            Output::Notify(Notice::Agreed { slot, uid }),
        ])
    }

    fn on_decline(&mut self, decline: Decline) -> Vec<Output> {
        let mut outputs = Vec::new();
        if let Phase::Agreed { uid, .. } = &self.phase {
            // Our confirm was lost and the peer gave up: the meeting is off.
            outputs.push(Output::Calendar(CalendarWrite::Remove { uid: uid.clone() }));
        }
        let notice = match decline.reason {
            DeclineReason::NoCommonSlot => Notice::NoCommonSlot,
            reason => Notice::Declined {
                reason,
                text: decline.text,
            },
        };
        outputs.push(Output::Notify(notice));
        self.end(Outcome::DeclinedByPeer {
            reason: decline.reason,
        });
        outputs
    }

    fn on_confirm(&mut self, confirm: Confirm, ctx: &Context<'_>) -> Result<Vec<Output>, Refusal> {
        let Phase::AwaitingConfirm { slot } = self.phase else {
            return Err(out_of_order("confirm received before any accept"));
        };
        if confirm.slot != slot {
            return Err((
                RejectCode::Malformed,
                format!("the accepted slot was {slot:?}"),
            ));
        }
        let uid = confirm.uid;
        let write = CalendarWrite::Add {
            uid: uid.clone(),
            title: self.title(),
            slot,
        };
        self.enter(
            Phase::Agreed {
                slot,
                uid: uid.clone(),
            },
            ctx.now,
        );
        Ok(vec![
            Output::Calendar(write),
            Output::Notify(Notice::Agreed { slot, uid }),
        ])
    }

    fn on_cancel(&mut self, cancel: Cancel) -> Result<Vec<Output>, Refusal> {
        let Phase::Agreed { uid, .. } = &self.phase else {
            return Err(out_of_order("only a confirmed meeting can be cancelled"));
        };
        if cancel.uid != *uid {
            return Err((RejectCode::Malformed, format!("the meeting's uid is {uid}")));
        }
        let remove = CalendarWrite::Remove { uid: cancel.uid };
        self.end(Outcome::Cancelled);
        Ok(vec![
            Output::Calendar(remove),
            Output::Notify(Notice::Cancelled {
                reason: cancel.reason,
            }),
        ])
    }

    /// A reject is never answered. `out_of_order` leaves the state alone (the deadline still runs);
    /// any other code ends the negotiation, undoing a booked meeting.
    fn on_reject(&mut self, reject: Reject, sender: &UserId) -> Vec<Output> {
        let ours = reject
            .negotiation_id
            .as_ref()
            .is_none_or(|id| *id == self.id);
        let from_peer = self.peer.as_ref().is_some_and(|peer| peer.twin == sender);
        if !ours || !from_peer || self.is_finished() || reject.code == RejectCode::OutOfOrder {
            return Vec::new();
        }
        let mut outputs = Vec::new();
        if let Phase::Agreed { uid, .. } = &self.phase {
            outputs.push(Output::Calendar(CalendarWrite::Remove { uid: uid.clone() }));
        }
        outputs.push(Output::Notify(Notice::Failed {
            code: reject.code,
            detail: reject.detail,
        }));
        self.end(Outcome::Failed { code: reject.code });
        outputs
    }
}
