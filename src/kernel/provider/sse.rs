//! Streamed answers: server-sent events from a response body into a wire format's parser,
//! the answer's text into a [`TextSink`] as it comes.
//!
//! The SSE framing is `eventsource-stream`'s; each wire format only turns event data into
//! text deltas and, at the end, a [`ChatResponse`] (see `openai_stream.rs` and
//! `anthropic_stream.rs`). [`run`] adds the retries: only until the first text reached the
//! sink, because a sink cannot take text back.

use std::pin::pin;

use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use http::HeaderMap;
use reqwest::RequestBuilder;

use super::{
    ChatResponse, ProviderError, Settings, TextSink,
    retry::with_retries,
    transport::{self, Endpoint, MAX_RESPONSE_BYTES},
};

/// A wire format's streaming parser: one event at a time, then the whole answer.
pub(super) trait SseParser: Sized {
    /// Reads one event (`name` is the SSE event name, `message` when the server gave none);
    /// returns the text it adds to the answer, if any.
    fn on_event(&mut self, name: &str, data: &str) -> Result<Option<String>, ProviderError>;

    /// Whether the terminal event came; nothing after it is read.
    fn is_done(&self) -> bool;

    /// The whole answer, or why the stream did not make one.
    fn into_response(self) -> Result<ChatResponse, ProviderError>;

    /// Parses a whole (not streamed) answer of this wire format.
    fn parse_whole(raw: &[u8]) -> Result<ChatResponse, ProviderError>;
}

/// A failed streamed read.
#[derive(Debug)]
pub(super) struct Failure {
    /// What went wrong.
    pub(super) error: ProviderError,
    /// Whether text had reached the sink before (then the call must not be retried).
    pub(super) delivered: bool,
}

/// Why the byte stream stopped.
enum ReadError<E> {
    Transport(E),
    TooLarge,
}

/// Reads `bytes` as server-sent events into `parser`, giving its text to `sink`, until the
/// parser's terminal event or the end of the body. At most `max` bytes are read; `transport`
/// turns a failure of the byte stream into a [`ProviderError`].
pub(super) async fn read_events<S, B, E, P>(
    bytes: S,
    mut parser: P,
    sink: &dyn TextSink,
    max: usize,
    transport: impl Fn(E) -> ProviderError,
) -> Result<ChatResponse, Failure>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    P: SseParser,
{
    let mut total = 0usize;
    let bounded = bytes.map(move |chunk| {
        let chunk = chunk.map_err(ReadError::Transport)?;
        total = total.saturating_add(chunk.as_ref().len());
        if total > max {
            return Err(ReadError::TooLarge);
        }
        Ok(chunk)
    });
    let mut events = pin!(bounded.eventsource());
    let mut delivered = false;
    while let Some(event) = events.next().await {
        let error = match event {
            Ok(event) => match parser.on_event(&event.event, &event.data) {
                Ok(Some(text)) if !text.is_empty() => {
                    sink.text(&text);
                    delivered = true;
                    None
                }
                Ok(_) => None,
                Err(error) => Some(error),
            },
            Err(EventStreamError::Transport(ReadError::Transport(e))) => Some(transport(e)),
            Err(EventStreamError::Transport(ReadError::TooLarge)) => {
                Some(ProviderError::BadResponse(format!(
                    "the streamed answer is larger than {max} bytes"
                )))
            }
            Err(EventStreamError::Utf8(e)) => Some(ProviderError::BadResponse(format!(
                "the stream is not UTF-8 ({e})"
            ))),
            Err(EventStreamError::Parser(e)) => Some(ProviderError::BadResponse(format!(
                "the stream is not server-sent events ({e})"
            ))),
        };
        if let Some(error) = error {
            return Err(Failure { error, delivered });
        }
        if parser.is_done() {
            break;
        }
    }
    parser
        .into_response()
        .map_err(|error| Failure { error, delivered })
}

