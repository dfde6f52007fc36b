use serde_json::{Value, json};

use super::*;
use crate::protocol::events::samples;

fn content(event: &ProtocolEvent) -> Value {
    serde_json::to_value(event).unwrap()
}

fn rejection(event_type: &str, content: &Value) -> Rejection {
    parse(event_type, content).unwrap_err()
}

#[test]
fn every_sample_round_trips_through_its_wire_format() {
    for event in samples::all() {
        assert_eq!(
            parse(event.event_type(), &content(&event)).as_ref(),
            Ok(&event)
        );
    }
}

#[test]
fn an_unknown_version_is_its_own_rejection() {
    let mut request = content(&samples::request());
    request["version"] = json!("2");
    let r = rejection(types::REQUEST, &request);
    assert_eq!(r.code, RejectCode::UnknownVersion);
    assert_eq!(r.negotiation_id, Some(samples::negotiation_id()));
    let reply = r.reply(Some("$req:hs1")).unwrap();
    insta::assert_json_snapshot!(reply, @r#"
    {
      "version": "1",
      "negotiation_id": "6f1c2e0a-9a8b-4c1d-8e7f-0123456789ab",
      "code": "unknown_version",
      "detail": "version \"2\" is not spoken here; supported: \"1\"",
      "event_type": "dev.matrixos.a2a.request",
      "event_id": "$req:hs1",
      "versions": [
        "1"
      ]
    }
    "#);
}

#[test]
fn a_numeric_or_missing_version_is_malformed() {
    let mut hello = content(&samples::hello());
    hello["version"] = json!(1);
    assert_eq!(rejection(types::HELLO, &hello).code, RejectCode::Malformed);
    hello.as_object_mut().unwrap().remove("version");
    assert_eq!(rejection(types::HELLO, &hello).code, RejectCode::Malformed);
}

#[test]
fn malformed_contents_are_rejected_with_a_reason() {
    let request = content(&samples::request());
    let cases: Vec<(&str, Value, &str)> = vec![
        (types::REQUEST, json!([1, 2]), "not a JSON object"),
        (
            "m.room.message",
            request.clone(),
            "not a dev.matrixos.a2a event type",
        ),
        (
            "dev.matrixos.a2a.unknown",
            request.clone(),
            "not a dev.matrixos.a2a event type",
        ),
        (
            types::REQUEST,
            with(&request, "duration_minutes", json!(481)),
            "duration_minutes",
        ),
        (
            types::REQUEST,
            with(&request, "duration_minutes", json!(-30)),
            "duration_minutes",
        ),
        (
            types::REQUEST,
            with(&request, "duration_minutes", json!(30.5)),
            "duration_minutes",
        ),
        (types::REQUEST, with(&request, "title", json!("")), "title"),
        (types::REQUEST, with(&request, "seq", json!(0)), "seq"),
        (
            types::REQUEST,
            with(&request, "seq", json!(9007199254740992_u64)),
            "seq",
        ),
        (
            types::REQUEST,
            with(&request, "negotiation_id", json!("")),
            "negotiation_id",
        ),
        (
            types::REQUEST,
            with(&request, "negotiation_id", json!("has space")),
            "negotiation_id",
        ),
        (
            types::REQUEST,
            with(&request, "negotiation_id", json!("x".repeat(256))),
            "negotiation_id",
        ),
        (
            types::REQUEST,
            with(&request, "busy", json!([])),
            "unknown field",
        ),
        (
            types::REQUEST,
            with(&request, "time_zone", json!("CEST")),
            "IANA",
        ),
        (
            types::REQUEST,
            with(
                &request,
                "window",
                json!({"start": "2026-05-09T00:00:00Z", "end": "2026-05-04T00:00:00Z"}),
            ),
            "not after its start",
        ),
        (
            types::REQUEST,
            with(
                &request,
                "window",
                json!({"start": "2026-05-04T00:00:00+02:00", "end": "2026-05-09T00:00:00Z"}),
            ),
            "UTC",
        ),
        (
            types::REQUEST,
            with(&request, "slots", json!([])),
            "1 to 50",
        ),
        (
            types::REQUEST,
            with(
                &request,
                "slots",
                json!([{"start": "2026-05-10T09:00:00Z", "end": "2026-05-10T09:30:00Z"}]),
            ),
            "not inside the window",
        ),
        (
            types::DECLINE,
            json!({"version": "1", "negotiation_id": "n", "seq": 3, "reason": "bored"}),
            "unknown variant",
        ),
        (
            types::ACCEPT,
            json!({"version": "1", "negotiation_id": "n", "seq": 3}),
            "missing field `slot`",
        ),
        (
            types::REJECT,
            json!({"version": "1", "code": "malformed", "detail": "", "versions": ["1"]}),
            "missing field `negotiation_id`",
        ),
    ];
    for (event_type, content, expected) in cases {
        let r = rejection(event_type, &content);
        assert_eq!(r.code, RejectCode::Malformed, "{content}");
        assert!(
            r.detail.contains(expected),
            "{:?} does not mention {expected:?}",
            r.detail
        );
    }
}

fn with(content: &Value, key: &str, value: Value) -> Value {
    let mut content = content.clone();
    content[key] = value;
    content
}

#[test]
fn a_hello_must_be_consistent() {
    let hello = content(&samples::hello());
    let cases = [
        ("/twin", json!("@alice_ai:elsewhere"), "homeserver"),
        ("/twin", json!("@alice:hs1"), "different users"),
        ("/versions", json!(["2"]), "own version"),
        ("/versions", json!(["01", "1"]), "not a protocol version"),
        ("/capabilities", json!(["poetry"]), "meeting-scheduling"),
        (
            "/agent_card/owner",
            json!("@mallory:hs1"),
            "agent_card.owner",
        ),
        ("/agent_card/url", json!("not a url"), "absolute URL"),
        ("/agent_card/skills", json!([]), "1 to 32"),
        ("/owner", json!("not an mxid"), "owner"),
    ];
    for (pointer, value, expected) in cases {
        let mut broken = hello.clone();
        *broken.pointer_mut(pointer).unwrap() = value;
        let r = rejection(types::HELLO, &broken);
        assert_eq!(r.code, RejectCode::Malformed);
        assert!(
            r.detail.contains(expected),
            "{pointer}: {:?} lacks {expected:?}",
            r.detail
        );
    }
}

#[test]
fn rejections_are_never_answered_and_never_echo_garbage() {
    let reject = content(&samples::reject());
    let r = rejection(types::REJECT, &with(&reject, "code", json!("grumpy")));
    assert_eq!(r.reply(Some("$x")), None, "a reject is not answered");
    let r = rejection("evil type with spaces", &json!(null));
    let reply = r.reply(Some("not an\nevent id")).unwrap();
    let ProtocolEvent::Reject(reply) = reply else {
        panic!("not a reject")
    };
    assert_eq!(
        (reply.event_type, reply.event_id, reply.negotiation_id),
        (None, None, None)
    );
}

#[test]
fn rejection_details_are_bounded() {
    let long_field = "f".repeat(5000);
    let mut request = content(&samples::request());
    request[long_field.as_str()] = json!(1);
    let r = rejection(types::REQUEST, &request);
    assert!(r.detail.chars().count() <= 1000);
    assert!(parse(types::REJECT, &content(&r.reply(None).unwrap())).is_ok());
}

#[test]
fn control_characters_in_echoed_input_do_not_break_the_reject() {
    // Found by cargo-fuzz: an unknown field name with a carriage return ended up in `detail`.
    let mut request = content(&samples::request());
    request["neg-4\\\rixos.tle"] = json!("x");
    let reply = rejection(types::REQUEST, &request).reply(None).unwrap();
    assert!(parse(types::REJECT, &content(&reply)).is_ok());
}
