//! The JSON Schemas in `docs/schemas/` describe what the code sends: every sample and every
//! event sent in the negotiation tests is validated against its schema, and the schemas refuse
//! what the parser refuses where a schema can say so.

use std::{collections::HashMap, sync::OnceLock};

use serde_json::{Value, json};

use super::{events::samples, types};

const SCHEMAS: &[(&str, &str)] = &[
    (types::HELLO, include_str!("../../docs/schemas/hello.json")),
    (
        types::REQUEST,
        include_str!("../../docs/schemas/request.json"),
    ),
    (
        types::COUNTER,
        include_str!("../../docs/schemas/counter.json"),
    ),
    (
        types::ACCEPT,
        include_str!("../../docs/schemas/accept.json"),
    ),
    (
        types::DECLINE,
        include_str!("../../docs/schemas/decline.json"),
    ),
    (
        types::CONFIRM,
        include_str!("../../docs/schemas/confirm.json"),
    ),
    (
        types::CANCEL,
        include_str!("../../docs/schemas/cancel.json"),
    ),
    (
        types::REJECT,
        include_str!("../../docs/schemas/reject.json"),
    ),
];

fn validators() -> &'static HashMap<&'static str, jsonschema::Validator> {
    static VALIDATORS: OnceLock<HashMap<&'static str, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|(event_type, text)| {
                let schema: Value = serde_json::from_str(text).unwrap();
                assert_eq!(schema["title"], *event_type, "schema file for {event_type}");
                (*event_type, jsonschema::validator_for(&schema).unwrap())
            })
            .collect()
    })
}

fn errors(event_type: &str, content: &Value) -> Vec<String> {
    validators()[event_type]
        .iter_errors(content)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Panics unless `content` is valid under the schema of `event_type`.
pub(crate) fn assert_matches_schema(event_type: &str, content: &Value) {
    let errors = errors(event_type, content);
    assert!(
        errors.is_empty(),
        "{event_type} does not match its schema: {errors:?}\n{content:#}"
    );
}

#[test]
fn every_sample_matches_its_schema() {
    for event in samples::all() {
        assert_matches_schema(event.event_type(), &serde_json::to_value(&event).unwrap());
    }
}

#[test]
fn schemas_refuse_what_the_parser_refuses() {
    let request = serde_json::to_value(samples::request()).unwrap();
    let broken = [
        ("/duration_minutes", json!(481)),
        ("/version", json!("2")),
        ("/seq", json!(0)),
        ("/negotiation_id", json!("with space")),
        ("/window/start", json!("2026-05-04T00:00:00+02:00")),
        ("/title", json!("bell\u{7}")),
        ("/slots", json!([])),
    ];
    for (pointer, value) in broken {
        let mut content = request.clone();
        *content.pointer_mut(pointer).unwrap() = value;
        assert!(
            !errors(types::REQUEST, &content).is_empty(),
            "schema accepts a bad {pointer}"
        );
        assert!(
            super::parse(types::REQUEST, &content).is_err(),
            "parser accepts a bad {pointer}"
        );
    }
    let mut extra = request.clone();
    extra["busy"] = json!([]);
    assert!(!errors(types::REQUEST, &extra).is_empty());
    let mut hello = serde_json::to_value(samples::hello()).unwrap();
    hello["capabilities"] = json!(["poetry"]);
    assert!(!errors(types::HELLO, &hello).is_empty());
}
