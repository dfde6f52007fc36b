//! The human side of integration tests: a real `matrix-sdk` client (the crypto Element uses).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use matrix_sdk::{
    Client, Room,
    config::SyncSettings,
    room::MessagesOptions,
    ruma::{
        OwnedEventId, OwnedRoomId, OwnedUserId, UserId,
        api::client::room::{
            Visibility,
            create_room::v3::{Request as CreateRoomRequest, RoomPreset},
        },
        events::{
            InitialStateEvent,
            room::{encryption::RoomEncryptionEventContent, message::RoomMessageEventContent},
        },
    },
};
use serde_json::Value;

/// A message seen in a room.
#[derive(Debug, Clone)]
pub struct Seen {
    pub event_id: OwnedEventId,
    pub sender: OwnedUserId,
    /// The event as the client sees it (decrypted when it was encrypted); in
    /// [`Human::messages`], with the content of its newest edit, as a client shows it.
    pub json: Value,
    /// Edits of it applied (in [`Human::messages`]).
    pub edits: usize,
}

/// MSC4357: a message still being written carries this.
pub const LIVE_MARKER: &str = "org.matrix.msc4357.live";

impl Seen {
    pub fn body(&self) -> &str {
        self.json
            .pointer("/content/body")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    pub fn formatted_body(&self) -> Option<&str> {
        self.json
            .pointer("/content/formatted_body")
            .and_then(Value::as_str)
    }
    /// Whether it is still being written (its newest version carries the live mark).
    pub fn is_live(&self) -> bool {
        self.json
            .get("content")
            .is_some_and(|c| c.get(LIVE_MARKER).is_some())
    }
    /// The event an edit replaces (`m.replace`), if this is one.
    pub fn replaces(&self) -> Option<&str> {
        let relation = self.json.pointer("/content/m.relates_to")?;
        (relation.get("rel_type")?.as_str()? == "m.replace")
            .then(|| relation.get("event_id")?.as_str())
            .flatten()
    }
    pub fn kind(&self) -> &str {
        self.json
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    /// The `msgtype` of a message (`m.text`, `m.file`, ...).
    pub fn msgtype(&self) -> &str {
        self.json
            .pointer("/content/msgtype")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    /// The file name of a media message: `filename`, else `body`.
    pub fn file_name(&self) -> Option<&str> {
        self.json
            .pointer("/content/filename")
            .or_else(|| self.json.pointer("/content/body"))
            .and_then(Value::as_str)
    }
}

/// A logged-in person.
pub struct Human {
    pub client: Client,
    pub user_id: OwnedUserId,
}

impl Human {
    /// Logs in with a password and syncs once.
    pub async fn login(homeserver: &str, username: &str, password: &str) -> Human {
        let client = Client::builder()
            .homeserver_url(homeserver)
            .build()
            .await
            .expect("client");
        client
            .matrix_auth()
            .login_username(username, password)
            .initial_device_display_name("integration test")
            .send()
            .await
            .expect("login");
        let user_id = client.user_id().expect("user id").to_owned();
        client
            .sync_once(SyncSettings::default().timeout(Duration::ZERO))
            .await
            .expect("sync");
        Human { client, user_id }
    }

    /// Sets up cross-signing, as Element does on first login: the account gets an identity
    /// and this device is signed by it.
    pub async fn bootstrap_cross_signing(&self) {
        self.client
            .encryption()
            .bootstrap_cross_signing(None)
            .await
            .expect("cross-signing");
    }

    /// Blocks every device of `user` in this client: no room key is shared with them from
    /// then on (neither in a to-device push nor into their inbox on the homeserver).
    pub async fn block_devices_of(&self, user: &UserId) {
        for device in self
            .client
            .encryption()
            .get_user_devices(user)
            .await
            .expect("devices")
            .devices()
        {
            device
                .set_local_trust(matrix_sdk::encryption::LocalTrust::BlackListed)
                .await
                .expect("block a device");
        }
    }

    pub async fn sync(&self) {
        self.client
            .sync_once(SyncSettings::default().timeout(Duration::from_millis(200)))
            .await
            .expect("sync");
    }

    /// Creates a DM with `other`, as Element does (private, `is_direct`), optionally encrypted.
    pub async fn create_dm(&self, other: &UserId, encrypted: bool) -> Room {
        self.create_room(&[other], true, encrypted).await
    }

    pub async fn create_room(&self, invite: &[&UserId], is_direct: bool, encrypted: bool) -> Room {
        let mut request = CreateRoomRequest::new();
        request.invite = invite.iter().map(|u| (*u).to_owned()).collect();
        request.is_direct = is_direct;
        request.preset = Some(RoomPreset::PrivateChat);
        request.visibility = Visibility::Private;
        if encrypted {
            request.initial_state = vec![
                InitialStateEvent::with_empty_state_key(
                    RoomEncryptionEventContent::with_recommended_defaults(),
                )
                .to_raw_any(),
            ];
        }
        self.client.create_room(request).await.expect("create room")
    }

    pub fn room(&self, room_id: &OwnedRoomId) -> Room {
        self.client
            .get_room(room_id)
            .expect("room known to the client")
    }

    /// Waits until `user` is joined to `room`.
    pub async fn wait_for_join(&self, room: &Room, user: &UserId, timeout: Duration) {
        self.wait_for_membership(room, user, "join", timeout).await;
    }

    /// Waits until `user`'s membership in `room` is `membership`; returns the member event JSON.
    pub async fn wait_for_membership(
        &self,
        room: &Room,
        user: &UserId,
        membership: &str,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let state: Value = self
                .state_event(room, "m.room.member", user.as_str())
                .await
                .unwrap_or(Value::Null);
            if state.get("membership").and_then(Value::as_str) == Some(membership) {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "{user} did not reach {membership} in {}: {state}",
                room.room_id()
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// A state event's content, straight from the homeserver.
    pub async fn state_event(&self, room: &Room, kind: &str, state_key: &str) -> Option<Value> {
        let url = format!(
            "{}/_matrix/client/v3/rooms/{}/state/{}/{}",
            self.client.homeserver().as_str().trim_end_matches('/'),
            urlencode(room.room_id().as_str()),
            kind,
            urlencode(state_key)
        );
        let token = self.client.access_token()?;
        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    pub async fn send_text(&self, room: &Room, text: &str) -> OwnedEventId {
        room.send(RoomMessageEventContent::text_plain(text))
            .await
            .expect("send")
            .response
            .event_id
    }

    /// Sends any message content (mentions, threads, replies).
    pub async fn send_content(
        &self,
        room: &Room,
        content: RoomMessageEventContent,
    ) -> OwnedEventId {
        room.send(content).await.expect("send").response.event_id
    }

    /// Sends a file as Element does (`m.image`/`m.file`/... by its type, encrypted in an
    /// encrypted room), with an optional caption.
    pub async fn send_attachment(
        &self,
        room: &Room,
        name: &str,
        mime: &str,
        bytes: Vec<u8>,
        caption: Option<&str>,
    ) -> OwnedEventId {
        let mime: mime::Mime = mime.parse().expect("a mimetype");
        let config = matrix_sdk::attachment::AttachmentConfig::new().caption(
            caption.map(matrix_sdk::ruma::events::room::message::TextMessageEventContent::plain),
        );
        room.send_attachment(name, &mime, bytes, config)
            .await
            .expect("send attachment")
            .event_id
    }

    /// Uploads `bytes` encrypted (as every client does in an encrypted room) and returns the
    /// `file` object of the event.
    async fn upload_encrypted(&self, bytes: &[u8]) -> Value {
        let mut reader = std::io::Cursor::new(bytes.to_vec());
        let file = self
            .client
            .upload_encrypted_file(&mut reader)
            .await
            .expect("upload encrypted");
        serde_json::to_value(&file).expect("file JSON")
    }

    /// Sends a voice message as Element does: `m.audio` with `org.matrix.msc3245.voice`, the
    /// audio an encrypted attachment.
    pub async fn send_voice(&self, room: &Room, bytes: Vec<u8>) -> OwnedEventId {
        let file = self.upload_encrypted(&bytes).await;
        let content = serde_json::json!({
            "msgtype": "m.audio",
            "body": "Voice message",
            "file": file,
            "info": {"mimetype": "audio/ogg", "size": bytes.len(), "duration": 2000},
            "org.matrix.msc1767.audio": {"duration": 2000, "waveform": [0, 512, 1024]},
            "org.matrix.msc3245.voice": {},
        });
        room.send_raw("m.room.message", content)
            .await
            .expect("send voice")
            .response
            .event_id
    }

    /// Sends an encrypted `m.file` whose `hashes.sha256` is that of other bytes (a tampered or
    /// swapped attachment).
    pub async fn send_tampered_file(
        &self,
        room: &Room,
        name: &str,
        mime: &str,
        bytes: Vec<u8>,
    ) -> OwnedEventId {
        let mut file = self.upload_encrypted(&bytes).await;
        let decoy = self.upload_encrypted(b"something else entirely").await;
        file["hashes"] = decoy["hashes"].clone();
        let content = serde_json::json!({
            "msgtype": "m.file",
            "body": name,
            "filename": name,
            "file": file,
            "info": {"mimetype": mime, "size": bytes.len()},
        });
        room.send_raw("m.room.message", content)
            .await
            .expect("send tampered file")
            .response
            .event_id
    }

    /// The bytes of a media message, downloaded and decrypted as a client does.
    pub async fn download(&self, seen: &Seen) -> Vec<u8> {
        use matrix_sdk::{
            media::{MediaFormat, MediaRequestParameters},
            ruma::events::room::{EncryptedFile, MediaSource},
        };
        let content = &seen.json["content"];
        let source = if let Some(file) = content.get("file") {
            let file: EncryptedFile = serde_json::from_value(file.clone()).expect("file");
            MediaSource::Encrypted(Box::new(file))
        } else {
            let url = content["url"].as_str().expect("a url or a file");
            MediaSource::Plain(url.into())
        };
        self.client
            .media()
            .get_media_content(
                &MediaRequestParameters {
                    source,
                    format: MediaFormat::File,
                },
                false,
            )
            .await
            .expect("download")
    }

    /// Joins a room this person was invited to.
    pub async fn join(&self, room_id: &matrix_sdk::ruma::RoomId) -> Room {
        let room = self.client.join_room_by_id(room_id).await.expect("join");
        self.sync().await;
        room
    }

    /// Every message-like event in the room, oldest first (decrypted where possible), edits
    /// included as events of their own.
    pub async fn timeline(&self, room: &Room) -> Vec<Seen> {
        let mut options = MessagesOptions::backward();
        // Synapse serves at most 1,000 per request; rooms in tests stay below that.
        options.limit = 1000u32.into();
        let messages = room.messages(options).await.expect("messages");
        let mut seen: Vec<Seen> = messages
            .chunk
            .iter()
            .filter_map(|event| {
                let json: Value = serde_json::from_str(event.raw().json().get()).ok()?;
                json.get("state_key").is_none().then_some(())?;
                Some(Seen {
                    event_id: event.event_id()?,
                    sender: event.sender()?,
                    json,
                    edits: 0,
                })
            })
            .collect();
        seen.reverse();
        seen
    }

    /// The messages of the room as a client shows them, oldest first: each with the content
    /// of its newest edit by its sender (`m.new_content`, keeping its reply or thread), edits
    /// not shown apart.
    pub async fn messages(&self, room: &Room) -> Vec<Seen> {
        let mut shown: Vec<Seen> = Vec::new();
        for event in self.timeline(room).await {
            if let Some(original) = event.replaces() {
                if let Some(target) = shown
                    .iter_mut()
                    .find(|m| m.event_id.as_str() == original && m.sender == event.sender)
                {
                    if event.kind() == "m.room.encrypted" {
                        // Not decrypted yet: the message is not known as it is now.
                        target.json["type"] = Value::from("m.room.encrypted");
                        continue;
                    }
                    let mut content = event.json["content"]["m.new_content"].clone();
                    if let (Some(map), Some(relation)) = (
                        content.as_object_mut(),
                        target.json["content"].get("m.relates_to").cloned(),
                    ) {
                        map.insert("m.relates_to".into(), relation);
                    }
                    if let Some(map) = content.as_object_mut() {
                        // The edit's own mark says whether it is still being written.
                        map.remove(LIVE_MARKER);
                        if let Some(mark) = event.json["content"].get(LIVE_MARKER) {
                            map.insert(LIVE_MARKER.into(), mark.clone());
                        }
                    }
                    target.json["content"] = content;
                    target.edits += 1;
                }
                continue;
            }
            shown.push(event);
        }
        shown
    }

    /// Messages in `room` from `sender`.
    pub async fn messages_from(&self, room: &Room, sender: &UserId) -> Vec<Seen> {
        self.messages(room)
            .await
            .into_iter()
            .filter(|m| m.sender == sender)
            .collect()
    }

    /// Waits until `sender` has posted at least `count` messages in `room`, each finished (not
    /// live any more); returns them all, as [`Human::messages`] shows them.
    pub async fn wait_for_messages_from(
        &self,
        room: &Room,
        sender: &UserId,
        count: usize,
        timeout: Duration,
    ) -> Vec<Seen> {
        let deadline = Instant::now() + timeout;
        loop {
            self.sync().await;
            let seen = self.messages_from(room, sender).await;
            // A message whose room key is still on its way shows as `m.room.encrypted` for a
            // moment; wait for it to decrypt (but return it as it is at the deadline).
            // A message still being written (live) is not there yet either.
            let decrypted = seen
                .iter()
                .take(count)
                .all(|m| m.kind() != "m.room.encrypted" && !m.is_live());
            if seen.len() >= count && (decrypted || Instant::now() >= deadline) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} message(s) from {sender}, saw {}: {:?}",
                seen.len(),
                seen.iter().map(|s| s.body().to_owned()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
