//! Why a media file could not be used.

/// What went wrong with a media file; [`MediaError::notice`] is what the room reads.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Larger than `media.max_bytes` (declared, or found while downloading).
    #[error("the file is larger than {max} bytes")]
    TooLarge {
        /// The bound, in bytes.
        max: usize,
    },
    /// The homeserver would not give the file (gone, forbidden, quarantined).
    #[error("the homeserver refused the download: {0}")]
    Refused(String),
    /// The homeserver could not be reached or the download broke off.
    #[error("the download failed: {0}")]
    Unreachable(String),
    /// The encrypted attachment's bytes do not match its SHA-256 hash (tampered or truncated).
    #[error("the file's contents do not match its hash")]
    Tampered,
    /// The attachment's encryption info is unusable (unknown version, missing hash, bad key).
    #[error("the file cannot be decrypted: {0}")]
    Undecryptable(String),
    /// The file's contents are not what a model can take (an image type it does not read).
    #[error("{0}")]
    Unsupported(String),
    /// No audio endpoint is configured for this.
    #[error("no {0} endpoint is configured")]
    NotConfigured(&'static str),
    /// The audio endpoint failed.
    #[error("the {what} endpoint failed: {message}")]
    Audio {
        /// `transcription` or `speech`.
        what: &'static str,
        /// What it said (no secrets: the key never appears in it).
        message: String,
    },
}

impl MediaError {
    /// One line for the room about `name` (the sender's file name, quoted and bounded).
    pub fn notice(&self, name: &str) -> String {
        let name = crate::kernel::quote::one_line(name, 80);
        match self {
            Self::TooLarge { max } => format!(
                "⚠️ I did not open “{name}”: it is larger than {}, the most I take.",
                human_size(*max as u64)
            ),
            Self::Refused(_) => {
                format!("⚠️ I could not get “{name}”: the homeserver refused to give it to me.")
            }
            Self::Unreachable(_) => format!(
                "⚠️ I could not download “{name}” (the download failed). Please send it again."
            ),
            Self::Tampered => format!(
                "⚠️ I did not open “{name}”: its contents do not match its hash (it was changed \
                 or cut short on the way). Nothing was saved; please send it again."
            ),
            Self::Undecryptable(_) => format!(
                "⚠️ I could not decrypt “{name}”: its encryption details are unusable. Nothing was \
                 saved."
            ),
            Self::Unsupported(why) => format!("⚠️ I cannot use “{name}”: {why}."),
            Self::NotConfigured(_) => format!(
                "🎙️ I cannot listen to voice messages yet (“{name}”): no transcription service is \
                 set up. Please type it instead."
            ),
            Self::Audio { .. } => format!(
                "⚠️ I could not transcribe “{name}”: the transcription service failed. Please try \
                 again or type it."
            ),
        }
    }
}

/// A size for people: `3.2 MB`, `512 kB`, `80 bytes`.
pub fn human_size(bytes: u64) -> String {
    const KB: u64 = 1_000;
    const MB: u64 = 1_000_000;
    if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else if bytes >= KB {
        format!("{} kB", bytes / KB)
    } else {
        format!("{bytes} bytes")
    }
}
