//! A deterministic stand-in for the cargo-fuzz target (`fuzz/fuzz_targets/parse_event.rs`) that
//! runs on stable Rust in every `cargo test`: thousands of mutated and random contents, fed to
//! [`parse`], which must never panic, must round-trip whatever it accepts, and must turn whatever
//! it refuses into a reject that itself parses.

use serde_json::{Map, Value, json};

use super::*;
use crate::protocol::events::samples;

/// SplitMix64: tiny, seedable, and the same on every platform and crate version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const EVENT_TYPES: &[&str] = &[
    types::HELLO,
    types::REQUEST,
    types::COUNTER,
    types::ACCEPT,
    types::DECLINE,
    types::CONFIRM,
    types::CANCEL,
    types::REJECT,
    "dev.matrixos.a2a.",
    "m.room.message",
    "",
];

const STRINGS: &[&str] = &[
    "",
    "1",
    "2",
    "0",
    "01",
    "@alice:hs1",
    "@alice_ai:hs1",
    "@:",
    "2026-05-04T09:00:00Z",
    "2026-05-04T09:00:00.000Z",
    "2026-05-04T09:00:00+00:00",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "+275760-09-13T00:00:00Z",
    "Europe/Berlin",
    "meeting-scheduling",
    "no_common_slot",
    "out_of_order",
    "\u{0}\u{7}\u{1b}[31m",
    "\u{202e}\u{fffd}\u{1f600}",
    "matrix:u/x:y",
];

fn random_scalar(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.next()),
        3 => json!(-(rng.below(1000) as i64)),
        4 => json!(f64::from(rng.below(100_000) as u32) / 7.0),
        5 => json!(rng.pick(&[0_u64, 1, 5, 4, 480, 481, 50, 51, u64::MAX, 1 << 53])),
        6 => json!(rng.pick(STRINGS)),
        7 => json!("x".repeat(rng.pick(&[1, 254, 255, 256, 1000, 1001]).to_owned())),
        _ => json!(
            (0..rng.below(8))
                .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'))
                .collect::<String>()
        ),
    }
}

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    if depth == 0 || rng.below(3) > 0 {
        return random_scalar(rng);
    }
    if rng.below(2) == 0 {
        Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        )
    } else {
        let keys = [
            "version",
            "negotiation_id",
            "seq",
            "slot",
            "slots",
            "start",
            "end",
            "x",
        ];
        let object: Map<String, Value> = (0..rng.below(4))
            .map(|_| ((*rng.pick(&keys)).to_owned(), random_value(rng, depth - 1)))
            .collect();
        Value::Object(object)
    }
}

/// Changes one randomly chosen place inside `value`.
fn mutate(rng: &mut Rng, value: &mut Value) {
    match value {
        Value::Object(object) if !object.is_empty() && rng.below(4) > 0 => {
            let key = object
                .keys()
                .nth(rng.below(object.len()))
                .cloned()
                .unwrap_or_default();
            match rng.below(5) {
                0 => {
                    object.remove(&key);
                }
                1 => {
                    let suffix = random_scalar(rng).as_str().unwrap_or("_").to_owned();
                    object.insert(format!("{key}{suffix}"), random_value(rng, 2));
                }
                _ => mutate(rng, object.get_mut(&key).unwrap()),
            }
        }
        Value::Array(items) if !items.is_empty() && rng.below(4) > 0 => match rng.below(4) {
            0 => {
                items.remove(rng.below(items.len()));
            }
            1 => {
                let copy = items[rng.below(items.len())].clone();
                items.push(copy);
            }
            _ => {
                let at = rng.below(items.len());
                mutate(rng, &mut items[at]);
            }
        },
        other => *other = random_value(rng, 3),
    }
}

#[test]
fn parse_survives_thousands_of_mutated_and_random_contents() {
    let seeds: Vec<(String, Value)> = samples::all()
        .iter()
        .map(|e| (e.event_type().to_owned(), serde_json::to_value(e).unwrap()))
        .collect();
    let mut rng = Rng(0x00C0_FFEE);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..20_000 {
        let (mut event_type, mut content) = seeds[rng.below(seeds.len())].clone();
        match round % 10 {
            0 => content = random_value(&mut rng, 4),
            1 => event_type = (*rng.pick(EVENT_TYPES)).to_owned(),
            _ => {
                for _ in 0..=rng.below(3) {
                    mutate(&mut rng, &mut content);
                }
            }
        }
        match parse(&event_type, &content) {
            Ok(event) => {
                accepted += 1;
                let again = serde_json::to_value(&event).unwrap();
                assert_eq!(
                    parse(event.event_type(), &again),
                    Ok(event),
                    "round {round}: {content}"
                );
            }
            Err(rejection) => {
                refused += 1;
                if let Some(reply) = rejection.reply(Some("$event:hs")) {
                    let reply_content = serde_json::to_value(&reply).unwrap();
                    assert!(
                        parse(types::REJECT, &reply_content).is_ok(),
                        "round {round}: {reply_content}"
                    );
                }
            }
        }
    }
    // Both paths must really be exercised, or the test proves little.
    assert!(
        accepted > 200 && refused > 10_000,
        "accepted {accepted}, refused {refused}"
    );
}
