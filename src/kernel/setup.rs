//! From `[llm]` settings and the environment to a provider, or to "no model configured".

use std::{net::IpAddr, sync::Arc, time::Duration};

use url::Url;

use super::{
    KernelError,
    provider::{Provider, Settings, anthropic::Anthropic, openai::OpenAi, retry::RetryPolicy},
};
use crate::{
    config::{LlmConfig, LlmProvider},
    secret::Secret,
};

/// What a twin says while no model is configured.
pub const UNCONFIGURED_REPLY: &str = "I'm not connected to a language model yet, so I can't \
think or act for you. An admin can connect one:\n\
\n\
- **Anthropic**: set `ANTHROPIC_API_KEY`, and in the `[llm]` section `provider = \"anthropic\"` \
and a `model` such as `claude-sonnet-4-5`.\n\
- **OpenAI or a compatible server** (Ollama, vLLM, llama.cpp): set `OPENAI_API_KEY` (optional for \
a server on this machine) and, for a local server, `OPENAI_BASE_URL` (e.g. \
`http://127.0.0.1:11434/v1` for Ollama); `provider = \"openai\"` and `model` in `[llm]`.\n\
\n\
Every `[llm]` key can also be set with `MATRIX_OS__LLM__*` variables (e.g. \
`MATRIX_OS__LLM__MODEL`). Restart the service afterwards.";

/// The default `api_key_env`, which names OpenAI's variable.
const DEFAULT_KEY_ENV: &str = "OPENAI_API_KEY";

/// What turns run against.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// No model: turns answer with [`UNCONFIGURED_REPLY`]; the text says why.
    Unconfigured(String),
    /// A model endpoint, and the variable its key came from (named in advice to admins).
    Model {
        /// The endpoint.
        provider: Arc<dyn Provider>,
        /// Name of the key's environment variable.
        key_env: String,
    },
}

