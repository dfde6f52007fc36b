use axum::body::Bytes;

use super::{testing::*, *};
use crate::kernel::provider::{anthropic, openai};

macro_rules! fixture {
    ($wire:literal, $name:literal) => {
        include_str!(concat!(
            "../../../tests/data/llm/",
            $wire,
            "/",
            $name,
            ".sse"
        ))
    };
}

const OPENAI: [&str; 4] = [
    fixture!("openai", "stream_text"),
    fixture!("openai", "stream_tool_calls"),
    fixture!("openai", "stream_error"),
    fixture!("openai", "stream_truncated"),
];
const ANTHROPIC: [&str; 4] = [
    fixture!("anthropic", "stream_text"),
    fixture!("anthropic", "stream_tool_calls"),
    fixture!("anthropic", "stream_error"),
    fixture!("anthropic", "stream_truncated"),
];

/// Chunkings that cut lines, `data:` prefixes, JSON and multi-byte characters apart.
fn awkward_splits(sse: &str) -> Vec<Vec<usize>> {
    let mut splits: Vec<Vec<usize>> = (1..=7).map(|n| vec![n]).collect();
    splits.push(vec![13, 1, 64, 2, 3]);
    // Right inside each of the first multi-byte characters, and inside a line end.
    for (at, c) in sse.char_indices().filter(|(_, c)| c.len_utf8() > 1).take(3) {
        splits.push(vec![at + 1, c.len_utf8() - 1 + 5]);
    }
    if let Some(at) = sse.find("\n\n") {
        splits.push(vec![at + 1, 1]);
    }
    splits
}

/// The pieces joined and the outcome, in a comparable form.
fn summary(pieces: &[String], outcome: &Result<ChatResponse, Failure>) -> String {
    format!("{:?} {outcome:?}", pieces.concat())
}

fn same_result_in_any_chunks<P: SseParser>(sse: &str, parser: impl Fn() -> P) {
    let (pieces, whole) = replay(sse, parser());
    let expected = summary(&pieces, &whole);
    assert!(sse.contains('\n'));
    for sizes in awkward_splits(sse) {
        let (pieces, outcome) =
            replay_bounded(sse.as_bytes(), parser(), &sizes, MAX_RESPONSE_BYTES);
        assert_eq!(summary(&pieces, &outcome), expected, "chunks {sizes:?}");
    }
}

#[test]
fn byte_chunks_split_anywhere_give_the_same_answer() {
    assert!(OPENAI.iter().chain(&ANTHROPIC).any(|s| s.contains('🌧')));
    for sse in OPENAI {
        same_result_in_any_chunks(sse, || openai::StreamParser::new("u", "m"));
    }
    for sse in ANTHROPIC {
        same_result_in_any_chunks(sse, || anthropic::StreamParser::new("u", "m"));
    }
}

#[test]
fn a_stream_past_the_bound_is_a_bad_response() {
    let sse = OPENAI[0].as_bytes();
    let (pieces, outcome) = replay_bounded(
        sse,
        openai::StreamParser::new("u", "m"),
        &[100],
        sse.len() - 1,
    );
    let Err(Failure {
        error: ProviderError::BadResponse(message),
        delivered,
    }) = outcome
    else {
        panic!("{outcome:?}")
    };
    assert!(message.contains("larger than"), "{message}");
    assert_eq!(delivered, !pieces.is_empty());
    let (_, outcome) = replay_bounded(sse, openai::StreamParser::new("u", "m"), &[100], sse.len());
    assert!(outcome.is_ok(), "{outcome:?}");
}

#[test]
fn a_broken_connection_after_text_is_reported_as_delivered() {
    let sse = ANTHROPIC[0];
    let cut = sse.find("event: content_block_stop").unwrap();
    let chunks = vec![
        Ok(Bytes::copy_from_slice(&sse.as_bytes()[..cut])),
        Err(std::io::Error::other("connection reset")),
    ];
    let sink = Collect::default();
    let outcome = futures::executor::block_on(read_events(
        futures::stream::iter(chunks),
        anthropic::StreamParser::new("u", "m"),
        &sink,
        MAX_RESPONSE_BYTES,
        |e| ProviderError::Connect {
            url: "u".into(),
            detail: e.to_string(),
        },
    ));
    let Err(Failure { error, delivered }) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(delivered);
    assert!(
        matches!(&error, ProviderError::Connect { detail, .. } if detail == "connection reset"),
        "{error:?}"
    );
    assert_eq!(
        sink.0.into_inner().unwrap().concat(),
        "Hello! How can I help you today?"
    );
}

#[test]
fn a_break_before_any_text_may_be_retried() {
    let sse = OPENAI[1];
    let cut = sse.find("\"finish_reason\":\"tool_calls\"").unwrap();
    let (pieces, outcome) = replay(&sse[..cut], openai::StreamParser::new("u", "m"));
    assert!(pieces.is_empty());
    let Err(Failure { error, delivered }) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(!delivered);
    assert!(matches!(error, ProviderError::BadResponse(_)), "{error:?}");
}

#[test]
fn error_kinds_map_to_the_statuses_they_stand_for() {
    assert_eq!(status_of_error_kind("overloaded_error"), Some(529));
    assert_eq!(status_of_error_kind("rate_limit_exceeded"), Some(429));
    assert_eq!(status_of_error_kind("invalid_request_error"), Some(400));
    assert_eq!(status_of_error_kind("something_new"), None);
    let error = error_event(
        529,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        "u",
        "m",
    );
    assert!(error.is_transient());
    assert_eq!(error.to_string(), "HTTP 529 from u: Overloaded");
}
