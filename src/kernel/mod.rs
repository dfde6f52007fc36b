//! The kernel: an agent loop of a language model with tools over the owner's home.
//!
//! [`Kernel::run_turn`] builds a system prompt from the home (`prompt`), calls the model
//! through a [`provider::Provider`] (OpenAI-compatible or Anthropic, with retries), runs the
//! [`tools`] it asks for, and repeats until it answers or the step limit is reached (`turn`).
//!
//! A turn's [`Audience`] decides what the model gets. For the owner: the whole self (soul,
//! identity, `system/user.md`), the skills and every tool. For anyone else the kernel enforces
//! the public context in code (`public`): a prompt of the public profile only, earlier
//! history reduced to plain text, and tools that only read `system/public/`.

mod action;
pub mod approvals;
mod audience;
mod error;
pub mod live;
mod message;
mod prompt;
pub mod provider;
mod public;
pub mod quote;
mod reword;
mod setup;
mod side_call;
pub mod summary;
pub mod tools;
mod turn;

use std::{sync::Arc, time::Duration};

pub use self::{
    action::{HeldCall, MeetingAsk, PolicyChange, ToolRequest},
    audience::Audience,
    error::{FIXED_FAILURE_REPLY, KernelError},
    message::{ImageInput, Message, ToolCall},
    setup::UNCONFIGURED_REPLY,
};
use self::{
    provider::{ProviderError, retry::RetryPolicy},
    setup::Backend,
};
use crate::{config::LlmConfig, home::Home};

/// Input of one turn.
#[derive(Debug, Clone)]
pub struct Turn {
    /// Room the turn happens in (named in commit messages).
    pub room_id: String,
    /// Earlier messages of the session, oldest first.
    pub history: Vec<Message>,
    /// What the person said now.
    pub input: String,
    /// Images they sent with it (vision input; never stored in the session).
    pub images: Vec<ImageInput>,
    /// Who is speaking with the twin: the owner, or someone who only gets the public context.
    pub audience: Audience,
    /// The room's restriction of tool names, intersected with what the audience allows;
    /// `None` adds no restriction.
    pub allowed_tools: Option<Vec<String>>,
    /// The twin's own model, sent instead of the configured `llm.model` when set.
    pub model: Option<String>,
    /// What the room session knows that the model should too (e.g. meetings waiting for the
    /// owner's answer), in Markdown; added to the owner's system prompt, never to a public one.
    pub context: Option<String>,
    /// Whether the turn's context holds anyone else's text (a group room): then risky calls
    /// follow `approvals`, and policy changes cannot be proposed.
    pub exposed: bool,
    /// What happens to risky calls when `exposed`.
    pub approvals: approvals::Approvals,
    /// `Some`: the context holds other twins' text (meeting titles in the brief), from these
    /// people's twins; a meeting proposed to anyone else is held like in an exposed turn.
    pub peers_in_context: Option<Vec<ruma::OwnedUserId>>,
    /// `Some`: the answer is streamed (the provider's streaming API) and the turn's progress
    /// told here as it happens; `None`: the whole answer comes at the end.
    pub live: Option<live::Live>,
}

/// Result of one turn.
#[derive(Debug, Clone)]
pub struct TurnOutcome {
    /// The reply to post, in Markdown.
    pub reply: String,
    /// Messages this turn added to the session (the user's first), to be stored.
    pub messages: Vec<Message>,
    /// What the turn's tools asked the room session to do afterwards.
    pub requests: Vec<ToolRequest>,
    /// Tokens the turn's model calls used, as the provider reported them.
    pub usage: crate::budget::UsageTotals,
}