/// Runs one streamed model call: opens the stream (`request` builds the HTTP request anew for
/// each attempt), reads it with a fresh `parser()`, and retries transient failures as
/// [`with_retries`] does, but only while no text has reached `sink`. `model` names the
/// requested model in "unknown model" errors.
///
/// A server that ignores the `stream` flag and answers with JSON is read as a whole
/// ([`SseParser::parse_whole`]), its text given to `sink` at once.
pub(super) async fn run<P: SseParser>(
    settings: &Settings,
    what: &str,
    endpoint: &Endpoint,
    model: &str,
    sink: &dyn TextSink,
    request: impl Fn() -> RequestBuilder,
    parser: impl Fn() -> P,
) -> Result<ChatResponse, ProviderError> {
    let timeout = settings.timeout;
    let (request, parser) = (&request, &parser);
    // The outer error may be retried; the inner one (after text was shown) is final.
    with_retries(&settings.retry, what, move || async move {
        let response = transport::open_stream(request(), endpoint, timeout, model).await?;
        if is_json(response.headers()) {
            let raw = transport::read_body(response, endpoint, timeout).await?;
            let answer = P::parse_whole(&raw)?;
            if !answer.content.is_empty() {
                sink.text(&answer.content);
            }
            return Ok(Ok(answer));
        }
        let read = read_events(
            response.bytes_stream(),
            parser(),
            sink,
            MAX_RESPONSE_BYTES,
            |e| transport::transport_error(e, endpoint, timeout),
        )
        .await;
        match read {
            Ok(answer) => Ok(Ok(answer)),
            // Text was shown: the failure is final, whatever it is.
            Err(Failure {
                error,
                delivered: true,
            }) => Ok(Err(error)),
            Err(Failure { error, .. }) => Err(error),
        }
    })
    .await?
}

/// Whether the answer is a JSON document rather than an event stream.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// The HTTP status that an error event's `type` (Anthropic) or `type`/`code` (OpenAI) stands
/// for, so that an error inside a stream is as transient, or not, as the same error sent as
/// a status; `None` for kinds not known here.
pub(super) fn status_of_error_kind(kind: &str) -> Option<u16> {
    Some(match kind {
        "invalid_request_error" => 400,
        "authentication_error" | "invalid_api_key" => 401,
        "permission_error" => 403,
        "not_found_error" | "model_not_found" => 404,
        "request_too_large" => 413,
        "rate_limit_error"
        | "rate_limit_exceeded"
        | "insufficient_quota"
        | "requests"
        | "tokens" => 429,
        "api_error" | "server_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

/// The [`ProviderError`] for an error event whose JSON is `data`, classified like an error
/// status `status` with `data` as its body.
pub(super) fn error_event(status: u16, data: &str, url: &str, model: &str) -> ProviderError {
    transport::classify(status, &HeaderMap::new(), data.as_bytes(), url, model)
}

/// Replaying recorded streams in tests, without a network.
#[cfg(test)]
pub(super) mod testing {
    use std::sync::Mutex;

    use axum::body::Bytes;

    use super::{ChatResponse, Failure, SseParser, TextSink, read_events};

    /// A sink that keeps every piece.
    #[derive(Default)]
    pub(crate) struct Collect(pub(crate) Mutex<Vec<String>>);

    impl TextSink for Collect {
        fn text(&self, delta: &str) {
            if let Ok(mut pieces) = self.0.lock() {
                pieces.push(delta.to_owned());
            }
        }
    }

    /// Feeds `sse` to `parser` through the real SSE reader in chunks of the given sizes
    /// (repeated; none: one chunk), bounded at `max` bytes; returns the pieces the sink got and
    /// the outcome.
    pub(crate) fn replay_bounded<P: SseParser>(
        sse: &[u8],
        parser: P,
        sizes: &[usize],
        max: usize,
    ) -> (Vec<String>, Result<ChatResponse, Failure>) {
        let mut chunks = Vec::new();
        let mut rest = sse;
        for size in sizes.iter().copied().filter(|s| *s > 0).cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            chunks.push(Ok::<Bytes, std::io::Error>(Bytes::copy_from_slice(chunk)));
            rest = tail;
        }
        if !rest.is_empty() {
            chunks.push(Ok(Bytes::copy_from_slice(rest)));
        }
        let sink = Collect::default();
        let outcome = futures::executor::block_on(read_events(
            futures::stream::iter(chunks),
            parser,
            &sink,
            max,
            |e| super::ProviderError::Connect {
                url: "u".into(),
                detail: e.to_string(),
            },
        ));
        let pieces = sink.0.into_inner().unwrap_or_default();
        (pieces, outcome)
    }

    /// [`replay_bounded`] in one chunk, with the real bound.
    pub(crate) fn replay<P: SseParser>(
        sse: &str,
        parser: P,
    ) -> (Vec<String>, Result<ChatResponse, Failure>) {
        replay_bounded(sse.as_bytes(), parser, &[], super::MAX_RESPONSE_BYTES)
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
#[path = "sse_tests.rs"]
mod tests;
