//! One sample of every event, shared by the wire-format snapshots and the JSON Schema tests.

use ruma::owned_user_id;

use super::*;
use crate::protocol::{ids::Uid, time::tests::iv};

fn message(seq: u64, body: Body) -> ProtocolEvent {
    ProtocolEvent::Message(Message {
        negotiation_id: negotiation_id(),
        seq,
        body,
    })
}

/// The negotiation every sample belongs to.
pub(crate) fn negotiation_id() -> NegotiationId {
    NegotiationId::new("6f1c2e0a-9a8b-4c1d-8e7f-0123456789ab").unwrap()
}

pub(crate) fn hello() -> ProtocolEvent {
    let mut hello = Hello::new(
        owned_user_id!("@alice:hs1"),
        owned_user_id!("@alice_ai:hs1"),
    );
    // Pinned so that a crate version bump does not change the snapshot.
    hello.agent_card.version = "0.1.0".into();
    message(1, Body::Hello(Box::new(hello)))
}

pub(crate) fn request_body() -> MeetingRequest {
    MeetingRequest {
        title: "Coffee about the Q3 roadmap".into(),
        duration_minutes: 30,
        window: iv("2026-05-04T00:00:00Z", "2026-05-09T00:00:00Z"),
        time_zone: "Europe/Berlin".into(),
        slots: vec![
            iv("2026-05-04T07:00:00Z", "2026-05-04T07:30:00Z"),
            iv("2026-05-04T07:15:00Z", "2026-05-04T07:45:00Z"),
            iv("2026-05-05T13:00:00Z", "2026-05-05T13:30:00Z"),
        ],
    }
}

pub(crate) fn request() -> ProtocolEvent {
    message(2, Body::Request(request_body()))
}

pub(crate) fn counter() -> ProtocolEvent {
    message(
        2,
        Body::Counter(Counter {
            slots: vec![
                iv("2026-05-06T08:00:00Z", "2026-05-06T08:30:00Z"),
                iv("2026-05-06T14:30:00Z", "2026-05-06T15:00:00Z"),
            ],
        }),
    )
}

pub(crate) fn accept() -> ProtocolEvent {
    message(
        2,
        Body::Accept(Accept {
            slot: iv("2026-05-04T07:15:00Z", "2026-05-04T07:45:00Z"),
        }),
    )
}

pub(crate) fn decline() -> ProtocolEvent {
    message(
        2,
        Body::Decline(Decline {
            reason: DeclineReason::NoCommonSlot,
            text: Some("Bob is travelling that week.".into()),
        }),
    )
}

pub(crate) fn confirm() -> ProtocolEvent {
    message(
        3,
        Body::Confirm(Confirm {
            slot: iv("2026-05-04T07:15:00Z", "2026-05-04T07:45:00Z"),
            uid: Uid::from(negotiation_id()),
        }),
    )
}

pub(crate) fn cancel() -> ProtocolEvent {
    message(
        4,
        Body::Cancel(Cancel {
            uid: Uid::from(negotiation_id()),
            reason: "Alice is ill.".into(),
        }),
    )
}

pub(crate) fn reject() -> ProtocolEvent {
    ProtocolEvent::Reject(Reject::new(
        Some(negotiation_id()),
        RejectCode::OutOfOrder,
        "confirm received before any accept",
        Some(types::CONFIRM),
        Some("$h29iv0s8:hs2"),
    ))
}

/// Every sample, with its event type.
pub(crate) fn all() -> Vec<ProtocolEvent> {
    vec![
        hello(),
        request(),
        counter(),
        accept(),
        decline(),
        confirm(),
        cancel(),
        reject(),
    ]
}
