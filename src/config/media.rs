//! `[media]`: photos, files and voice messages.

use serde::Deserialize;
use url::Url;

/// `[media]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Largest file a twin downloads, in bytes; larger ones get a notice and are not opened.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Largest image given to the model as image input, in bytes; larger images are only
    /// described (and still saved for the owner).
    #[serde(default = "default_max_image_bytes")]
    pub max_image_bytes: usize,
    /// Most characters of a text file shown to the model with the message (the rest stays in
    /// the file for the file tools).
    #[serde(default = "default_max_text_chars")]
    pub max_text_chars: usize,
    /// Whether files the owner sends are saved into their home (`data/inbox/`).
    #[serde(default = "default_true")]
    pub save_owner_files: bool,
    /// Where voice messages are transcribed; unset: the twin says it cannot listen yet.
    #[serde(default)]
    pub transcription: Option<TranscriptionConfig>,
    /// Where spoken replies are made; unset: none (owners ask for them with `voice_replies =
    /// true` in `system/settings.toml`).
    #[serde(default)]
    pub speech: Option<SpeechConfig>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            max_bytes: default_max_bytes(),
            max_image_bytes: default_max_image_bytes(),
            max_text_chars: default_max_text_chars(),
            save_owner_files: true,
            transcription: None,
            speech: None,
        }
    }
}

/// `[media.transcription]`: an OpenAI-compatible `POST {base_url}/audio/transcriptions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptionConfig {
    /// API base, e.g. `https://api.openai.com/v1` or a local whisper server's
    /// `http://127.0.0.1:8080/v1`.
    pub base_url: Url,
    /// Model name.
    #[serde(default = "default_transcription_model")]
    pub model: String,
    /// Environment variable holding the API key; unset: no key (local servers).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Language hint (ISO 639-1, e.g. `de`); unset: detected.
    #[serde(default)]
    pub language: Option<String>,
    /// Timeout of one request, in seconds.
    #[serde(default = "default_audio_timeout")]
    pub timeout_secs: u64,
}

/// `[media.speech]`: an OpenAI-compatible `POST {base_url}/audio/speech`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechConfig {
    /// API base.
    pub base_url: Url,
    /// Model name.
    #[serde(default = "default_speech_model")]
    pub model: String,
    /// Voice.
    #[serde(default = "default_voice")]
    pub voice: String,
    /// Audio format asked for: `opus` (sent as Ogg, as Element records), `mp3`, `aac`,
    /// `flac` or `wav`.
    #[serde(default = "default_speech_format")]
    pub format: String,
    /// Environment variable holding the API key; unset: no key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Timeout of one request, in seconds.
    #[serde(default = "default_audio_timeout")]
    pub timeout_secs: u64,
}

fn default_max_bytes() -> usize {
    25 * 1024 * 1024
}
fn default_max_image_bytes() -> usize {
    5 * 1024 * 1024
}
fn default_max_text_chars() -> usize {
    8_000
}
fn default_true() -> bool {
    true
}
fn default_transcription_model() -> String {
    "whisper-1".into()
}
fn default_speech_model() -> String {
    "tts-1".into()
}
fn default_voice() -> String {
    "alloy".into()
}
fn default_speech_format() -> String {
    "opus".into()
}
fn default_audio_timeout() -> u64 {
    120
}
