//! Sending files as a twin: the bytes go to the content repository (encrypted first in an
//! encrypted room, the key then travelling inside the encrypted event), then the message that
//! points at them goes out like any other, once.

use ruma::{
    OwnedEventId, RoomId, TransactionId, UInt, UserId,
    events::{
        AnyMessageLikeEventContent,
        room::{
            ImageInfo, MediaSource,
            message::{
                AudioInfo, AudioMessageEventContent, FileInfo, FileMessageEventContent,
                ImageMessageEventContent, MessageType, RoomMessageEventContent, VideoInfo,
                VideoMessageEventContent,
            },
        },
    },
    serde::Raw,
};

use super::Outbox;
use crate::{
    media::{MediaKind, seal},
    room::{RoomError, event::VOICE_MARK},
};

/// A file to send.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its file name.
    pub name: String,
    /// Its type.
    pub mime: String,
    /// How it goes out.
    pub kind: MediaKind,
    /// Words shown with it.
    pub caption: Option<String>,
    /// Sent as a voice message (`m.audio` with the MSC3245 mark).
    pub voice: bool,
}

impl Outbox {
    /// Uploads `attachment` as `twin` (sealed when `room` is encrypted) and sends the message
    /// carrying it; `txn_id` keeps the message once however often this runs.
    pub async fn send_attachment(
        &self,
        twin: &UserId,
        room: &RoomId,
        txn_id: &TransactionId,
        attachment: Attachment,
    ) -> Result<OwnedEventId, RoomError> {
        let Attachment {
            bytes,
            name,
            mime,
            kind,
            caption,
            voice,
        } = attachment;
        let size = UInt::new(bytes.len() as u64);
        let source = if self.is_encrypted(twin, room).await? {
            let sealed = seal(&bytes).map_err(|e| RoomError::Internal(e.to_string()))?;
            let ciphertext = sealed.ciphertext.clone();
            let url = self
                .matrix
                .upload_media(twin, ciphertext, "application/octet-stream", None)
                .await?;
            sealed.source(url)
        } else {
            MediaSource::Plain(
                self.matrix
                    .upload_media(twin, bytes, &mime, Some(&name))
                    .await?,
            )
        };
        let body = caption.clone().unwrap_or_else(|| name.clone());
        // The four content types share these fields but no trait: one arm shape for each.
        macro_rules! with_info {
            ($content:ident, $info:ident, $variant:ident) => {{
                let mut content = $content::new(body, source);
                let mut info = $info::new();
                info.mimetype = Some(mime);
                info.size = size;
                content.info = Some(Box::new(info));
                content.filename = Some(name);
                MessageType::$variant(content)
            }};
        }
        let msgtype = match kind {
            MediaKind::Image => with_info!(ImageMessageEventContent, ImageInfo, Image),
            MediaKind::Audio => with_info!(AudioMessageEventContent, AudioInfo, Audio),
            MediaKind::Video => with_info!(VideoMessageEventContent, VideoInfo, Video),
            MediaKind::File => with_info!(FileMessageEventContent, FileInfo, File),
        };
        let content = RoomMessageEventContent::new(msgtype);
        if !voice {
            return self.send_message(twin, room, txn_id, content).await;
        }
        let mut json = serde_json::to_value(AnyMessageLikeEventContent::RoomMessage(content))
            .map_err(|e| RoomError::Internal(format!("cannot serialize a message: {e}")))?;
        json[VOICE_MARK] = serde_json::json!({});
        let raw = Raw::new(&json)
            .map_err(|e| RoomError::Internal(format!("cannot serialize a message: {e}")))?
            .cast_unchecked::<AnyMessageLikeEventContent>();
        self.send_message_raw(twin, room, txn_id, &raw, None).await
    }
}
