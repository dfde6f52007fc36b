//! The start-up ping: proves the homeserver reaches us and we reach it, and says what to fix
//! when either direction fails.

use std::time::Duration;

use tokio::sync::watch;

use crate::{
    config::Config,
    matrix::{MatrixClient, MatrixError},
};

/// What a failed ping means for the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingVerdict {
    /// Both directions work.
    Ok(Duration),
    /// The homeserver has no ping endpoint; nothing to check.
    Unsupported,
    /// Something to fix, in words.
    Problem(String),
}

/// Turns a ping result into a verdict with a diagnosis.
pub fn diagnose(result: Result<Duration, MatrixError>, config: &Config) -> PingVerdict {
    let err = match result {
        Ok(duration) => return PingVerdict::Ok(duration),
        Err(err) => err,
    };
    let registration = config.appservice.registration.display();
    let as_url = &config.appservice.url;
    let message = match &err {
        MatrixError::Unreachable { url, message } => format!(
            "cannot reach the homeserver at {url} ({message}); check homeserver.url and that the homeserver is running"
        ),
        MatrixError::Api {
            status: 404 | 405, ..
        }
        | MatrixError::Api {
            errcode: _,
            status: 400,
            ..
        } if err.errcode() == Some("M_UNRECOGNIZED") => {
            return PingVerdict::Unsupported;
        }
        MatrixError::Api { errcode, .. }
            if errcode == "M_UNKNOWN_TOKEN" || errcode == "M_MISSING_TOKEN" =>
        {
            format!(
                "the homeserver does not know this service's as_token: {registration} is not loaded. Add it to \
             app_service_config_files in homeserver.yaml and restart the homeserver (after regenerating the \
             registration, the homeserver needs the new file)"
            )
        }
        MatrixError::Api {
            errcode, message, ..
        } if errcode == "M_FORBIDDEN" => format!(
            "the homeserver refused the ping ({message}); appservice.id must equal the `id` in {registration} \
             as loaded by the homeserver"
        ),
        MatrixError::Api {
            errcode, message, ..
        } if matches!(
            errcode.as_str(),
            "M_CONNECTION_FAILED" | "M_CONNECTION_TIMEOUT" | "M_BAD_STATUS"
        ) =>
        {
            format!(
                "the homeserver cannot reach this service at {as_url} ({errcode}: {message}); check appservice.url \
                 (and `url` in {registration}) and that appservice.listen ({}) is reachable from the homeserver; \
                 a wrong hs_token also shows up here",
                config.appservice.listen
            )
        }
        MatrixError::Api { status: 404, .. } => return PingVerdict::Unsupported,
        other => format!("ping failed: {other}"),
    };
    PingVerdict::Problem(message)
}

/// Pings until both directions work (or the homeserver cannot ping), backing off from 1 s to
/// 60 s; each failure is logged with its diagnosis. Returns early on shutdown.
pub async fn ping_until_ok(
    matrix: MatrixClient,
    config: Config,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_secs(1);
    loop {
        let result = matrix.ping_appservice(&config.appservice.id).await;
        match diagnose(result, &config) {
            PingVerdict::Ok(duration) => {
                tracing::info!(
                    ms = duration.as_millis() as u64,
                    "homeserver and service reach each other"
                );
                return;
            }
            PingVerdict::Unsupported => {
                tracing::warn!(
                    "the homeserver has no appservice ping endpoint; connectivity not checked"
                );
                return;
            }
            PingVerdict::Problem(problem) => {
                tracing::error!("{problem} (retrying in {}s)", delay.as_secs());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_toml_str(
            "[homeserver]\nurl = \"http://127.0.0.1:8008\"\nserver_name = \"x\"\n[appservice]\nurl = \"http://127.0.0.1:8009\"\n",
        )
        .unwrap()
    }

    fn api(status: u16, errcode: &str) -> Result<Duration, MatrixError> {
        Err(MatrixError::Api {
            status,
            errcode: errcode.into(),
            message: "m".into(),
            retry_after: None,
        })
    }

    #[test]
    fn each_failure_names_its_fix() {
        let c = config();
        let problem = |r| match diagnose(r, &c) {
            PingVerdict::Problem(p) => p,
            other => panic!("{other:?}"),
        };
        assert!(problem(api(401, "M_UNKNOWN_TOKEN")).contains("app_service_config_files"));
        assert!(problem(api(502, "M_CONNECTION_FAILED")).contains("appservice.url"));
        assert!(problem(api(403, "M_FORBIDDEN")).contains("appservice.id"));
        assert!(
            problem(Err(MatrixError::Unreachable {
                url: "u".into(),
                message: "refused".into()
            }))
            .contains("homeserver.url")
        );
        assert_eq!(
            diagnose(api(404, "M_UNRECOGNIZED"), &c),
            PingVerdict::Unsupported
        );
        assert_eq!(
            diagnose(Ok(Duration::from_millis(3)), &c),
            PingVerdict::Ok(Duration::from_millis(3))
        );
    }
}
