//! Events that do not fit, duplicates, impostors, and callers' mistakes.

use super::*;
use crate::protocol::{
    events::{Accept, Body, Confirm, Hello, Message, Reject, RejectCode, types},
    ids::Uid,
};

/// Bob after the hellos, waiting for Alice's request.
fn bob_after_hello(pair: &mut Pair) -> Vec<ProtocolEvent> {
    let outputs = pair
        .alice
        .handle(Input::Start(start_meeting()), pair.now)
        .unwrap();
    let sent: Vec<_> = outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::Send(e) => Some(e),
            _ => None,
        })
        .collect();
    pair.bob.receive(&alice(), &sent[0], pair.now);
    assert_eq!(pair.bob.phase(), &Phase::AwaitingRequest);
    sent
}

fn message(seq: u64, body: Body) -> ProtocolEvent {
    ProtocolEvent::Message(Message {
        negotiation_id: negotiation_id(),
        seq,
        body,
    })
}

fn rejected(outputs: &[Output]) -> (RejectCode, String) {
    match outputs {
        [Output::Send(ProtocolEvent::Reject(r))] => (r.code, r.detail.clone()),
        other => panic!("expected exactly one reject, got {other:?}"),
    }
}

fn state(side: &Side) -> String {
    serde_json::to_string(&side.n).unwrap()
}

#[test]
fn a_confirm_before_any_accept_is_rejected_out_of_order_and_changes_nothing() {
    let mut pair = Pair::new();
    bob_after_hello(&mut pair);
    let before = state(&pair.bob);
    let confirm = message(
        2,
        Body::Confirm(Confirm {
            slot: window(),
            uid: Uid::from(negotiation_id()),
        }),
    );
    let outputs = pair.bob.receive(&alice(), &confirm, pair.now);
    let (code, detail) = rejected(&outputs);
    assert_eq!(code, RejectCode::OutOfOrder);
    assert!(detail.contains("before any accept"));
    assert_eq!(state(&pair.bob), before);
    let Output::Send(reject) = &outputs[0] else {
        panic!()
    };
    let ProtocolEvent::Reject(reject) = over_the_wire(reject) else {
        panic!()
    };
    assert_eq!(reject.event_type.as_deref(), Some(types::CONFIRM));
    assert_eq!(reject.event_id.as_deref(), Some("$ev:hs"));
}

#[test]
fn anything_before_the_hello_is_out_of_order() {
    let mut pair = Pair::new();
    let accept = message(1, Body::Accept(Accept { slot: window() }));
    let (code, _) = rejected(&pair.bob.receive(&alice(), &accept, pair.now));
    assert_eq!(code, RejectCode::OutOfOrder);
    assert_eq!(pair.bob.phase(), &Phase::Idle);
}

#[test]
fn a_second_request_or_hello_is_out_of_order() {
    let mut pair = Pair::new();
    pair.bob.policy.auto_accept = false;
    let sent = bob_after_hello(&mut pair);
    pair.bob.receive(&alice(), &sent[1], pair.now);
    let ProtocolEvent::Message(request) = sent[1].clone() else {
        panic!()
    };
    let again = ProtocolEvent::Message(Message { seq: 3, ..request });
    assert_eq!(
        rejected(&pair.bob.receive(&alice(), &again, pair.now)).0,
        RejectCode::OutOfOrder
    );
    let ProtocolEvent::Message(hello) = sent[0].clone() else {
        panic!()
    };
    let again = ProtocolEvent::Message(Message { seq: 4, ..hello });
    assert_eq!(
        rejected(&pair.bob.receive(&alice(), &again, pair.now)).0,
        RejectCode::OutOfOrder
    );
}

#[test]
fn duplicates_are_ignored_silently() {
    let mut pair = Pair::new();
    pair.start();
    let (alice_before, bob_before) = (state(&pair.alice), state(&pair.bob));
    for event in pair.alice.sent.clone() {
        assert!(
            pair.bob.receive(&alice(), &event, pair.now).is_empty(),
            "{event:?}"
        );
    }
    for event in pair.bob.sent.clone() {
        assert!(
            pair.alice.receive(&bob(), &event, pair.now).is_empty(),
            "{event:?}"
        );
    }
    assert_eq!(
        (state(&pair.alice), state(&pair.bob)),
        (alice_before, bob_before)
    );
    assert_eq!(
        pair.alice.calendar.len(),
        1,
        "a repeated confirm books nothing twice"
    );
}

#[test]
fn an_accept_of_a_slot_never_offered_is_malformed() {
    let mut pair = Pair::new();
    let outputs = pair
        .alice
        .handle(Input::Start(start_meeting()), pair.now)
        .unwrap();
    drop(outputs);
    pair.alice.receive(
        &bob(),
        &message(
            1,
            Body::Hello(Box::new(Hello::new(bob().owner, bob().twin))),
        ),
        pair.now,
    );
    let before = state(&pair.alice);
    let sunday = iv("2026-05-03T10:00:00Z", "2026-05-03T10:30:00Z");
    let outputs = pair.alice.receive(
        &bob(),
        &message(2, Body::Accept(Accept { slot: sunday })),
        pair.now,
    );
    assert_eq!(rejected(&outputs).0, RejectCode::Malformed);
    assert_eq!(state(&pair.alice), before);
}

#[test]
fn a_counter_outside_the_window_is_malformed() {
    let mut pair = Pair::new();
    pair.alice
        .handle(Input::Start(start_meeting()), pair.now)
        .unwrap();
    pair.alice.receive(
        &bob(),
        &message(
            1,
            Body::Hello(Box::new(Hello::new(bob().owner, bob().twin))),
        ),
        pair.now,
    );
    let late = iv("2026-06-01T10:00:00Z", "2026-06-01T10:30:00Z");
    let counter = message(
        2,
        Body::Counter(crate::protocol::events::Counter { slots: vec![late] }),
    );
    let (code, detail) = rejected(&pair.alice.receive(&bob(), &counter, pair.now));
    assert_eq!(code, RejectCode::Malformed);
    assert!(detail.contains("window"));
}

