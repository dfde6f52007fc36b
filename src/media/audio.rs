//! The OpenAI-compatible audio wire format: `POST {base}/audio/transcriptions` (multipart:
//! `file`, `model`) answers `{"text": ...}`; `POST {base}/audio/speech` (JSON: `model`,
//! `input`, `voice`, `response_format`) answers the audio bytes. OpenAI speaks it, and so do
//! local servers (whisper.cpp's and faster-whisper's OpenAI-compatible servers, LocalAI,
//! Speaches).

use std::time::Duration;

use serde::Deserialize;

use super::MediaError;
use crate::{
    config::{SpeechConfig, TranscriptionConfig},
    secret::Secret,
};

/// Longest transcript kept, in bytes (an hour of speech is well below it).
const MAX_TRANSCRIPT_BYTES: usize = 256 * 1024;
/// Largest spoken reply read.
const MAX_SPEECH_BYTES: usize = 25 * 1024 * 1024;
/// Longest text sent to be spoken, in characters (OpenAI takes 4,096).
pub const MAX_SPEECH_CHARS: usize = 4_000;

/// A transcription endpoint.
#[derive(Debug, Clone)]
pub struct Transcriber {
    http: reqwest::Client,
    url: String,
    model: String,
    language: Option<String>,
    key: Option<Secret>,
}

/// A speech endpoint.
#[derive(Debug, Clone)]
pub struct Speaker {
    http: reqwest::Client,
    url: String,
    model: String,
    voice: String,
    format: String,
    key: Option<Secret>,
}

fn client(timeout_secs: u64) -> Result<reqwest::Client, MediaError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs.max(1)))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| MediaError::Audio {
            what: "audio",
            message: format!("cannot build an HTTP client: {e}"),
        })
}

fn join(base: &url::Url, path: &str) -> String {
    format!("{}/{path}", base.as_str().trim_end_matches('/'))
}

fn key_from(env: &dyn Fn(&str) -> Option<String>, name: Option<&str>) -> Option<Secret> {
    name.and_then(env)
        .filter(|key| !key.trim().is_empty())
        .map(Secret::new)
}

#[derive(Deserialize)]
struct TranscriptionAnswer {
    text: String,
}

impl Transcriber {
    /// The endpoint of `config`; its key is read through `env` from `api_key_env` (none:
    /// keyless, as local servers are).
    pub fn new(
        config: &TranscriptionConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, MediaError> {
        Ok(Self {
            http: client(config.timeout_secs)?,
            url: join(&config.base_url, "audio/transcriptions"),
            model: config.model.clone(),
            language: config.language.clone(),
            key: key_from(env, config.api_key_env.as_deref()),
        })
    }

    /// The words spoken in `audio` (a file called `file_name` of type `mime`).
    pub async fn transcribe(
        &self,
        audio: Vec<u8>,
        file_name: &str,
        mime: &str,
    ) -> Result<String, MediaError> {
        let failed = |message: String| MediaError::Audio {
            what: "transcription",
            message,
        };
        // The sender's claimed type goes along only when it is a plain `type/subtype`.
        let plain_type = mime.split_once('/').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && (a.chars().chain(b.chars()))
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-'))
        });
        let part = reqwest::multipart::Part::bytes(audio)
            .file_name(file_name.to_owned())
            .mime_str(if plain_type {
                mime
            } else {
                "application/octet-stream"
            })
            .map_err(|e| failed(e.to_string()))?;
        let mut form = reqwest::multipart::Form::new()
            .part("file", part)
            .text("model", self.model.clone())
            .text("response_format", "json");
        if let Some(language) = &self.language {
            form = form.text("language", language.clone());
        }
        let mut request = self.http.post(&self.url).multipart(form);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key.expose());
        }
        let body = exchange(request, MAX_TRANSCRIPT_BYTES, "transcription").await?;
        let answer: TranscriptionAnswer = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("unexpected answer ({e})")))?;
        Ok(answer.text.trim().to_owned())
    }
}

impl Speaker {
    /// The endpoint of `config`, its key read through `env` as for [`Transcriber::new`].
    pub fn new(
        config: &SpeechConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, MediaError> {
        Ok(Self {
            http: client(config.timeout_secs)?,
            url: join(&config.base_url, "audio/speech"),
            model: config.model.clone(),
            voice: config.voice.clone(),
            format: config.format.clone(),
            key: key_from(env, config.api_key_env.as_deref()),
        })
    }

    /// The format asked for (`opus`, `mp3`, ...), and its type and file extension.
    pub fn format(&self) -> (&'static str, &'static str) {
        match self.format.as_str() {
            "mp3" => ("audio/mpeg", "mp3"),
            "aac" => ("audio/aac", "aac"),
            "flac" => ("audio/flac", "flac"),
            "wav" => ("audio/wav", "wav"),
            _ => ("audio/ogg", "ogg"),
        }
    }

    /// `text` spoken (at most [`MAX_SPEECH_CHARS`] of it).
    pub async fn speak(&self, text: &str) -> Result<Vec<u8>, MediaError> {
        let input: String = text.chars().take(MAX_SPEECH_CHARS).collect();
        let mut request = self.http.post(&self.url).json(&serde_json::json!({
            "model": self.model,
            "input": input,
            "voice": self.voice,
            "response_format": self.format,
        }));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key.expose());
        }
        let audio = exchange(request, MAX_SPEECH_BYTES, "speech").await?;
        if audio.is_empty() {
            return Err(MediaError::Audio {
                what: "speech",
                message: "it answered no audio".into(),
            });
        }
        Ok(audio)
    }
}

/// Sends `request`; the body of a 2xx answer (bounded), or an error naming the status and
/// the endpoint's own error message (never the key).
async fn exchange(
    request: reqwest::RequestBuilder,
    max: usize,
    what: &'static str,
) -> Result<Vec<u8>, MediaError> {
    let failed = |message: String| MediaError::Audio { what, message };
    let response = request.send().await.map_err(|e| {
        failed(if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_connect() {
            "cannot connect (is it running?)".to_owned()
        } else {
            e.to_string()
        })
    })?;
    let status = response.status();
    let body = crate::bounded_body::read(response, max)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !status.is_success() {
        let said: String = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned())
            .chars()
            .take(300)
            .collect();
        return Err(failed(format!("HTTP {}: {said}", status.as_u16())));
    }
    Ok(body)
}
