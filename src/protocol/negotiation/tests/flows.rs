//! Whole negotiations between two twins.

use super::*;
use crate::protocol::{events::Body, ids::Uid};

fn agreed_at(start: &str, end: &str) -> (Interval, Uid) {
    (iv(start, end), Uid::from(negotiation_id()))
}

fn assert_agreed(pair: &Pair, slot: Interval, uid: &Uid) {
    for side in [&pair.alice, &pair.bob] {
        assert_eq!(
            side.phase(),
            &Phase::Agreed {
                slot,
                uid: uid.clone()
            }
        );
        let add = CalendarWrite::Add {
            uid: uid.clone(),
            title: "Roadmap coffee".into(),
            slot,
        };
        assert_eq!(side.calendar, vec![add], "one calendar write per side");
        assert_eq!(
            side.notices,
            vec![Notice::Agreed {
                slot,
                uid: uid.clone()
            }]
        );
        assert_eq!(side.n.deadline(), None);
    }
}

fn sent_types(side: &Side) -> Vec<&'static str> {
    side.sent.iter().map(|e| e.event_type()).collect()
}

#[test]
fn happy_path_books_the_earliest_common_slot_in_both_calendars() {
    let mut pair = Pair::new();
    pair.start();
    // Alice is free from 07:00 UTC (09:00 Berlin), Bob from 08:00 UTC (09:00 London).
    let (slot, uid) = agreed_at("2026-05-04T08:00:00Z", "2026-05-04T08:30:00Z");
    assert_agreed(&pair, slot, &uid);
    assert_eq!(
        sent_types(&pair.alice),
        [
            "dev.matrixos.a2a.hello",
            "dev.matrixos.a2a.request",
            "dev.matrixos.a2a.confirm"
        ]
    );
    assert_eq!(
        sent_types(&pair.bob),
        ["dev.matrixos.a2a.hello", "dev.matrixos.a2a.accept"]
    );
    let Some(ProtocolEvent::Message(request)) = pair.alice.sent.get(1) else {
        panic!()
    };
    let Body::Request(request) = &request.body else {
        panic!("not a request")
    };
    assert_eq!(
        request.slots.len(),
        50,
        "the requester offers at most 50 slots"
    );
    assert_eq!(request.time_zone, "Europe/Berlin");
    assert_eq!(pair.bob.n.peer(), Some(&alice()));
}

#[test]
fn busy_calendars_force_a_counter_then_agreement() {
    let mut pair = Pair::new();
    // Bob is away Monday and Tuesday, which covers all 50 slots Alice offers.
    pair.bob.busy = busy_days(&["2026-05-04", "2026-05-05"]);
    pair.start();
    let (slot, uid) = agreed_at("2026-05-06T08:00:00Z", "2026-05-06T08:30:00Z");
    assert_agreed(&pair, slot, &uid);
    assert_eq!(
        sent_types(&pair.bob),
        [
            "dev.matrixos.a2a.hello",
            "dev.matrixos.a2a.counter",
            "dev.matrixos.a2a.confirm"
        ],
        "whoever receives the accept confirms"
    );
    assert_eq!(sent_types(&pair.alice)[2], "dev.matrixos.a2a.accept");
}

#[test]
fn no_common_slot_after_a_counter_is_reported_clearly() {
    let mut pair = Pair::new();
    pair.alice.busy = busy_days(&["2026-05-06", "2026-05-07", "2026-05-08"]);
    pair.bob.busy = busy_days(&["2026-05-04", "2026-05-05"]);
    pair.start();
    assert_eq!(pair.alice.notices, vec![Notice::NoCommonSlot]);
    assert_eq!(pair.bob.notices, vec![Notice::NoCommonSlot]);
    assert_eq!(pair.alice.phase(), &declined(DeclineReason::NoCommonSlot));
    assert!(pair.alice.calendar.is_empty() && pair.bob.calendar.is_empty());
}

#[test]
fn a_responder_without_any_free_time_declines_no_common_slot() {
    let mut pair = Pair::new();
    pair.bob.busy = vec![window()];
    pair.start();
    assert_eq!(
        sent_types(&pair.bob),
        ["dev.matrixos.a2a.hello", "dev.matrixos.a2a.decline"]
    );
    assert_eq!(pair.alice.notices, vec![Notice::NoCommonSlot]);
    assert_eq!(
        pair.alice.phase(),
        &Phase::Ended {
            outcome: Outcome::DeclinedByPeer {
                reason: DeclineReason::NoCommonSlot
            }
        }
    );
}

#[test]
fn a_requester_without_free_time_never_contacts_the_peer() {
    let mut pair = Pair::new();
    pair.alice.busy = vec![window()];
    pair.start();
    assert!(pair.alice.sent.is_empty());
    assert_eq!(pair.alice.notices, vec![Notice::NoCommonSlot]);
}

