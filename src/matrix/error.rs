//! Errors from client-server calls.

use std::time::Duration;

/// A client-server call failed.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// The homeserver answered with a Matrix error.
    #[error("homeserver answered {status} {errcode}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Matrix `errcode`, e.g. `M_FORBIDDEN`.
        errcode: String,
        /// Matrix `error` text.
        message: String,
        /// `retry_after_ms` (or `Retry-After`), when given.
        retry_after: Option<Duration>,
    },
    /// The homeserver could not be reached or did not answer in time.
    #[error("cannot reach the homeserver at {url}: {message}")]
    Unreachable {
        /// Base URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The request could not be built or the answer not understood.
    #[error("{0}")]
    Protocol(String),
    /// The answer was larger than the caller allows (a media download over its bound).
    #[error("the homeserver's answer is larger than {max} bytes")]
    TooLarge {
        /// The bound, in bytes.
        max: usize,
    },
}

impl MatrixError {
    /// The Matrix errcode, when the homeserver gave one.
    pub fn errcode(&self) -> Option<&str> {
        match self {
            Self::Api { errcode, .. } => Some(errcode),
            _ => None,
        }
    }

    /// Whether trying again later can help (rate limits, server errors, network).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            Self::Unreachable { .. } => true,
            Self::Protocol(_) | Self::TooLarge { .. } => false,
        }
    }
}
