//! One HTTP exchange with a provider, and how its failures are classified.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use reqwest::{Client, RequestBuilder, Response};

use super::{ProviderError, retry::parse_retry_after};

/// Longest piece of a provider's error body quoted in a message.
const MAX_ERROR_CHARS: usize = 500;
/// Largest answer read from a provider; a larger one is a bad response.
pub(super) const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Where a request goes: the real URL and the one that may be shown.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) url: String,
    pub(super) shown: String,
}

/// Sends `request` and returns the body of a 2xx answer; anything else becomes a
/// [`ProviderError`]. `model` names the configured model in "unknown model" errors.
pub(super) async fn send(
    request: RequestBuilder,
    endpoint: &Endpoint,
    timeout: Duration,
    model: &str,
) -> Result<Vec<u8>, ProviderError> {
    let response = open_stream(request, endpoint, timeout, model).await?;
    read_body(response, endpoint, timeout).await
}

/// Sends `request` and returns a 2xx answer with its body not read yet (a stream); an error
/// status is read (bounded) and classified as [`send`] does.
pub(super) async fn open_stream(
    request: RequestBuilder,
    endpoint: &Endpoint,
    timeout: Duration,
    model: &str,
) -> Result<Response, ProviderError> {
    let response = request
        .send()
        .await
        .map_err(|e| transport_error(e, endpoint, timeout))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = read_body(response, endpoint, timeout).await?;
    Err(classify(status, &headers, &body, &endpoint.shown, model))
}

/// Reads a whole body, at most [`MAX_RESPONSE_BYTES`] of it.
pub(super) async fn read_body(
    response: Response,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<Vec<u8>, ProviderError> {
    match crate::bounded_body::read(response, MAX_RESPONSE_BYTES).await {
        Ok(body) => Ok(body),
        Err(crate::bounded_body::BodyError::Read(e)) => Err(transport_error(e, endpoint, timeout)),
        Err(too_large) => Err(ProviderError::BadResponse(too_large.to_string())),
    }
}

/// Builds a client whose every request has `timeout`.
pub(super) fn client(timeout: Duration) -> Result<Client, reqwest::Error> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(15)))
        .user_agent(concat!("matrix-os/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Turns a failure to send or read into a timeout or connection error.
pub(super) fn transport_error(
    error: reqwest::Error,
    endpoint: &Endpoint,
    timeout: Duration,
) -> ProviderError {
    let url = endpoint.shown.clone();
    if error.is_timeout() {
        return ProviderError::Timeout { url, timeout };
    }
    // reqwest's Display hides the cause ("error sending request"); the chain says what failed.
    let error = error.without_url();
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    ProviderError::Connect { url, detail }
}

/// Turns an error status and body into the most helpful [`ProviderError`].
pub(super) fn classify(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    url: &str,
    model: &str,
) -> ProviderError {
    let message = error_message(body);
    let lower = message.to_lowercase();
    let model_missing = status == 404
        || lower.contains("model_not_found")
        || (lower.contains("model")
            && (lower.contains("not found") || lower.contains("does not exist")));
    match status {
        401 | 403 => ProviderError::Auth { status, message },
        400..=499 if status != 429 && model_missing => ProviderError::UnknownModel {
            model: model.to_owned(),
            status,
            message,
        },
        _ => ProviderError::Status {
            status,
            url: url.to_owned(),
            message,
            retry_after: parse_retry_after(headers, SystemTime::now()),
        },
    }
}

/// Finds the human message in an error body.
///
/// OpenAI, Anthropic and most compatible servers put it at `error.message`; Ollama sometimes
/// sends `{"error": "..."}`; proxies send HTML or plain text, quoted (shortened) as is.
pub(super) fn error_message(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let found = [
            json.pointer("/error/message"),
            json.get("error").filter(|e| e.is_string()),
            json.get("message").filter(|e| e.is_string()),
            json.get("detail").filter(|e| e.is_string()),
        ];
        if let Some(text) = found.into_iter().flatten().find_map(|v| v.as_str()) {
            return shorten(text.trim());
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(no error message)".to_owned()
    } else {
        shorten(text)
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_found_in_every_common_shape() {
        let openai = br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert_eq!(error_message(openai), "Rate limit reached");
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(error_message(anthropic), "Overloaded");
        assert_eq!(
            error_message(br#"{"error":"model 'x' not found"}"#),
            "model 'x' not found"
        );
        assert_eq!(
            error_message(b"<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
        assert_eq!(error_message(b""), "(no error message)");
        assert!(error_message("x".repeat(2000).as_bytes()).chars().count() <= MAX_ERROR_CHARS + 1);
    }

    #[test]
    fn statuses_are_classified_for_the_admin() {
        let h = HeaderMap::new();
        let unknown = br#"{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","code":"model_not_found"}}"#;
        assert!(matches!(
            classify(404, &h, unknown, "u", "gpt-9"),
            ProviderError::UnknownModel { ref model, status: 404, .. } if model == "gpt-9"
        ));
        assert!(matches!(
            classify(401, &h, b"{}", "u", "m"),
            ProviderError::Auth { status: 401, .. }
        ));
        assert!(matches!(
            classify(400, &h, b"{}", "u", "m"),
            ProviderError::Status { status: 400, .. }
        ));
        assert!(matches!(
            classify(500, &h, b"{}", "u", "m"),
            ProviderError::Status { status: 500, .. }
        ));
        let shown = classify(
            404,
            &h,
            br#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}"#,
            "u",
            "claude-x",
        )
        .to_string();
        assert!(
            shown.contains("\"claude-x\"") && shown.contains("may be wrong"),
            "{shown}"
        );
    }
}
