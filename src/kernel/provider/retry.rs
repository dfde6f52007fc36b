//! When to try a model call again, and how long to wait first.
//!
//! [`RetryPolicy::decide`] and [`parse_retry_after`] are pure so that the policy is tested
//! without clocks or networks; [`with_retries`] is the one loop every provider goes through.

use std::{
    future::Future,
    time::{Duration, SystemTime},
};

use http::HeaderMap;

use super::ProviderError;

/// Retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// Longest computed wait.
    pub max_delay: Duration,
    /// Longest wait a `retry-after` header may impose; longer asks are cut to this.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The defaults with `max_retries` retries.
    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }

    /// What to do after attempt number `attempt` (1-based) failed with `error`.
    ///
    /// `jitter` is a number in `[0, 1)`; callers pass a random one so that many twins hitting
    /// a rate limit together do not retry in lockstep.
    pub fn decide(&self, attempt: u32, error: &ProviderError, jitter: f64) -> RetryDecision {
        if !error.is_transient() || attempt > self.max_retries {
            return RetryDecision::GiveUp;
        }
        if let ProviderError::Status {
            retry_after: Some(wait),
            ..
        } = error
        {
            return RetryDecision::RetryAfter((*wait).min(self.max_retry_after));
        }
        let exponent = attempt.saturating_sub(1).min(16);
        let full = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        // "Equal jitter": never less than half the backoff, so retries still back off.
        let jitter = jitter.clamp(0.0, 1.0);
        RetryDecision::RetryAfter(full / 2 + full.mul_f64(jitter / 2.0))
    }
}

/// The outcome of [`RetryPolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Report the failure.
    GiveUp,
}

/// Reads `retry-after-ms` (OpenAI) or `retry-after` (seconds or an HTTP date).
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return non_negative_secs(ms / 1000.0);
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return non_negative_secs(secs);
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn non_negative_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// Runs `attempt` until it succeeds, fails for good, or retries are used up.
///
/// A failure after retries is wrapped in [`ProviderError::GaveUp`] so the room can be told how
/// hard we tried.
pub async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut attempt: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut made = 0u32;
    loop {
        made += 1;
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let jitter: f64 = rand::random();
        match policy.decide(made, &error, jitter) {
            RetryDecision::RetryAfter(wait) => {
                tracing::warn!(
                    %error,
                    attempt = made,
                    wait_ms = wait.as_millis() as u64,
                    "{what} failed; retrying"
                );
                tokio::time::sleep(wait).await;
            }
            RetryDecision::GiveUp if made > 1 => {
                return Err(ProviderError::GaveUp {
                    attempts: made,
                    last: Box::new(error),
                });
            }
            RetryDecision::GiveUp => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn status(code: u16, retry_after: Option<Duration>) -> ProviderError {
        ProviderError::Status {
            status: code,
            url: "http://x/v1/chat/completions".into(),
            message: "boom".into(),
            retry_after,
        }
    }

    fn waits(decision: RetryDecision) -> Duration {
        match decision {
            RetryDecision::RetryAfter(wait) => wait,
            RetryDecision::GiveUp => Duration::MAX,
        }
    }

    #[test]
    fn server_errors_and_rate_limits_are_retried() {
        let policy = RetryPolicy::new(3);
        for code in [429, 500, 502, 503, 529] {
            assert!(
                matches!(
                    policy.decide(1, &status(code, None), 0.0),
                    RetryDecision::RetryAfter(_)
                ),
                "{code}"
            );
        }
        let timeout = ProviderError::Timeout {
            url: "u".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(matches!(
            policy.decide(1, &timeout, 0.0),
            RetryDecision::RetryAfter(_)
        ));
        let connect = ProviderError::Connect {
            url: "u".into(),
            detail: "refused".into(),
        };
        assert!(matches!(
            policy.decide(3, &connect, 0.0),
            RetryDecision::RetryAfter(_)
        ));
    }

    #[test]
    fn client_errors_fail_at_once() {
        let policy = RetryPolicy::new(3);
        for code in [400, 404, 422] {
            assert_eq!(
                policy.decide(1, &status(code, None), 0.5),
                RetryDecision::GiveUp,
                "{code}"
            );
        }
        let auth = ProviderError::Auth {
            status: 401,
            message: "bad key".into(),
        };
        assert_eq!(policy.decide(1, &auth, 0.5), RetryDecision::GiveUp);
        assert_eq!(
            policy.decide(1, &ProviderError::BadResponse("x".into()), 0.5),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn retries_stop_after_max_retries() {
        let policy = RetryPolicy::new(2);
        assert_ne!(
            policy.decide(2, &status(500, None), 0.5),
            RetryDecision::GiveUp
        );
        assert_eq!(
            policy.decide(3, &status(500, None), 0.5),
            RetryDecision::GiveUp
        );
        assert_eq!(
            RetryPolicy::new(0).decide(1, &status(500, None), 0.5),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy::new(10);
        let error = status(503, None);
        assert_eq!(
            waits(policy.decide(1, &error, 0.0)),
            Duration::from_millis(250)
        );
        assert_eq!(waits(policy.decide(1, &error, 0.999_999)).as_millis(), 499);
        assert_eq!(
            waits(policy.decide(2, &error, 0.0)),
            Duration::from_millis(500)
        );
        assert_eq!(
            waits(policy.decide(3, &error, 0.0)),
            Duration::from_millis(1000)
        );
        assert_eq!(
            waits(policy.decide(10, &error, 1.0)),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn retry_after_is_honored_but_capped() {
        let policy = RetryPolicy::new(3);
        let asked = status(429, Some(Duration::from_secs(2)));
        assert_eq!(waits(policy.decide(1, &asked, 0.9)), Duration::from_secs(2));
        let greedy = status(429, Some(Duration::from_secs(3600)));
        assert_eq!(
            waits(policy.decide(1, &greedy, 0.9)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn retry_after_headers_are_parsed() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert_eq!(parse_retry_after(&headers(&[]), now), None);
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(
                &headers(&[("retry-after", "7"), ("retry-after-ms", "1500")]),
                now
            ),
            Some(Duration::from_millis(1500))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(12));
        let mut map = HeaderMap::new();
        map.insert(
            "retry-after",
            HeaderValue::from_str(&date).unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(parse_retry_after(&map, now), Some(Duration::from_secs(12)));
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "soon")]), now),
            None
        );
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "-3")]), now),
            None
        );
    }
}
