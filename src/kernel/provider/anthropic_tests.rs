use http::HeaderMap;
use serde_json::json;

use super::*;
use crate::kernel::provider::{sample_request, transport::classify};

const TEXT: &str = include_str!("../../../tests/data/llm/anthropic/text.json");
const TOOL_CALLS: &str = include_str!("../../../tests/data/llm/anthropic/tool_calls.json");
const UNKNOWN_MODEL: &str =
    include_str!("../../../tests/data/llm/anthropic/error_unknown_model.json");
const OVERLOADED: &str = include_str!("../../../tests/data/llm/anthropic/error_overloaded.json");

#[test]
fn request_body_carries_tool_use_and_results() {
    insta::assert_json_snapshot!(build_body(&sample_request(), "claude-sonnet-4-5", false));
}

#[test]
fn a_twins_own_model_replaces_the_configured_one() {
    let request = ChatRequest {
        model: Some("twin-model".into()),
        ..sample_request()
    };
    insta::assert_json_snapshot!(build_body(&request, "claude-sonnet-4-5", false));
}

#[test]
fn neighbours_of_one_role_are_merged_and_roles_alternate() {
    let mut request = sample_request();
    // A turn that died after its tool result: the next user message follows a tool result.
    request.messages.truncate(3);
    request.messages.push(Message::user("Are you there?"));
    let body = build_body(&request, "claude-sonnet-4-5", true);
    assert_eq!(body["stream"], json!(true));
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["role"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(roles, ["user", "assistant", "user"]);
    // The tool result comes before the user's next words in the merged message.
    assert_eq!(
        body["messages"][2]["content"][0]["type"],
        json!("tool_result")
    );
    assert_eq!(
        body["messages"][2]["content"][1]["text"],
        json!("Are you there?")
    );
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
            input_tokens: 12,
            output_tokens: 11,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
        })
    );
}

#[test]
fn tool_use_blocks_are_parsed() {
    let response = parse_response(TOOL_CALLS.as_bytes());
    let Ok(response) = response else {
        panic!("{response:?}")
    };
    assert_eq!(response.content, "I'll save that to your todo list.");
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        response.tool_calls,
        vec![
            ToolCall {
                id: "toolu_01A09q90qw90lq917835lq9".into(),
                name: "write_file".into(),
                arguments: json!({"path": "notes/todo.md", "content": "- buy milk\n"}),
            },
            ToolCall {
                id: "toolu_01B7".into(),
                name: "list_files".into(),
                arguments: json!({})
            },
        ]
    );
}

#[test]
fn bad_json_is_a_clear_error() {
    let missing_id =
        json!({"content": [{"type": "tool_use", "name": "x", "input": {}}]}).to_string();
    for raw in ["", "not json", "[1,2]", missing_id.as_str()] {
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
        "claude-9-opus",
    );
    assert!(
        matches!(unknown, ProviderError::UnknownModel { ref message, .. } if message == "model: claude-9-opus")
    );
    let overloaded = classify(529, &HeaderMap::new(), OVERLOADED.as_bytes(), "u", "m");
    assert!(overloaded.is_transient());
    assert!(
        matches!(overloaded, ProviderError::Status { status: 529, ref message, .. } if message == "Overloaded")
    );
}

#[test]
fn cache_counters_are_read_and_added_to_the_input() {
    let response = parse_response(include_bytes!(
        "../../../tests/data/llm/anthropic/text_cached.json"
    ));
    let Ok(response) = response else {
        panic!("{response:?}")
    };
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
fn the_system_prompt_and_the_end_of_the_conversation_are_cache_breakpoints() {
    let body = build_body(&sample_request(), "claude-sonnet-4-5", false);
    assert_eq!(
        body["system"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    let last = body["messages"].as_array().unwrap().last().unwrap();
    let blocks = last["content"].as_array().unwrap();
    assert_eq!(
        blocks.last().unwrap()["cache_control"],
        json!({"type": "ephemeral"})
    );
    // Only those two: Anthropic allows four, and every marker must sit where the next
    // request still matches.
    assert_eq!(body.to_string().matches("cache_control").count(), 2);
}

#[test]
fn a_note_and_the_message_after_it_are_one_user_message() {
    let request = ChatRequest {
        system: String::new(),
        messages: vec![Message::note("(time)"), Message::user("hello")],
        tools: Vec::new(),
        max_tokens: 10,
        model: None,
    };
    let body = build_body(&request, "m", false);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["content"][0]["text"], json!("(time)"));
    assert_eq!(messages[0]["content"][1]["text"], json!("hello"));
    assert!(body.get("system").is_none(), "no empty system prompt");
}

#[test]
fn images_go_as_base64_blocks_before_the_text() {
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
    insta::assert_json_snapshot!(build_body(&request, "m", false)["messages"]);
}