/// The agent loop.
#[derive(Debug, Clone)]
pub struct Kernel {
    backend: Backend,
    config: LlmConfig,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Kernel {
    /// Builds the kernel; reads the API key from the variable named by `llm.api_key_env`.
    /// With no key (or provider `none`) turns answer with a how-to-configure notice.
    pub fn from_config(config: &LlmConfig) -> Result<Self, KernelError> {
        Self::from_config_with_env(config, |name| std::env::var(name).ok())
    }

    /// Like [`Kernel::from_config`], reading variables through `env` instead of the process
    /// environment (tests cannot safely change the environment of a threaded process).
    ///
    /// Variables read: the one named by `llm.api_key_env` (for provider `anthropic` left at
    /// the default `OPENAI_API_KEY`, `ANTHROPIC_API_KEY` instead), and `OPENAI_BASE_URL` /
    /// `ANTHROPIC_BASE_URL` when `llm.base_url` is unset.
    pub fn from_config_with_env(
        config: &LlmConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, KernelError> {
        Self::build(config, &env, RetryPolicy::new(config.max_retries))
    }

    /// Like [`Kernel::from_config_with_env`] with a given first retry delay (doubled per retry),
    /// so that tests of failing providers finish quickly.
    pub fn from_config_with_backoff(
        config: &LlmConfig,
        env: impl Fn(&str) -> Option<String>,
        base_delay: Duration,
    ) -> Result<Self, KernelError> {
        let retry = RetryPolicy {
            base_delay,
            ..RetryPolicy::new(config.max_retries)
        };
        Self::build(config, &env, retry)
    }

    /// A kernel over a given provider (a custom endpoint, or a stub in tests).
    pub fn with_provider(config: &LlmConfig, provider: Arc<dyn provider::Provider>) -> Self {
        let key_env = config.api_key_env.clone();
        Self {
            backend: Backend::Model { provider, key_env },
            config: config.clone(),
            metrics: None,
        }
    }

    fn build(
        config: &LlmConfig,
        env: &dyn Fn(&str) -> Option<String>,
        retry: RetryPolicy,
    ) -> Result<Self, KernelError> {
        let backend = setup::backend(config, env, retry)?;
        if let Backend::Unconfigured(why) = &backend {
            tracing::warn!(
                "no language model configured ({why}); twins will say how to set one up"
            );
        }
        Ok(Self {
            backend,
            config: config.clone(),
            metrics: None,
        })
    }

    /// Counts the model calls and tokens of every turn in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Whether a model is configured (otherwise turns answer with [`UNCONFIGURED_REPLY`]).
    pub fn is_configured(&self) -> bool {
        matches!(self.backend, Backend::Model { .. })
    }

    /// One line describing the model in use (no secrets).
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Unconfigured(why) => format!("no model configured ({why})"),
            Backend::Model { provider, .. } => provider.describe(),
        }
    }

    /// Checks that the endpoint answers and the key is accepted (for `doctor`).
    ///
    /// Errors say what to fix: the key, the base URL, or that no model is configured.
    pub async fn check_endpoint(&self) -> Result<String, KernelError> {
        let (provider, key_env) = match &self.backend {
            Backend::Unconfigured(why) => return Err(KernelError::NotConfigured(why.clone())),
            Backend::Model { provider, key_env } => (provider, key_env),
        };
        provider.check().await.map_err(|error| {
            let advice = match &error {
                ProviderError::Auth { .. } => format!("check the API key in {key_env}"),
                ProviderError::Connect { .. } | ProviderError::Timeout { .. } => {
                    "check llm.base_url and that the server is running".to_owned()
                }
                // On the model list a 404 means the URL, not the model, is wrong.
                ProviderError::UnknownModel { .. } => "check llm.base_url (OpenAI-compatible \
                     URLs usually end in /v1; Anthropic's have no version)"
                    .to_owned(),
                _ => "check the [llm] settings".to_owned(),
            };
            KernelError::Provider(format!("{error}; {advice}"))
        })
    }

    /// Asks the model to say `notice` to the owner in the twin's own voice (soul and
    /// identity), with `model` instead of the configured one when set. The answer is the
    /// model's text as is: the caller checks that the notice's facts survived. With the
    /// tokens the call used.
    pub async fn reword(
        &self,
        home: Arc<Home>,
        notice: &str,
        model: Option<String>,
    ) -> Result<(String, crate::budget::UsageTotals), KernelError> {
        match &self.backend {
            Backend::Unconfigured(why) => Err(KernelError::NotConfigured(why.clone())),
            Backend::Model { provider, .. } => {
                reword::reword(provider.as_ref(), home, notice, model).await
            }
        }
    }

    /// Asks the model to summarise `messages` (older turns of a conversation), folding in
    /// `previous`; with the tokens the call used. See [`summary::INSTRUCTION`].
    pub async fn summarise(
        &self,
        previous: Option<&str>,
        messages: &[Message],
        model: Option<String>,
    ) -> Result<(String, crate::budget::UsageTotals), KernelError> {
        match &self.backend {
            Backend::Unconfigured(why) => Err(KernelError::NotConfigured(why.clone())),
            Backend::Model { provider, .. } => {
                summary::summarise(provider.as_ref(), previous, messages, model).await
            }
        }
    }

    /// Runs one turn.
    pub async fn run_turn(&self, home: Arc<Home>, turn: Turn) -> Result<TurnOutcome, KernelError> {
        match &self.backend {
            Backend::Unconfigured(_) => Ok(TurnOutcome {
                reply: UNCONFIGURED_REPLY.to_owned(),
                // The notice is not part of the conversation: once a model is configured it
                // should not see a history of "I can't think".
                messages: Vec::new(),
                requests: Vec::new(),
                usage: crate::budget::UsageTotals::default(),
            }),
            Backend::Model { provider, .. } => {
                let limits = turn::Limits {
                    max_steps: self.config.max_tool_steps,
                    max_tokens: self.config.max_tokens,
                    max_prompt_chars: self.config.max_prompt_chars,
                };
                turn::run(
                    provider.as_ref(),
                    home,
                    turn,
                    limits,
                    self.metrics.as_deref(),
                )
                .await
            }
        }
    }
}
