use serde_json::json;

use super::*;
use crate::kernel::provider::{
    StopReason, Usage,
    anthropic::parse_response,
    sse::{Failure, testing::replay},
};

const TEXT: &str = include_str!("../../../tests/data/llm/anthropic/stream_text.sse");
const TOOL_CALLS: &str = include_str!("../../../tests/data/llm/anthropic/stream_tool_calls.sse");
const ERROR: &str = include_str!("../../../tests/data/llm/anthropic/stream_error.sse");
const TRUNCATED: &str = include_str!("../../../tests/data/llm/anthropic/stream_truncated.sse");

fn parser() -> StreamParser {
    StreamParser::new("https://api.anthropic.com/v1/messages", "claude-sonnet-4-5")
}

fn whole(name: &str) -> ChatResponse {
    let path = format!(
        "{}/tests/data/llm/anthropic/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    parse_response(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn streamed_text_and_cache_counters_equal_the_whole_answer() {
    let (pieces, outcome) = replay(TEXT, parser());
    assert_eq!(pieces, ["Hello", "! How can I", " help you today?"]);
    let response = outcome.unwrap();
    assert_eq!(response, whole("text_cached.json"));
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 21 + 188 + 2048,
            output_tokens: 11,
            cache_read_tokens: 2048,
            cache_write_tokens: 188,
        })
    );
}

#[test]
fn streamed_tool_use_blocks_are_joined_per_index() {
    let (pieces, outcome) = replay(TOOL_CALLS, parser());
    assert_eq!(pieces.concat(), "I'll save that to your todo list.");
    let response = outcome.unwrap();
    assert_eq!(response, whole("tool_calls.json"));
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(response.tool_calls[1].arguments, json!({}));
}

#[test]
fn an_error_event_is_transient_and_thinking_is_not_text() {
    let (pieces, outcome) = replay(ERROR, parser());
    assert_eq!(pieces, ["Grüß Gott", "! Schön 👋"]);
    let Err(Failure { error, delivered }) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(delivered);
    assert!(
        matches!(&error, ProviderError::Status { status: 529, message, .. } if message == "Overloaded"),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[test]
fn a_stream_cut_before_the_stop_reason_is_a_bad_response() {
    let (pieces, outcome) = replay(TRUNCATED, parser());
    assert_eq!(pieces.concat(), "Der Bericht über Köln 🌧 ist");
    let Err(Failure {
        error: ProviderError::BadResponse(message),
        delivered: true,
    }) = outcome
    else {
        panic!("{outcome:?}")
    };
    assert!(message.contains("ended early"), "{message}");
}

#[test]
fn a_stream_cut_after_the_stop_reason_keeps_the_answer() {
    let cut = TEXT.find("event: message_stop").unwrap();
    let (_, outcome) = replay(&TEXT[..cut], parser());
    assert_eq!(outcome.unwrap(), whole("text_cached.json"));
}

#[test]
fn counters_in_message_delta_win_and_bad_input_json_is_kept_raw() {
    let mut p = parser();
    let events = [
        json!({"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"path\": "}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 9, "input_tokens": 7, "cache_read_input_tokens": 3}}),
    ];
    for event in &events {
        let name = event["type"].as_str().unwrap();
        assert_eq!(p.event(name, &event.to_string()).unwrap(), None);
    }
    assert_eq!(p.event("ping", r#"{"type": "ping"}"#).unwrap(), None);
    let response = p.finish().unwrap();
    assert_eq!(response.stop_reason, StopReason::MaxTokens);
    assert_eq!(response.tool_calls[0].arguments, json!("{\"path\": "));
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 10,
            output_tokens: 9,
            cache_read_tokens: 3,
            cache_write_tokens: 0,
        })
    );
}

#[test]
fn broken_events_are_bad_responses() {
    let mut p = parser();
    let tool = r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","name":"x","input":{}}}"#;
    assert!(matches!(
        p.event("content_block_start", tool),
        Err(ProviderError::BadResponse(_))
    ));
    assert!(matches!(
        parser().event("message_start", "{not json"),
        Err(ProviderError::BadResponse(_))
    ));
    let mut p = parser();
    p.event("message_stop", r#"{"type":"message_stop"}"#)
        .unwrap();
    assert!(p.is_done());
    assert_eq!(p.finish().unwrap().stop_reason, StopReason::EndTurn);
}
