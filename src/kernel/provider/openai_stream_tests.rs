use serde_json::json;

use super::*;
use crate::kernel::provider::{
    StopReason,
    openai::parse_response,
    sse::{Failure, testing::replay},
};

const TEXT: &str = include_str!("../../../tests/data/llm/openai/stream_text.sse");
const TOOL_CALLS: &str = include_str!("../../../tests/data/llm/openai/stream_tool_calls.sse");
const ERROR: &str = include_str!("../../../tests/data/llm/openai/stream_error.sse");
const TRUNCATED: &str = include_str!("../../../tests/data/llm/openai/stream_truncated.sse");

fn parser() -> StreamParser {
    StreamParser::new("https://api.openai.com/v1/chat/completions", "gpt-4o-mini")
}

fn whole(name: &str) -> ChatResponse {
    let path = format!(
        "{}/tests/data/llm/openai/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    parse_response(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn streamed_text_and_cached_usage_equal_the_whole_answer() {
    let (pieces, outcome) = replay(TEXT, parser());
    assert_eq!(
        pieces,
        [
            "Hello", "!", " How", " can", " I", " help", " you", " today", "?"
        ]
    );
    let response = outcome.unwrap();
    assert_eq!(response, whole("text_cached.json"));
    assert_eq!(response.usage.unwrap().cache_read_tokens, 1920);
}

#[test]
fn streamed_tool_calls_are_joined_per_index() {
    let (pieces, outcome) = replay(TOOL_CALLS, parser());
    assert!(pieces.is_empty(), "{pieces:?}");
    let response = outcome.unwrap();
    assert_eq!(response, whole("tool_calls.json"));
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        response.tool_calls[0].arguments,
        json!({"path": "notes/todo.md", "content": "- buy milk\n"})
    );
    assert_eq!(response.tool_calls[1].arguments, json!({}));
}

#[test]
fn an_error_event_is_a_provider_error_with_its_message() {
    let (pieces, outcome) = replay(ERROR, parser());
    assert_eq!(pieces.concat(), "Voilà ce que j’ai trouvé ☕");
    let Err(Failure { error, delivered }) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(delivered);
    assert!(
        matches!(&error, ProviderError::Status { status: 500, message, .. }
            if message.starts_with("The server had an error")),
        "{error:?}"
    );
    assert!(error.is_transient());
    let mut limited = parser();
    let error = limited
        .event(r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#)
        .unwrap_err();
    assert!(
        matches!(error, ProviderError::Status { status: 429, .. }),
        "{error:?}"
    );
}

#[test]
fn a_stream_cut_before_the_finish_is_a_bad_response() {
    let (pieces, outcome) = replay(TRUNCATED, parser());
    assert_eq!(pieces.concat(), "Grüße aus Köln 🌧 — das");
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
fn a_stream_cut_after_the_finish_keeps_the_answer() {
    let cut = TEXT.find("data: {\"id\":\"chatcmpl-Cached456\",\"object\":\"chat.completion.chunk\",\"created\":1731000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[]").unwrap();
    let (_, outcome) = replay(&TEXT[..cut], parser());
    let response = outcome.unwrap();
    assert_eq!(response.content, "Hello! How can I help you today?");
    assert_eq!(response.stop_reason, StopReason::EndTurn);
    assert_eq!(response.usage, None);
}

#[test]
fn finish_reasons_and_bad_arguments_are_treated_like_whole_answers() {
    let mut p = parser();
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string()
    };
    p.event(&chunk(json!({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "read_file", "arguments": "{not"}}]}), json!(null))).unwrap();
    p.event(&chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": " json"}}]}),
        json!(null),
    ))
    .unwrap();
    // A local server: no index, arguments as an object, and "stop" next to tool calls.
    p.event(&chunk(json!({"tool_calls": [{"id": "", "function": {"name": "list_files", "arguments": {"dir": "x"}}}]}), json!("stop"))).unwrap();
    assert!(!p.is_done());
    p.event("[DONE]").unwrap();
    assert!(p.is_done());
    let response = p.finish().unwrap();
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(response.tool_calls[0].arguments, json!("{not json"));
    assert_eq!(response.tool_calls[1].id, "call_1");
    assert_eq!(response.tool_calls[1].arguments, json!({"dir": "x"}));

    for (finish, reason) in [
        ("length", StopReason::MaxTokens),
        ("content_filter", StopReason::Other("content_filter".into())),
    ] {
        let mut p = parser();
        assert_eq!(
            p.event(&chunk(json!({"content": "cut"}), json!(finish)))
                .unwrap(),
            Some("cut".into())
        );
        assert_eq!(p.finish().unwrap().stop_reason, reason);
    }
}

#[test]
fn a_stream_without_choices_or_with_bad_json_is_a_bad_response() {
    let mut p = parser();
    p.event("[DONE]").unwrap();
    assert!(matches!(p.finish(), Err(ProviderError::BadResponse(_))));
    assert!(matches!(
        parser().event("{not json"),
        Err(ProviderError::BadResponse(_))
    ));
}
