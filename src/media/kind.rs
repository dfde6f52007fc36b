//! What a file is: image types a model reads (by their first bytes, not by what the sender
//! claims), text-like files, and the `msgtype` a file goes out as.

use super::MediaKind;

/// Image types both wire formats take as image input.
const MODEL_IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// One of the image types models read.
    Image(&'static str),
    /// Valid UTF-8 without control characters (but tabs and line breaks).
    Text,
    /// Anything else.
    Binary,
}

/// The image type of `bytes`, if it is one models read (JPEG, PNG, GIF, WebP).
pub fn image_mime(bytes: &[u8]) -> Option<&'static str> {
    let mime = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "image/gif"
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        return None;
    };
    debug_assert!(MODEL_IMAGE_TYPES.contains(&mime));
    Some(mime)
}

impl Sniffed {
    /// Looks at `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        if let Some(mime) = image_mime(bytes) {
            return Self::Image(mime);
        }
        match std::str::from_utf8(bytes) {
            Ok(text)
                if !text
                    .chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
            {
                Self::Text
            }
            _ => Self::Binary,
        }
    }
}

/// Whether a file named `name` of type `mime` is text the file tools read (txt, md, csv,
/// json and the like), judged by its name and type; its bytes must still be UTF-8.
pub fn is_text_like(name: &str, mime: Option<&str>) -> bool {
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let by_name = matches!(
        extension.as_str(),
        "txt"
            | "md"
            | "markdown"
            | "csv"
            | "tsv"
            | "json"
            | "yaml"
            | "yml"
            | "toml"
            | "ics"
            | "log"
            | "xml"
            | "html"
            | "org"
            | "rst"
    );
    let by_type = mime.is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.starts_with("text/")
            || matches!(
                m.split(';').next().unwrap_or_default().trim(),
                "application/json" | "application/xml" | "application/toml" | "application/yaml"
            )
    });
    by_name || by_type
}

/// The `msgtype` a file of the home goes out as, and its type, from its name and first bytes.
pub fn message_kind_for(name: &str, bytes: &[u8]) -> (MediaKind, String) {
    if let Some(mime) = image_mime(bytes) {
        return (MediaKind::Image, mime.to_owned());
    }
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let (kind, mime) = match extension.as_str() {
        "ogg" | "oga" | "opus" => (MediaKind::Audio, "audio/ogg"),
        "mp3" => (MediaKind::Audio, "audio/mpeg"),
        "wav" => (MediaKind::Audio, "audio/wav"),
        "m4a" => (MediaKind::Audio, "audio/mp4"),
        "mp4" => (MediaKind::Video, "video/mp4"),
        "webm" => (MediaKind::Video, "video/webm"),
        "pdf" => (MediaKind::File, "application/pdf"),
        "json" => (MediaKind::File, "application/json"),
        "csv" => (MediaKind::File, "text/csv"),
        "md" | "markdown" => (MediaKind::File, "text/markdown"),
        "ics" => (MediaKind::File, "text/calendar"),
        "html" => (MediaKind::File, "text/html"),
        _ if Sniffed::of(bytes) == Sniffed::Text => (MediaKind::File, "text/plain"),
        _ => (MediaKind::File, "application/octet-stream"),
    };
    (kind, mime.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_bytes_not_their_claims() {
        assert_eq!(image_mime(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_mime(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_mime(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_mime(b"<svg xmlns=...>"), None);
        assert_eq!(Sniffed::of(b"a,b\n1,2\n"), Sniffed::Text);
        assert_eq!(Sniffed::of(b"\0\x01binary"), Sniffed::Binary);
        assert!(is_text_like("notes.MD", None));
        assert!(is_text_like("x", Some("text/plain; charset=utf-8")));
        assert!(!is_text_like("photo.jpg", Some("image/jpeg")));
        assert_eq!(
            message_kind_for("a.png", b"\x89PNG\r\n\x1a\nxx").0,
            MediaKind::Image
        );
        assert_eq!(
            message_kind_for("report.pdf", b"%PDF-1.7").1,
            "application/pdf"
        );
        assert_eq!(message_kind_for("todo", b"buy milk").1, "text/plain");
    }
}
