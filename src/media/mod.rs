//! Media: photos, files, voice messages and videos that people send a twin, and files a twin
//! sends.
//!
//! A media message is parsed once into a [`MediaRef`] (what it is, where its bytes are, its
//! name, its caption). When a turn answers it, [`fetch`] downloads the bytes as the twin
//! (authenticated media) within a size bound and decrypts an encrypted attachment with
//! matrix-sdk-crypto, which checks its hash. [`audio`] speaks the OpenAI-compatible audio wire
//! format (transcription of voice messages, spoken replies); [`inbox`] keeps the owner's files
//! in the home.

pub mod audio;
mod error;
mod fetch;
pub mod inbox;
mod kind;
pub mod pdf;

use ruma::events::room::{MediaSource, message::MessageType};

pub use self::{
    error::MediaError,
    error::human_size,
    fetch::{Sealed, fetch, seal},
    kind::{Sniffed, image_mime, is_text_like, message_kind_for},
};

/// What kind of media message it is (`msgtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `m.image`.
    Image,
    /// `m.file`.
    File,
    /// `m.audio` (a voice message when [`MediaRef::voice`]).
    Audio,
    /// `m.video`.
    Video,
}

impl MediaKind {
    /// How the kind is named to people and the model.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Image => "an image",
            Self::File => "a file",
            Self::Audio => "an audio file",
            Self::Video => "a video",
        }
    }
}

/// Where a media message's bytes are: plain (`url`) or an encrypted attachment (`file`, with
/// the key, iv and hashes). Compared by its JSON.
#[derive(Debug, Clone)]
pub struct Source(pub MediaSource);

impl PartialEq for Source {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(&self.0).ok() == serde_json::to_value(&other.0).ok()
    }
}

impl Eq for Source {}

/// A media message, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// Image, file, audio or video.
    pub kind: MediaKind,
    /// A voice message (`org.matrix.msc3245.voice`), not just an audio file.
    pub voice: bool,
    /// Where its bytes are.
    pub source: Source,
    /// Its file name (`filename`, else `body`), as the sender gave it: never a path to trust.
    pub name: String,
    /// Its declared type (`info.mimetype`), if any.
    pub mimetype: Option<String>,
    /// Its declared size (`info.size`), if any.
    pub size: Option<u64>,
    /// The sender's words next to it (`body` beside a different `filename`, Matrix 1.10).
    pub caption: Option<String>,
}

impl MediaRef {
    /// The media of `msgtype`, if it is `m.image`, `m.file`, `m.audio` or `m.video`; `voice`
    /// says whether the content carried the MSC3245 voice mark.
    pub fn of(msgtype: &MessageType, voice: bool) -> Option<Self> {
        // The four content types share these fields but no trait: one arm shape for each.
        macro_rules! parts {
            ($kind:expr, $content:expr) => {{
                let c = $content;
                let info = c.info.as_ref();
                (
                    $kind,
                    &c.source,
                    c.filename(),
                    c.caption(),
                    info.and_then(|i| i.mimetype.clone()),
                    info.and_then(|i| i.size).map(u64::from),
                )
            }};
        }
        let (kind, source, name, caption, mimetype, size) = match msgtype {
            MessageType::Image(c) => parts!(MediaKind::Image, c),
            MessageType::File(c) => parts!(MediaKind::File, c),
            MessageType::Audio(c) => parts!(MediaKind::Audio, c),
            MessageType::Video(c) => parts!(MediaKind::Video, c),
            _ => return None,
        };
        Some(Self {
            kind,
            voice: voice && kind == MediaKind::Audio,
            source: Source(source.clone()),
            name: name.to_owned(),
            mimetype,
            size,
            caption: caption
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
        })
    }

    /// Whether its bytes are an encrypted attachment.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.source.0, MediaSource::Encrypted(_))
    }
}