#[test]
fn without_auto_accept_the_owner_is_asked_and_decides() {
    let mut pair = Pair::new();
    pair.bob.policy.auto_accept = false;
    pair.start();
    let Some(Notice::AskOwner { from, slots }) = pair.bob.notices.first().cloned() else {
        panic!("owner not asked: {:?}", pair.bob.notices)
    };
    assert_eq!(from, alice().owner);
    assert_eq!(slots[0], iv("2026-05-04T08:00:00Z", "2026-05-04T08:30:00Z"));
    assert_eq!(
        sent_types(&pair.bob),
        ["dev.matrixos.a2a.hello"],
        "nothing sent before the owner decides"
    );
    assert_eq!(pair.bob.n.deadline(), Some(pair.now + TimeDelta::hours(24)));

    pair.later(30);
    let outputs = pair
        .bob
        .handle(Input::OwnerApprove { slot: slots[2] }, pair.now)
        .unwrap();
    assert_eq!(pair.bob.n.held_slot(), Some(slots[2]));
    pair.deliver(false, outputs);
    assert_agreed_with_ask(&pair, slots[2]);
}

fn assert_agreed_with_ask(pair: &Pair, slot: Interval) {
    let uid = Uid::from(negotiation_id());
    assert_eq!(
        pair.alice.phase(),
        &Phase::Agreed {
            slot,
            uid: uid.clone()
        }
    );
    assert_eq!(
        pair.bob.phase(),
        &Phase::Agreed {
            slot,
            uid: uid.clone()
        }
    );
    assert_eq!(pair.bob.notices.last(), Some(&Notice::Agreed { slot, uid }));
    assert_eq!(pair.bob.n.held_slot(), None);
}

#[test]
fn an_owner_can_decline_and_the_requester_hears_why() {
    let mut pair = Pair::new();
    pair.bob.policy.auto_accept = false;
    pair.start();
    let outputs = pair.bob.handle(Input::OwnerDecline, pair.now).unwrap();
    pair.deliver(false, outputs);
    assert_eq!(
        pair.alice.notices,
        vec![Notice::Declined {
            reason: DeclineReason::OwnerDeclined,
            text: None
        }]
    );
    assert_eq!(pair.bob.phase(), &declined(DeclineReason::OwnerDeclined));
}

#[test]
fn a_peer_that_is_not_allowed_gets_a_typed_decline() {
    let mut pair = Pair::new();
    pair.bob.policy = Policy {
        allowed: false,
        auto_accept: true,
    };
    pair.start();
    assert_eq!(
        pair.alice.notices,
        vec![Notice::Declined {
            reason: DeclineReason::NotAllowed,
            text: None
        }]
    );
    assert_eq!(pair.bob.phase(), &declined(DeclineReason::NotAllowed));
    assert!(pair.bob.notices.is_empty() && pair.bob.calendar.is_empty());
}

#[test]
fn waiting_too_long_for_the_peer_times_out_on_both_sides() {
    let mut pair = Pair::new();
    let outputs = pair
        .alice
        .handle(Input::Start(start_meeting()), pair.now)
        .unwrap();
    // The peer never answers (say its homeserver is down): nothing is delivered.
    drop(outputs);
    pair.later(48 * 60 - 1);
    assert!(pair.alice.handle(Input::Tick, pair.now).unwrap().is_empty());
    pair.later(1);
    let outputs = pair.alice.handle(Input::Tick, pair.now).unwrap();
    assert_eq!(pair.alice.notices, vec![Notice::TimedOut]);
    assert_eq!(pair.alice.phase(), &declined(DeclineReason::Timeout));
    assert!(
        pair.alice.handle(Input::Tick, pair.now).unwrap().is_empty(),
        "times out once"
    );
    // Had the peer been listening, it hears about it.
    let mut bob = Side::new(bob(), WorkingHours::office(London));
    for event in pair.alice.sent.clone() {
        bob.receive(&alice(), &event, pair.now);
    }
    let _ = outputs;
    assert_eq!(
        bob.notices.last(),
        Some(&Notice::Declined {
            reason: DeclineReason::Timeout,
            text: None
        })
    );
}

#[test]
fn an_owner_who_never_decides_times_out_too() {
    let mut pair = Pair::new();
    pair.bob.policy.auto_accept = false;
    pair.start();
    pair.later(24 * 60);
    let outputs = pair.bob.handle(Input::Tick, pair.now).unwrap();
    pair.deliver(false, outputs);
    assert_eq!(pair.bob.notices.last(), Some(&Notice::TimedOut));
    assert_eq!(
        pair.alice.notices,
        vec![Notice::Declined {
            reason: DeclineReason::Timeout,
            text: None
        }]
    );
    let late = pair
        .bob
        .handle(Input::OwnerApprove { slot: window() }, pair.now);
    assert_eq!(late, Err(NegotiationError::NotAwaitingOwner));
}

