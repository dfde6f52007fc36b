//! Fuzzes `matrix_os::protocol::parse`: the input's first line is the event type, the rest the
//! content as JSON. The parser must never panic, must round-trip what it accepts, and must turn
//! what it refuses into a reject that itself parses.

#![no_main]

use libfuzzer_sys::fuzz_target;
use matrix_os::protocol::{parse, types};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (event_type, json) = text.split_once('\n').unwrap_or((types::REQUEST, text));
    let Ok(content) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    match parse(event_type, &content) {
        Ok(event) => {
            let again = serde_json::to_value(&event).expect("an event serializes");
            assert_eq!(parse(event.event_type(), &again), Ok(event), "round trip");
        }
        Err(rejection) => {
            if let Some(reply) = rejection.reply(Some("$fuzz:hs")) {
                let reply = serde_json::to_value(&reply).expect("a reject serializes");
                assert!(
                    parse(types::REJECT, &reply).is_ok(),
                    "reply parses: {reply}"
                );
            }
        }
    }
});
