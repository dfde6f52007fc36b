//! `PUT /_matrix/app/v1/transactions/{txnId}`: store first, answer 200, handle later.
//!
//! The 200 is sent only once the events are durably in the inbox, so a crash after the answer
//! loses nothing; a txnId seen before is answered 200 without storing anything again.

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::value::RawValue;

use ruma::{OwnedEventId, OwnedRoomId};

use super::{AppState, error::ApiError};
use crate::storage::IncomingEvent;

#[derive(Deserialize)]
struct TransactionBody<'a> {
    #[serde(borrow, default)]
    events: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct EventHead {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Kept only when it is a valid room id (the reader parses the event itself later).
    #[serde(default, deserialize_with = "lenient")]
    room_id: Option<OwnedRoomId>,
    #[serde(default, deserialize_with = "lenient")]
    event_id: Option<OwnedEventId>,
}

/// A field that is `None` when missing or malformed, instead of failing the whole event.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// A transaction's events, each with its room and id as read from its head.
pub(crate) struct Parsed {
    pub(crate) events: Vec<IncomingEvent>,
    event_ids: Vec<Option<OwnedEventId>>,
}

/// What a transaction is deduplicated by: its id and what it carries (the ids of its events, or
/// the body's digest when it has none). Synapse on SQLite numbers transactions from 1 again
/// after a restart, so an id alone would silently drop new events as repeats; a retry carries
/// the same events and keeps the same key.
pub(crate) fn dedup_key(txn_id: &str, event_ids: &[Option<OwnedEventId>], body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    let mut any_id = false;
    for id in event_ids.iter().flatten() {
        any_id = true;
        digest.update(id.as_str().as_bytes());
        digest.update([0]);
    }
    if !any_id {
        digest.update(body);
    }
    let hex: String = digest.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{txn_id}:{hex}")
}

/// Checks the body and returns its events (JSON texts as received, in order, each with its
/// room) and their ids.
pub(crate) fn parse_events(body: &[u8]) -> Result<Parsed, ApiError> {
    let parsed: TransactionBody<'_> = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "M_NOT_JSON",
            format!("body is not a transaction: {e}"),
        )
    })?;
    let events = parsed
        .events
        .ok_or_else(|| ApiError::bad_json("missing `events` array"))?;
    let mut out = Parsed {
        events: Vec::with_capacity(events.len()),
        event_ids: Vec::with_capacity(events.len()),
    };
    for (index, raw) in events.into_iter().enumerate() {
        let head: EventHead = serde_json::from_str(raw.get()).map_err(|e| {
            ApiError::bad_json(format!("events[{index}] is not an event object: {e}"))
        })?;
        if head.kind.is_none() {
            return Err(ApiError::bad_json(format!("events[{index}] has no `type`")));
        }
        out.events.push(IncomingEvent {
            room_id: head.room_id,
            json: raw.get().to_owned(),
        });
        out.event_ids.push(head.event_id);
    }
    Ok(out)
}

pub(crate) async fn put_transaction(
    State(state): State<AppState>,
    Path(txn_id): Path<String>,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "M_TOO_LARGE",
                format!("transaction body over {} bytes", state.max_body_bytes),
            )
            .into_response();
        }
    };
    let parsed = match parse_events(&bytes) {
        Ok(parsed) => parsed,
        Err(err) => {
            tracing::warn!(%txn_id, ?err, "malformed transaction refused");
            return err.into_response();
        }
    };
    // Encryption data is stored with the events, in the same database transaction.
    let crypto = match crate::crypto::CryptoChanges::from_transaction(&bytes) {
        Ok(changes) => changes.and_then(|c| serde_json::to_string(&c).ok()),
        Err(err) => {
            tracing::warn!(%txn_id, %err, "malformed encryption fields refused");
            return ApiError::bad_json(format!("malformed encryption fields: {err}"))
                .into_response();
        }
    };
    match state
        .store
        .record_transaction_with_crypto(
            &dedup_key(&txn_id, &parsed.event_ids, &bytes),
            crypto.as_deref(),
            &parsed.events,
        )
        .await
    {
        Ok(true) => {
            tracing::debug!(%txn_id, events = parsed.events.len(), "transaction stored");
            state.inbox_ready.notify_one();
            if let Some(metrics) = &state.metrics {
                metrics.transactions_received.inc();
                metrics
                    .events_received
                    .inc_by(u64::try_from(parsed.events.len()).unwrap_or(u64::MAX));
            }
        }
        Ok(false) => tracing::debug!(%txn_id, "repeated transaction acknowledged"),
        Err(err) => {
            tracing::error!(%txn_id, %err, "could not store transaction");
            return ApiError::internal("could not store the transaction; retry later")
                .into_response();
        }
    }
    if let Some(metrics) = &state.metrics {
        // Repeats too: the homeserver waits for every answer.
        metrics
            .ack_duration
            .observe(started.elapsed().as_secs_f64());
    }
    Json(serde_json::json!({})).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_txn_id_with_new_events_is_a_new_transaction_and_a_retry_is_not() {
        let a = parse_events(br#"{"events":[{"event_id":"$a","type":"x"}]}"#)
            .unwrap()
            .event_ids;
        let b = parse_events(br#"{"events":[{"event_id":"$b","type":"x"}]}"#)
            .unwrap()
            .event_ids;
        assert_eq!(
            dedup_key("1", &a, b"one body"),
            dedup_key("1", &a, b"reserialized")
        );
        assert_ne!(dedup_key("1", &a, b""), dedup_key("1", &b, b""));
        assert_ne!(
            dedup_key("1", &[], b"{\"x\":1}"),
            dedup_key("1", &[], b"{\"x\":2}")
        );
        assert!(dedup_key("7", &a, b"").starts_with("7:"));
    }

    #[test]
    fn events_are_kept_verbatim_in_order() {
        let body = br#"{"events":[{"type":"m.room.message","room_id":"!r:x","content":{"body":"a"}},{"type":"x","room_id":5}]}"#;
        let events = parse_events(body).unwrap().events;
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].json,
            r#"{"type":"m.room.message","room_id":"!r:x","content":{"body":"a"}}"#
        );
        assert_eq!(events[0].room_id.as_ref().unwrap(), "!r:x");
        assert_eq!(events[1].room_id, None, "a malformed room id is no room");
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"events":[1]}"#,
            br#"{"events":[{"content":{}}]}"#,
        ] {
            assert!(
                parse_events(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn empty_transaction_is_fine() {
        assert!(parse_events(br#"{"events":[]}"#).unwrap().events.is_empty());
    }
}