#[test]
fn events_of_another_negotiation_or_from_a_stranger_are_rejected() {
    let mut pair = Pair::new();
    let sent = bob_after_hello(&mut pair);
    let ProtocolEvent::Message(request) = sent[1].clone() else {
        panic!()
    };
    let other = crate::protocol::NegotiationId::new("n-43").unwrap();
    let foreign = ProtocolEvent::Message(Message {
        negotiation_id: other,
        ..request
    });
    assert_eq!(
        rejected(&pair.bob.receive(&alice(), &foreign, pair.now)).0,
        RejectCode::UnknownNegotiation
    );
    let mallory = Party {
        owner: ruma::owned_user_id!("@mallory:hs3"),
        twin: ruma::owned_user_id!("@mallory_ai:hs3"),
    };
    assert_eq!(
        rejected(&pair.bob.receive(&mallory, &sent[1], pair.now)).0,
        RejectCode::NotAllowed
    );
    assert_eq!(pair.bob.phase(), &Phase::AwaitingRequest);
}

#[test]
fn a_hello_naming_another_owner_fails_the_negotiation() {
    let mut pair = Pair::new();
    pair.alice
        .handle(Input::Start(start_meeting()), pair.now)
        .unwrap();
    // @bob_ai:hs2 turns out to be the twin of somebody else.
    let impostor = Hello::new(ruma::owned_user_id!("@robert:hs2"), bob().twin);
    let outputs = pair.alice.receive(
        &bob(),
        &message(1, Body::Hello(Box::new(impostor))),
        pair.now,
    );
    assert!(
        matches!(&outputs[0], Output::Send(ProtocolEvent::Reject(r)) if r.code == RejectCode::NotAllowed)
    );
    assert!(matches!(
        pair.alice.notices.last(),
        Some(Notice::Failed {
            code: RejectCode::NotAllowed,
            ..
        })
    ));
    assert_eq!(
        pair.alice.phase(),
        &Phase::Ended {
            outcome: Outcome::Failed {
                code: RejectCode::NotAllowed
            }
        }
    );
}

#[test]
fn a_hello_whose_twin_is_not_its_sender_is_refused() {
    let mut pair = Pair::new();
    let hello = message(
        1,
        Body::Hello(Box::new(Hello::new(
            alice().owner,
            ruma::owned_user_id!("@alice_bot:hs1"),
        ))),
    );
    assert_eq!(
        rejected(&pair.bob.receive(&alice(), &hello, pair.now)).0,
        RejectCode::NotAllowed
    );
    assert_eq!(pair.bob.n.role(), None);
}

#[test]
fn a_fatal_reject_ends_the_negotiation_but_out_of_order_does_not() {
    let mut pair = Pair::new();
    pair.alice
        .handle(Input::Start(start_meeting()), pair.now)
        .unwrap();
    let reject = |code| {
        ProtocolEvent::Reject(Reject::new(
            Some(negotiation_id()),
            code,
            "no",
            Some(types::REQUEST),
            None,
        ))
    };
    assert!(
        pair.alice
            .receive(&bob(), &reject(RejectCode::OutOfOrder), pair.now)
            .is_empty()
    );
    assert!(matches!(pair.alice.phase(), Phase::AwaitingAnswer { .. }));
    let outputs = pair
        .alice
        .receive(&bob(), &reject(RejectCode::UnknownVersion), pair.now);
    assert_eq!(
        outputs,
        vec![Output::Notify(Notice::Failed {
            code: RejectCode::UnknownVersion,
            detail: "no".into()
        })]
    );
    assert!(pair.alice.n.is_finished());
    assert!(
        pair.alice
            .receive(&bob(), &reject(RejectCode::Malformed), pair.now)
            .is_empty(),
        "never answered"
    );
}

#[test]
fn callers_mistakes_are_errors_that_change_nothing() {
    let mut pair = Pair::new();
    let mut bad = start_meeting();
    bad.duration_minutes = 500;
    assert!(matches!(
        pair.alice.handle(Input::Start(bad), pair.now),
        Err(NegotiationError::InvalidMeeting(_))
    ));
    let mut myself = start_meeting();
    myself.peer = alice();
    assert!(matches!(
        pair.alice.handle(Input::Start(myself), pair.now),
        Err(NegotiationError::InvalidMeeting(_))
    ));
    assert_eq!(pair.alice.phase(), &Phase::Idle);
    assert_eq!(
        pair.alice.handle(Input::OwnerDecline, pair.now),
        Err(NegotiationError::NotAwaitingOwner)
    );
    assert_eq!(
        pair.alice
            .handle(Input::OwnerCancel { reason: "x".into() }, pair.now),
        Err(NegotiationError::NothingToCancel)
    );
    pair.bob.policy.auto_accept = false;
    pair.start();
    assert_eq!(
        pair.alice.handle(Input::Start(start_meeting()), pair.now),
        Err(NegotiationError::AlreadyStarted)
    );
    assert_eq!(
        pair.bob
            .handle(Input::OwnerApprove { slot: window() }, pair.now),
        Err(NegotiationError::NotACandidate)
    );
    assert!(matches!(
        pair.bob.handle(
            Input::OwnerCancel {
                reason: String::new()
            },
            pair.now
        ),
        Err(NegotiationError::InvalidReason(_))
    ));
    assert!(matches!(pair.bob.phase(), Phase::AwaitingOwner { .. }));
}
