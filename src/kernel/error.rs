//! Why a turn (or an endpoint check) failed, for the log and for the room.

use super::provider::ProviderError;

/// A turn failed; [`KernelError::room_message`] is what the room is told.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The model provider kept failing (free-form; prefer [`KernelError::Model`]).
    #[error("model provider failed: {0}")]
    Provider(String),
    /// A model call failed for good (after any retries).
    #[error("model call failed: {0}")]
    Model(#[from] ProviderError),
    /// No model is configured (only [`super::Kernel::check_endpoint`] reports this; turns
    /// answer with a how-to instead).
    #[error("no model configured: {0}")]
    NotConfigured(String),
    /// The kernel could not be set up from the configuration.
    #[error("cannot set up the model client: {0}")]
    Setup(String),
}

/// What anyone but the owner in their own DM is told when a turn fails: one fixed text, so
/// nothing of the provider's answer, the configuration or an internal error reaches a room
/// others read.
pub const FIXED_FAILURE_REPLY: &str = "⚠️ I can't answer right now. Please try again later.";

impl KernelError {
    /// What the room is told: with `detailed` (the owner in their DM with nobody else), a
    /// short fixed text per kind of failure saying what an admin could fix; otherwise
    /// [`FIXED_FAILURE_REPLY`]. Never any text the provider sent: that is in the log only.
    pub fn room_message(&self, detailed: bool) -> String {
        if detailed {
            self.user_message()
        } else {
            FIXED_FAILURE_REPLY.to_owned()
        }
    }

    /// The detailed text for the owner (fixed per kind; no provider text).
    pub fn user_message(&self) -> String {
        match self {
            Self::Provider(_) => {
                "⚠️ The language model failed. Please try again in a moment.".to_owned()
            }
            Self::Model(error) => model_message(error),
            Self::NotConfigured(_) => super::setup::UNCONFIGURED_REPLY.to_owned(),
            Self::Setup(_) => {
                "⚠️ My language model is misconfigured, so I can't answer. An admin can run \
                 `matrix-os doctor` to see what to fix."
                    .to_owned()
            }
        }
    }
}

fn model_message(error: &ProviderError) -> String {
    let (last, attempts) = error.last_and_attempts();
    let tries = if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    };
    match last {
        ProviderError::Status { status, .. } if *status == 429 => format!(
            "⚠️ The language model is rate-limiting me (HTTP 429{tries}). Please try again in a \
             moment."
        ),
        ProviderError::Status { status, .. } if *status >= 500 => format!(
            "⚠️ I couldn't reach the language model (HTTP {status}{tries}). Please try again in \
             a moment."
        ),
        ProviderError::Status { status, .. } => format!(
            "⚠️ The language model refused my request (HTTP {status}). An admin may need to \
             check the `[llm]` settings; the service's log has the details."
        ),
        ProviderError::Timeout { timeout, .. } => format!(
            "⚠️ The language model didn't answer in time ({} s{tries}). Please try again in a \
             moment.",
            timeout.as_secs()
        ),
        ProviderError::Connect { .. } => format!(
            "⚠️ I couldn't connect to the language model{tries}. Please try again in a moment; \
             if it keeps happening, an admin should check `llm.base_url`."
        ),
        ProviderError::Auth { status, .. } => format!(
            "⚠️ The language model rejected my API key (HTTP {status}). An admin needs to fix \
             the key (the variable named by `llm.api_key_env`)."
        ),
        ProviderError::UnknownModel { model, .. } => format!(
            "⚠️ The language model service doesn't know the model `{model}`. The model name in \
             `llm.model` may be wrong or retired; an admin needs to change it."
        ),
        ProviderError::BadResponse(_) => {
            "⚠️ The language model sent an answer I couldn't read. Please try again; if it \
             keeps happening, an admin should check the `[llm]` settings."
                .to_owned()
        }
        // `last_and_attempts` unwraps one level; nested give-ups do not occur.
        ProviderError::GaveUp { .. } => {
            format!("⚠️ The language model kept failing{tries}. Please try again in a moment.")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn gave_up(last: ProviderError, attempts: u32) -> KernelError {
        KernelError::Model(ProviderError::GaveUp {
            attempts,
            last: Box::new(last),
        })
    }

    #[test]
    fn server_errors_say_what_happened_and_how_often() {
        let error = gave_up(
            ProviderError::Status {
                status: 500,
                url: "u".into(),
                message: "x".into(),
                retry_after: None,
            },
            4,
        );
        assert_eq!(
            error.user_message(),
            "⚠️ I couldn't reach the language model (HTTP 500 after 4 attempts). Please try again in a moment."
        );
    }

    #[test]
    fn admin_problems_name_the_setting_to_fix() {
        let model = KernelError::Model(ProviderError::UnknownModel {
            model: "gpt-9".into(),
            status: 404,
            message: "nope".into(),
        });
        assert!(
            model.user_message().contains("`gpt-9`") && model.user_message().contains("llm.model")
        );
        let auth = KernelError::Model(ProviderError::Auth {
            status: 401,
            message: "bad".into(),
        });
        assert!(auth.user_message().contains("API key"));
        let refused = KernelError::Model(ProviderError::Status {
            status: 400,
            url: "u".into(),
            message: "secret provider detail".into(),
            retry_after: None,
        });
        assert!(!refused.user_message().contains("secret provider detail"));
        assert_eq!(refused.room_message(false), FIXED_FAILURE_REPLY);
        assert!(
            !KernelError::Provider("internal detail".into())
                .room_message(true)
                .contains("internal detail")
        );
        let timeout = gave_up(
            ProviderError::Timeout {
                url: "u".into(),
                timeout: Duration::from_secs(30),
            },
            2,
        );
        assert!(
            timeout.user_message().contains("30 s after 2 attempts"),
            "{}",
            timeout.user_message()
        );
    }
}
