use http::HeaderMap;
use serde_json::json;

use super::*;
use crate::kernel::provider::{sample_request, transport::classify};

const TEXT: &str = include_str!("../../../tests/data/llm/openai/text.json");
const TOOL_CALLS: &str = include_str!("../../../tests/data/llm/openai/tool_calls.json");
const UNKNOWN_MODEL: &str = include_str!("../../../tests/data/llm/openai/error_unknown_model.json");
const RATE_LIMIT: &str = include_str!("../../../tests/data/llm/openai/error_rate_limit.json");

#[test]
fn request_body_carries_tool_calls_and_results() {
    insta::assert_json_snapshot!(build_body(&sample_request(), "gpt-4o-mini", true, false));
}

#[test]
fn a_twins_own_model_replaces_the_configured_one() {
    let request = ChatRequest {
        model: Some("twin-model".into()),
        ..sample_request()
    };
    insta::assert_json_snapshot!(build_body(&request, "gpt-4o-mini", true, false));
}

#[test]
fn compatible_servers_get_max_tokens_and_streaming_asks_for_usage() {
    let body = build_body(&sample_request(), "llama3.2", false, true);
    assert_eq!(body["max_tokens"], json!(1024));
    assert!(body.get("max_completion_tokens").is_none());
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["stream_options"]["include_usage"], json!(true));
}

#[test]
fn a_text_answer_is_parsed() {
    let response = parse_response(TEXT.as_bytes());
    let Ok(response) = response else {
        panic!("{response:?}")
    };
    assert_eq!(response.content, "Hello! How can I help you today?");
    assert!(response.tool_calls.is_empty());
    assert_eq!(response.stop_reason, StopReason::EndTurn);
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 19,
            output_tokens: 9,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
        })
    );
}

#[test]
fn tool_calls_are_parsed_with_json_arguments() {
    let response = parse_response(TOOL_CALLS.as_bytes());
    let Ok(response) = response else {
        panic!("{response:?}")
    };
    assert_eq!(response.content, "");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        response.tool_calls,
        vec![
            ToolCall {
                id: "call_Qm1".into(),
                name: "write_file".into(),
                arguments: json!({"path": "notes/todo.md", "content": "- buy milk\n"}),
            },
            ToolCall {
                id: "call_Qm2".into(),
                name: "list_files".into(),
                arguments: json!({})
            },
        ]
    );
}

#[test]
fn lenient_about_local_server_quirks() {
    let raw = json!({"choices": [{"message": {
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        "tool_calls": [{"function": {"name": "read_file", "arguments": {"path": "x"}}},
                       {"id": "", "function": {"name": "read_file", "arguments": "{not json"}}],
    }, "finish_reason": "stop"}]});
    let response = parse_response(raw.to_string().as_bytes());
    let Ok(response) = response else {
        panic!("{response:?}")
    };
    assert_eq!(response.content, "ab");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(response.tool_calls[0].id, "call_0");
    assert_eq!(response.tool_calls[0].arguments, json!({"path": "x"}));
    assert_eq!(response.tool_calls[1].id, "call_1");
    assert_eq!(response.tool_calls[1].arguments, json!("{not json"));
}

#[test]
fn bad_json_is_a_clear_error() {
    for raw in [
        "",
        "<html>502</html>",
        "{\"choices\": []}",
        "{\"choices\": [{}]}",
    ] {
        let error = parse_response(raw.as_bytes());
        assert!(
            matches!(error, Err(ProviderError::BadResponse(_))),
            "{raw}: {error:?}"
        );
    }
}

#[test]
fn error_bodies_are_classified() {
    let unknown = classify(
        404,
        &HeaderMap::new(),
        UNKNOWN_MODEL.as_bytes(),
        "u",
        "gpt-9-turbo",
    );
    assert!(
        matches!(unknown, ProviderError::UnknownModel { ref model, .. } if model == "gpt-9-turbo")
    );
    assert!(unknown.to_string().contains("does not exist"), "{unknown}");
    let limited = classify(
        429,
        &HeaderMap::new(),
        RATE_LIMIT.as_bytes(),
        "u",
        "gpt-4o-mini",
    );
    assert!(limited.is_transient());
    assert!(
        limited
            .to_string()
            .starts_with("HTTP 429 from u: Rate limit reached"),
        "{limited}"
    );
}

#[test]
fn cached_prompt_tokens_are_read() {
    let response = parse_response(include_bytes!(
        "../../../tests/data/llm/openai/text_cached.json"
    ));
    let Ok(response) = response else {
        panic!("{response:?}")
    };
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 2006,
            output_tokens: 9,
            cache_read_tokens: 1920,
            cache_write_tokens: 0,
        })
    );
}

#[test]
fn a_note_is_a_user_message_of_its_own() {
    let request = ChatRequest {
        system: "s".into(),
        messages: vec![Message::note("(time)"), Message::user("hello")],
        tools: Vec::new(),
        max_tokens: 10,
        model: None,
    };
    let body = build_body(&request, "m", true, false);
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "(time)"})
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "user", "content": "hello"})
    );
}

#[test]
fn images_go_as_data_url_parts_after_the_text() {
    let request = ChatRequest {
        system: String::new(),
        messages: vec![Message::User {
            content: "what did I pay?".into(),
            images: vec![crate::kernel::ImageInput::new("image/png", b"\x89PNG")],
        }],
        tools: Vec::new(),
        max_tokens: 10,
        model: None,
    };
    insta::assert_json_snapshot!(build_body(&request, "m", true, false)["messages"]);
}