#[test]
fn cancelling_an_agreed_meeting_removes_it_from_both_calendars() {
    let mut pair = Pair::new();
    pair.start();
    let uid = Uid::from(negotiation_id());
    let outputs = pair
        .alice
        .handle(
            Input::OwnerCancel {
                reason: "Alice is ill.".into(),
            },
            pair.now,
        )
        .unwrap();
    pair.deliver(true, outputs);
    for side in [&pair.alice, &pair.bob] {
        assert_eq!(
            side.calendar.last(),
            Some(&CalendarWrite::Remove { uid: uid.clone() })
        );
        assert_eq!(
            side.phase(),
            &Phase::Ended {
                outcome: Outcome::Cancelled
            }
        );
    }
    assert_eq!(
        pair.bob.notices.last(),
        Some(&Notice::Cancelled {
            reason: "Alice is ill.".into()
        })
    );
    assert_eq!(
        pair.alice.handle(
            Input::OwnerCancel {
                reason: "again".into()
            },
            pair.now
        ),
        Err(NegotiationError::NothingToCancel)
    );
}

#[test]
fn cancelling_before_agreement_declines_with_cancelled() {
    let mut pair = Pair::new();
    pair.bob.policy.auto_accept = false;
    pair.start();
    let outputs = pair
        .alice
        .handle(
            Input::OwnerCancel {
                reason: "Plans changed.".into(),
            },
            pair.now,
        )
        .unwrap();
    pair.deliver(true, outputs);
    assert_eq!(
        pair.bob.notices.last(),
        Some(&Notice::Declined {
            reason: DeclineReason::Cancelled,
            text: Some("Plans changed.".into())
        })
    );
    assert!(pair.bob.n.is_finished() && pair.alice.n.is_finished());
    assert!(pair.alice.calendar.is_empty() && pair.bob.calendar.is_empty());
}

#[test]
fn a_lost_confirm_and_a_timeout_undo_the_booking() {
    let mut pair = Pair::new();
    let outputs = pair
        .alice
        .handle(Input::Start(start_meeting()), pair.now)
        .unwrap();
    let sent = outputs.iter().filter_map(|o| match o {
        Output::Send(e) => Some(e.clone()),
        _ => None,
    });
    let mut bob_answers = Vec::new();
    for event in sent.collect::<Vec<_>>() {
        bob_answers.extend(pair.bob.receive(&alice(), &event, pair.now));
    }
    // Alice takes Bob's accept and confirms, but the confirm never reaches Bob.
    for output in bob_answers {
        if let Output::Send(event) = output {
            pair.alice.receive(&bob(), &event, pair.now);
        }
    }
    assert!(matches!(pair.alice.phase(), Phase::Agreed { .. }));
    pair.later(48 * 60);
    let outputs = pair.bob.handle(Input::Tick, pair.now).unwrap();
    pair.deliver(false, outputs);
    assert_eq!(
        pair.alice.calendar.last(),
        Some(&CalendarWrite::Remove {
            uid: Uid::from(negotiation_id())
        })
    );
    assert!(pair.alice.n.is_finished());
}

#[test]
fn an_accepted_slot_that_is_no_longer_free_is_not_booked() {
    let mut pair = Pair::new();
    pair.bob.policy.auto_accept = false;
    pair.start();
    let Some(Notice::AskOwner { slots, .. }) = pair.bob.notices.first().cloned() else {
        panic!()
    };
    // Meanwhile Alice's calendar filled up at exactly that time.
    pair.alice.busy = vec![slots[0]];
    let outputs = pair
        .bob
        .handle(Input::OwnerApprove { slot: slots[0] }, pair.now)
        .unwrap();
    pair.deliver(false, outputs);
    assert_eq!(pair.alice.notices, vec![Notice::NoCommonSlot]);
    assert!(pair.alice.calendar.is_empty() && pair.bob.calendar.is_empty());
    assert!(matches!(
        pair.bob.notices.last(),
        Some(Notice::Declined {
            reason: DeclineReason::Other,
            ..
        })
    ));
}

#[test]
fn state_survives_a_serde_round_trip_mid_negotiation() {
    let mut pair = Pair::new();
    pair.bob.policy.auto_accept = false;
    pair.start();
    let stored = serde_json::to_string(&pair.bob.n).unwrap();
    let restored: Negotiation = serde_json::from_str(&stored).unwrap();
    assert_eq!(restored, pair.bob.n);
    // The persisted shape, with the long slot lists cut to their length.
    let mut shape = serde_json::to_value(&restored).unwrap();
    for pointer in ["/request/slots", "/phase/candidates"] {
        let slots = shape.pointer_mut(pointer).unwrap();
        *slots = format!("{} slots", slots.as_array().unwrap().len()).into();
    }
    insta::assert_json_snapshot!("responder_awaiting_owner", shape);
    pair.bob.n = restored;
    let Some(Notice::AskOwner { slots, .. }) = pair.bob.notices.first().cloned() else {
        panic!()
    };
    let outputs = pair
        .bob
        .handle(Input::OwnerApprove { slot: slots[0] }, pair.now)
        .unwrap();
    pair.deliver(false, outputs);
    assert_agreed_with_ask(&pair, slots[0]);
}
