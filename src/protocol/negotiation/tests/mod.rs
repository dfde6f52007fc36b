//! Two negotiations wired together in memory. Every event crosses as JSON and goes through
//! [`parse`] and the JSON Schema in `docs/schemas/`, as it would between two homeservers.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Europe::{Berlin, London};
use ruma::owned_user_id;

use super::*;
use crate::protocol::{
    events::{DeclineReason, ProtocolEvent},
    free_time::WorkingHours,
    parse,
    schema_tests::assert_matches_schema,
    time::tests::{iv, utc},
};

mod errors;
mod flows;

/// One twin: its negotiation, its owner's calendar facts, and everything it produced.
pub(crate) struct Side {
    pub(crate) n: Negotiation,
    pub busy: Vec<Interval>,
    pub hours: WorkingHours,
    pub(crate) policy: Policy,
    pub sent: Vec<ProtocolEvent>,
    pub calendar: Vec<CalendarWrite>,
    pub notices: Vec<Notice>,
}

impl Side {
    fn new(me: Party, hours: WorkingHours) -> Self {
        Side {
            n: Negotiation::new(negotiation_id(), me, NegotiationConfig::default()),
            busy: Vec::new(),
            hours,
            policy: Policy {
                allowed: true,
                auto_accept: true,
            },
            sent: Vec::new(),
            calendar: Vec::new(),
            notices: Vec::new(),
        }
    }

    pub(crate) fn handle(
        &mut self,
        input: Input,
        now: DateTime<Utc>,
    ) -> Result<Vec<Output>, NegotiationError> {
        let ctx = Context {
            now,
            busy: &self.busy,
            hours: &self.hours,
            policy: self.policy,
        };
        let outputs = self.n.handle(input, &ctx)?;
        for output in &outputs {
            match output {
                Output::Send(event) => self.sent.push(event.clone()),
                Output::Calendar(write) => self.calendar.push(write.clone()),
                Output::Notify(notice) => self.notices.push(notice.clone()),
            }
        }
        Ok(outputs)
    }

    /// Feeds an event as if `sender` had sent it, through the wire format.
    pub(super) fn receive(
        &mut self,
        sender: &Party,
        event: &ProtocolEvent,
        now: DateTime<Utc>,
    ) -> Vec<Output> {
        let received = Received {
            sender: sender.twin.clone(),
            event: over_the_wire(event),
            event_id: Some("$ev:hs".into()),
        };
        self.handle(Input::Received(received), now).unwrap()
    }

    pub(super) fn phase(&self) -> &Phase {
        self.n.phase()
    }
}

/// Serializes, checks against the schema, and parses back, as a receiving twin would.
pub(super) fn over_the_wire(event: &ProtocolEvent) -> ProtocolEvent {
    let content = serde_json::to_value(event).unwrap();
    assert_matches_schema(event.event_type(), &content);
    parse(event.event_type(), &content).unwrap()
}

pub(super) fn negotiation_id() -> crate::protocol::NegotiationId {
    crate::protocol::NegotiationId::new("n-42").unwrap()
}

pub(super) fn alice() -> Party {
    Party {
        owner: owned_user_id!("@alice:hs1"),
        twin: owned_user_id!("@alice_ai:hs1"),
    }
}

pub(super) fn bob() -> Party {
    Party {
        owner: owned_user_id!("@bob:hs2"),
        twin: owned_user_id!("@bob_ai:hs2"),
    }
}

/// Alice (Berlin, requester) and Bob (London, responder), on Friday 1 May 2026 at 08:00 UTC.
pub(crate) struct Pair {
    pub(crate) now: DateTime<Utc>,
    pub(crate) alice: Side,
    pub(crate) bob: Side,
}

/// Monday 4 to Saturday 9 May 2026 (UTC).
pub(super) fn window() -> Interval {
    iv("2026-05-04T00:00:00Z", "2026-05-09T00:00:00Z")
}

pub(super) fn start_meeting() -> StartMeeting {
    StartMeeting {
        peer: bob(),
        title: "Roadmap coffee".into(),
        duration_minutes: 30,
        window: window(),
    }
}

impl Pair {
    pub(crate) fn new() -> Self {
        Pair {
            now: utc("2026-05-01T08:00:00Z"),
            alice: Side::new(alice(), WorkingHours::office(Berlin)),
            bob: Side::new(bob(), WorkingHours::office(London)),
        }
    }

    /// Alice asks; events are delivered until both sides are quiet.
    pub(crate) fn start(&mut self) {
        let outputs = self
            .alice
            .handle(Input::Start(start_meeting()), self.now)
            .unwrap();
        self.deliver(true, outputs);
    }

    /// Delivers `outputs`' events (from Alice if `from_alice`) and every answer, until quiet.
    pub(crate) fn deliver(&mut self, from_alice: bool, outputs: Vec<Output>) {
        let mut queue: VecDeque<(bool, ProtocolEvent)> = outputs
            .into_iter()
            .filter_map(|o| match o {
                Output::Send(event) => Some((from_alice, event)),
                _ => None,
            })
            .collect();
        let mut hops = 0;
        while let Some((from_alice, event)) = queue.pop_front() {
            hops += 1;
            assert!(hops < 100, "the twins keep talking");
            let (to, sender) = if from_alice {
                (&mut self.bob, alice())
            } else {
                (&mut self.alice, bob())
            };
            for output in to.receive(&sender, &event, self.now) {
                if let Output::Send(answer) = output {
                    queue.push_back((!from_alice, answer));
                }
            }
        }
    }

    pub(super) fn later(&mut self, minutes: i64) {
        self.now += TimeDelta::minutes(minutes);
    }
}

/// An owner busy all day on each given date (UTC).
pub(super) fn busy_days(days: &[&str]) -> Vec<Interval> {
    days.iter()
        .map(|d| iv(&format!("{d}T00:00:00Z"), &format!("{d}T23:59:59Z")))
        .collect()
}

pub(super) fn declined(reason: DeclineReason) -> Phase {
    Phase::Ended {
        outcome: Outcome::DeclinedByUs { reason },
    }
}
