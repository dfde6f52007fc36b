//! Reading a received event: strict, total (never panics), and every failure a typed
//! [`Rejection`] that can be sent back as a `dev.matrixos.a2a.reject`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{
    MAX_SEQ, MAX_TEXT, VERSION,
    events::{Body, Message, ProtocolEvent, Reject, RejectCode, types},
    ids::{NegotiationId, check_id, clean_text, truncate_chars},
};

/// Why a received event was not taken. Send it back with [`Rejection::reply`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {detail}")]
pub struct Rejection {
    /// What was wrong.
    pub code: RejectCode,
    /// What was wrong, for logs (at most 1000 characters).
    pub detail: String,
    /// The event's negotiation, if it could be read.
    pub negotiation_id: Option<NegotiationId>,
    /// The event's Matrix type, if it is a valid identifier.
    pub event_type: Option<String>,
}

impl Rejection {
    fn new(
        code: RejectCode,
        detail: impl Into<String>,
        event_type: &str,
        id: Option<NegotiationId>,
    ) -> Self {
        Rejection {
            code,
            detail: clean_text(&detail.into(), MAX_TEXT),
            negotiation_id: id,
            event_type: check_id(event_type).is_ok().then(|| event_type.to_owned()),
        }
    }

    /// The reject event to send back, naming the rejected event's Matrix ID if known; `None` when
    /// the rejected event was itself a reject, because rejects are never answered.
    pub fn reply(&self, event_id: Option<&str>) -> Option<ProtocolEvent> {
        if self.event_type.as_deref() == Some(types::REJECT) {
            return None;
        }
        Some(ProtocolEvent::Reject(Reject::new(
            self.negotiation_id.clone(),
            self.code,
            self.detail.clone(),
            self.event_type.as_deref(),
            event_id,
        )))
    }
}

/// Parses the `content` of a Matrix event of type `event_type` into a protocol event.
///
/// Checks, in order: the content is an object; `version` is a string naming a version this
/// implementation speaks (else [`RejectCode::UnknownVersion`]); the type is one of
/// [`types`]; the envelope (`negotiation_id`, `seq`) and the type's own fields have the right
/// shape, with no unknown fields; and the values follow the rules in `docs/protocol.md` (ranges,
/// lengths, slots inside the window). Everything but a wrong version is
/// [`RejectCode::Malformed`]. Rules that need the negotiation's state (is this event expected
/// now, do a counter's slots fit the request) are checked by the negotiation.
pub fn parse(event_type: &str, content: &Value) -> Result<ProtocolEvent, Rejection> {
    let Some(object) = content.as_object() else {
        return Err(Rejection::new(
            RejectCode::Malformed,
            "content is not a JSON object",
            event_type,
            None,
        ));
    };
    let negotiation_id = object
        .get("negotiation_id")
        .and_then(Value::as_str)
        .and_then(|id| NegotiationId::new(id).ok());
    let reject =
        |code, detail: String| Rejection::new(code, detail, event_type, negotiation_id.clone());
    let malformed = |detail: String| reject(RejectCode::Malformed, detail);

    match object.get("version") {
        Some(Value::String(v)) if v == VERSION => {}
        Some(Value::String(v)) => {
            return Err(reject(
                RejectCode::UnknownVersion,
                format!(
                    "version {:?} is not spoken here; supported: {VERSION:?}",
                    truncate_chars(v.clone(), 32)
                ),
            ));
        }
        Some(_) => return Err(malformed("version must be a string".into())),
        None => return Err(malformed("version is missing".into())),
    }

    if event_type == types::REJECT {
        let reject_event: Reject = fields(object, &["version"]).map_err(malformed)?;
        reject_event.validate().map_err(malformed)?;
        return Ok(ProtocolEvent::Reject(reject_event));
    }

    const KNOWN: &[&str] = &[
        types::HELLO,
        types::REQUEST,
        types::COUNTER,
        types::ACCEPT,
        types::DECLINE,
        types::CONFIRM,
        types::CANCEL,
    ];
    if !KNOWN.contains(&event_type) {
        return Err(malformed(UNKNOWN_TYPE.into()));
    }
    let Some(negotiation_id) = negotiation_id.clone() else {
        return Err(malformed(
            "negotiation_id must be 1 to 255 visible ASCII characters".into(),
        ));
    };
    let seq = match object.get("seq").and_then(Value::as_u64) {
        Some(seq) if (1..=MAX_SEQ).contains(&seq) => seq,
        _ => {
            return Err(malformed(format!(
                "seq must be an integer from 1 to {MAX_SEQ}"
            )));
        }
    };
    let body = match event_type {
        types::HELLO => Body::Hello(fields(object, ENVELOPE).map_err(malformed)?),
        types::REQUEST => Body::Request(fields(object, ENVELOPE).map_err(malformed)?),
        types::COUNTER => Body::Counter(fields(object, ENVELOPE).map_err(malformed)?),
        types::ACCEPT => Body::Accept(fields(object, ENVELOPE).map_err(malformed)?),
        types::DECLINE => Body::Decline(fields(object, ENVELOPE).map_err(malformed)?),
        types::CONFIRM => Body::Confirm(fields(object, ENVELOPE).map_err(malformed)?),
        types::CANCEL => Body::Cancel(fields(object, ENVELOPE).map_err(malformed)?),
        _ => return Err(malformed(UNKNOWN_TYPE.into())),
    };
    let valid = match &body {
        Body::Hello(hello) => hello.validate(VERSION),
        Body::Request(request) => request.validate(),
        Body::Counter(counter) => counter.validate(),
        Body::Accept(_) | Body::Confirm(_) => Ok(()),
        Body::Decline(decline) => decline.validate(),
        Body::Cancel(cancel) => cancel.validate(),
    };
    valid.map_err(malformed)?;
    Ok(ProtocolEvent::Message(Message {
        negotiation_id,
        seq,
        body,
    }))
}

const UNKNOWN_TYPE: &str = "not a dev.matrixos.a2a event type of version 1";

/// The envelope fields every negotiation event carries besides its own.
const ENVELOPE: &[&str] = &["version", "negotiation_id", "seq"];

/// Deserializes the object without the `skip` fields into `T`, which denies unknown fields.
fn fields<T: DeserializeOwned>(object: &Map<String, Value>, skip: &[&str]) -> Result<T, String> {
    let rest: Map<String, Value> = object
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_path_to_error::deserialize(Value::Object(rest)).map_err(|e| match e.path().to_string() {
        path if path == "." => e.inner().to_string(),
        path => format!("{path}: {}", e.inner()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "parse_tests.rs"]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "parse_fuzz_tests.rs"]
mod fuzz_tests;
