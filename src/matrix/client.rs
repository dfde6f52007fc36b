//! Client-server calls made by the appservice, as itself or as a twin (identity assertion).

use std::{borrow::Cow, collections::BTreeMap, time::Duration};

use ruma::{
    DeviceId, UserId,
    api::{
        AppserviceUserIdentity, IncomingResponse, OutgoingRequest, OutgoingRequestAppserviceExt,
        SupportedVersions,
        auth_scheme::{AuthScheme, SendAccessToken},
        path_builder::VersionHistory,
    },
};
use serde::Deserialize;

use super::MatrixError;
use crate::secret::Secret;

/// Largest answer read from the homeserver (a big `/keys/query` stays well below it).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// How hard to try one call.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubled each time.
    pub base_delay: Duration,
    /// Largest backoff (also caps `retry_after_ms`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries, for calls whose failure is itself the answer (doctor, ping).
    pub fn once() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.base_delay.saturating_mul(1 << attempt.min(16));
        retry_after.unwrap_or(backoff).min(self.max_delay)
    }
}

/// The appservice's client-server API client.
#[derive(Debug, Clone)]
pub struct MatrixClient {
    http: reqwest::Client,
    base_url: String,
    as_token: Secret,
    versions: SupportedVersions,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errcode: String,
    #[serde(default)]
    error: String,
    retry_after_ms: Option<u64>,
}

impl MatrixClient {
    /// A client for `base_url` using the registration's `as_token`; every request times out
    /// after `timeout`.
    pub fn new(base_url: &str, as_token: Secret, timeout: Duration) -> Result<Self, MatrixError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| MatrixError::Protocol(format!("cannot build HTTP client: {e}")))?;
        // Endpoints we use are all in Matrix 1.1+; pick stable paths without asking /versions.
        let versions = SupportedVersions::from_parts(
            &[
                "v1.1".to_owned(),
                "v1.4".to_owned(),
                "v1.7".to_owned(),
                "v1.11".to_owned(),
            ],
            &BTreeMap::new(),
        );
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            as_token,
            versions,
        })
    }

    /// The homeserver's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `request` as `user` (a twin) or, with `None`, as the appservice's own user, retrying
    /// transient failures per the default policy.
    pub async fn send<R>(
        &self,
        request: R,
        user: Option<&UserId>,
    ) -> Result<R::IncomingResponse, MatrixError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory> + Clone,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        self.send_with(request, user, RetryPolicy::default()).await
    }

    /// [`MatrixClient::send`] with an explicit retry policy.
    pub async fn send_with<R>(
        &self,
        request: R,
        user: Option<&UserId>,
        policy: RetryPolicy,
    ) -> Result<R::IncomingResponse, MatrixError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory> + Clone,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        self.send_as_device(request, user, None, policy).await
    }

    /// Sends `request` as a twin's device (identity assertion with `user_id` and `device_id`),
    /// as end-to-end encryption needs for keys and to-device messages.
    pub async fn send_as_device<R>(
        &self,
        request: R,
        user: Option<&UserId>,
        device: Option<&DeviceId>,
        policy: RetryPolicy,
    ) -> Result<R::IncomingResponse, MatrixError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory> + Clone,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let mut attempt = 0;
        loop {
            match self.send_once(request.clone(), user, device).await {
                Ok(response) => return Ok(response),
                Err(err) if err.is_transient() && attempt + 1 < policy.attempts => {
                    let retry_after = match &err {
                        MatrixError::Api { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let delay = policy.delay(attempt, retry_after);
                    tracing::debug!(%err, ?delay, attempt, "transient homeserver error, retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn send_once<R>(
        &self,
        request: R,
        user: Option<&UserId>,
        device: Option<&DeviceId>,
    ) -> Result<R::IncomingResponse, MatrixError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory>,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        self.send_bounded(request, user, device, MAX_RESPONSE_BYTES)
            .await
    }

    /// One call, its answer read up to `max_bytes` ([`MatrixError::TooLarge`] beyond).
    pub(super) async fn send_bounded<R>(
        &self,
        request: R,
        user: Option<&UserId>,
        device: Option<&DeviceId>,
        max_bytes: usize,
    ) -> Result<R::IncomingResponse, MatrixError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory>,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let mut identity = AppserviceUserIdentity::default();
        identity.user_id = user;
        identity.device_id = device;
        let http_request: http::Request<Vec<u8>> = request
            .try_into_http_request_with_identity(
                &self.base_url,
                SendAccessToken::Appservice(self.as_token.expose()),
                identity,
                Cow::Borrowed(&self.versions),
            )
            .map_err(|e| MatrixError::Protocol(format!("cannot build request: {e}")))?;
        let (mut parts, body) = http_request.into_parts();
        // Endpoints that need no token (a profile) still go as the appservice: the homeserver
        // then knows who asks and does not rate-limit the service as an anonymous client.
        if !parts.headers.contains_key(http::header::AUTHORIZATION) {
            let bearer = http::HeaderValue::from_str(&format!("Bearer {}", self.as_token.expose()))
                .map_err(|e| MatrixError::Protocol(format!("cannot build request: {e}")))?;
            parts.headers.insert(http::header::AUTHORIZATION, bearer);
        }
        let url = parts.uri.to_string();
        let response = self
            .http
            .request(parts.method, &url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| MatrixError::Unreachable {
                url: self.base_url.clone(),
                message: describe_reqwest_error(&e),
            })?;
        let status = response.status();
        let retry_after_header = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut builder = http::Response::builder().status(status);
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let bytes = crate::bounded_body::read(response, max_bytes)
            .await
            .map_err(|e| match e {
                crate::bounded_body::BodyError::Read(e) => MatrixError::Unreachable {
                    url: self.base_url.clone(),
                    message: describe_reqwest_error(&e),
                },
                crate::bounded_body::BodyError::TooLarge { max } => MatrixError::TooLarge { max },
            })?;
        if !status.is_success() {
            let parsed: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            let (errcode, message, retry_after_ms) = match parsed {
                Some(body) => (body.errcode, body.error, body.retry_after_ms),
                None => (
                    String::new(),
                    String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                    None,
                ),
            };
            return Err(MatrixError::Api {
                status: status.as_u16(),
                errcode: if errcode.is_empty() {
                    "M_UNKNOWN".into()
                } else {
                    errcode
                },
                message,
                retry_after: retry_after_ms
                    .map(Duration::from_millis)
                    .or(retry_after_header),
            });
        }
        let http_response = builder
            .body(bytes)
            .map_err(|e| MatrixError::Protocol(format!("bad response: {e}")))?;
        R::IncomingResponse::try_from_http_response(http_response)
            .map_err(|e| MatrixError::Protocol(format!("unexpected response from homeserver: {e}")))
    }
}

fn describe_reqwest_error(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "connection refused or failed (is it running? check homeserver.url)".to_owned()
    } else {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            source = inner.source();
        }
        text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped_and_honours_retry_after() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, None), Duration::from_millis(250));
        assert_eq!(policy.delay(2, None), Duration::from_millis(1000));
        assert_eq!(policy.delay(10, None), Duration::from_secs(10));
        assert_eq!(
            policy.delay(0, Some(Duration::from_millis(1234))),
            Duration::from_millis(1234)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(600))),
            Duration::from_secs(10)
        );
    }
}