/// Chooses the backend for `config`, reading variables through `env`.
pub(crate) fn backend(
    config: &LlmConfig,
    env: &dyn Fn(&str) -> Option<String>,
    retry: RetryPolicy,
) -> Result<Backend, KernelError> {
    let var = |name: &str| {
        env(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let (default_base, base_env, key_env) = match config.provider {
        LlmProvider::None => {
            return Ok(Backend::Unconfigured("llm.provider is \"none\"".into()));
        }
        LlmProvider::Openai => (
            super::provider::openai::DEFAULT_BASE_URL,
            "OPENAI_BASE_URL",
            config.api_key_env.as_str(),
        ),
        // Choosing Anthropic without touching api_key_env should not look for OpenAI's key.
        LlmProvider::Anthropic => (
            super::provider::anthropic::DEFAULT_BASE_URL,
            "ANTHROPIC_BASE_URL",
            if config.api_key_env == DEFAULT_KEY_ENV {
                "ANTHROPIC_API_KEY"
            } else {
                config.api_key_env.as_str()
            },
        ),
    };
    let base_url = match (&config.base_url, var(base_env)) {
        (Some(url), _) => url.clone(),
        (None, Some(text)) => Url::parse(&text)
            .map_err(|e| KernelError::Setup(format!("{base_env} is not a valid URL ({e})")))?,
        (None, None) => Url::parse(default_base).map_err(|e| KernelError::Setup(e.to_string()))?,
    };
    let api_key = var(key_env).map(Secret::new);
    // Local OpenAI-compatible servers (Ollama, llama.cpp) usually take no key.
    let keyless_ok = config.provider == LlmProvider::Openai && is_loopback(&base_url);
    if api_key.is_none() && !keyless_ok {
        return Ok(Backend::Unconfigured(format!(
            "the environment variable {key_env} is not set"
        )));
    }
    let settings = Settings {
        base_url,
        model: config.model.clone(),
        api_key,
        api_key_env: key_env.to_owned(),
        timeout: Duration::from_secs(config.timeout_secs.max(1)),
        retry,
    };
    let setup_error = |e: reqwest::Error| KernelError::Setup(format!("HTTP client: {e}"));
    let provider: Arc<dyn Provider> = match config.provider {
        LlmProvider::Openai => Arc::new(OpenAi::new(settings).map_err(setup_error)?),
        LlmProvider::Anthropic => Arc::new(Anthropic::new(settings).map_err(setup_error)?),
        LlmProvider::None => return Ok(Backend::Unconfigured("llm.provider is \"none\"".into())),
    };
    Ok(Backend::Model {
        provider,
        key_env: key_env.to_owned(),
    })
}

/// Whether `url` points at this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn choose(config: &LlmConfig, vars: &[(&str, &str)]) -> Backend {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let env = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match backend(config, &env, RetryPolicy::new(0)) {
            Ok(backend) => backend,
            Err(error) => panic!("{error}"),
        }
    }

    fn describe(backend: &Backend) -> String {
        match backend {
            Backend::Unconfigured(why) => format!("unconfigured: {why}"),
            Backend::Model { provider, .. } => provider.describe(),
        }
    }

    #[test]
    fn provider_none_is_unconfigured() {
        let config = LlmConfig {
            provider: LlmProvider::None,
            ..LlmConfig::default()
        };
        assert_eq!(
            describe(&choose(&config, &[("OPENAI_API_KEY", "sk")])),
            "unconfigured: llm.provider is \"none\""
        );
    }

    #[test]
    fn a_missing_or_empty_key_is_unconfigured() {
        let config = LlmConfig::default();
        assert_eq!(
            describe(&choose(&config, &[])),
            "unconfigured: the environment variable OPENAI_API_KEY is not set"
        );
        assert!(matches!(
            choose(&config, &[("OPENAI_API_KEY", "  ")]),
            Backend::Unconfigured(_)
        ));
        assert_eq!(
            describe(&choose(&config, &[("OPENAI_API_KEY", "sk-x")])),
            "openai gpt-4o-mini at https://api.openai.com/v1"
        );
    }

    #[test]
    fn a_local_openai_compatible_server_needs_no_key() {
        let config = LlmConfig::default();
        let backend = choose(&config, &[("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")]);
        assert_eq!(
            describe(&backend),
            "openai gpt-4o-mini at http://127.0.0.1:11434/v1"
        );
        let remote = choose(
            &config,
            &[("OPENAI_BASE_URL", "https://llm.example.org/v1")],
        );
        assert!(matches!(remote, Backend::Unconfigured(_)));
    }

    #[test]
    fn anthropic_reads_its_own_key_by_default() {
        let config = LlmConfig {
            provider: LlmProvider::Anthropic,
            model: "claude-sonnet-4-5".into(),
            ..LlmConfig::default()
        };
        let backend = choose(&config, &[("ANTHROPIC_API_KEY", "sk-ant")]);
        assert_eq!(
            describe(&backend),
            "anthropic claude-sonnet-4-5 at https://api.anthropic.com"
        );
        assert!(matches!(
            choose(&config, &[("OPENAI_API_KEY", "sk")]),
            Backend::Unconfigured(_)
        ));
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let backend = choose(
            &LlmConfig::default(),
            &[("OPENAI_API_KEY", "sk-very-secret")],
        );
        let shown = format!("{backend:?}");
        assert!(
            !shown.contains("sk-very-secret") && shown.contains("[redacted]"),
            "{shown}"
        );
    }

    #[test]
    fn credentials_in_a_base_url_are_not_shown() {
        let config = LlmConfig {
            base_url: Url::parse("https://user:hunter2@llm.example.org/v1").ok(),
            ..LlmConfig::default()
        };
        let shown = describe(&choose(&config, &[("OPENAI_API_KEY", "sk")]));
        assert_eq!(shown, "openai gpt-4o-mini at https://llm.example.org/v1");
    }
}
