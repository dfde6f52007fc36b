//! A stand-in mautrix bridge (bridgev2 on the Matrix side) for tests: its own appservice on the
//! real Synapse, with exclusive `@telegrambot` and `@telegram_.*` namespaces. It registers
//! ghosts with display names, creates portals as the bot with bridgev2's initial state
//! (`m.bridge` + `uk.half-shot.bridge` with state key `<hs>/telegram`,
//! `io.element.functional_members`, the receiver), sends remote messages as ghosts, and relays
//! Matrix users' `m.text` in its portals as `<b>name</b>: text` into an outbox the test reads
//! (`m.notice` is dropped, as the real relay does). The real bridges need Telegram's servers.

#![allow(dead_code)]

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::put,
};
use matrix_os::{
    registration::{Namespace, Namespaces, Registration},
    secret::Secret,
};
use serde_json::{Value, json};

/// The bridge's id, network and bot localpart.
pub const NETWORK: &str = "telegram";
pub const BOT_LOCALPART: &str = "telegrambot";

/// What the bridge relayed to the remote network, and what it dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub room_id: String,
    pub sender: String,
    /// `<b>name</b>: text`, as the relay formats it.
    pub text: String,
}

#[derive(Default)]
struct Shared {
    portals: HashSet<String>,
    outbox: Vec<Relayed>,
    dropped: Vec<Relayed>,
    seen_txns: HashSet<String>,
    client_url: String,
}

pub struct StandInBridge {
    pub registration: Registration,
    shared: Arc<Mutex<Shared>>,
    http: reqwest::Client,
}

/// A portal's description, as bridgev2 writes it.
pub struct PortalSpec<'a> {
    /// `dm`, `group_dm` or `group`.
    pub kind: &'a str,
    /// `user:2002`, `chat:77`.
    pub channel_id: &'a str,
    /// The remote chat's name.
    pub name: &'a str,
    /// The login's remote id (`fi.mau.receiver`).
    pub receiver: &'a str,
    /// Matrix users invited (the logged-in owner).
    pub invite: Vec<String>,
    /// Ghosts that join (the contact, the owner's own ghost).
    pub ghosts: Vec<String>,
    /// `io.element.functional_members.service_members` beside the bot.
    pub service_ghosts: Vec<String>,
}

impl StandInBridge {
    /// Listens on `port` at once (Synapse reads the registration at start and pushes later).
    pub async fn start(port: u16) -> StandInBridge {
        let registration = Registration {
            id: NETWORK.to_owned(),
            url: format!("http://127.0.0.1:{port}"),
            as_token: Secret::random_token(),
            hs_token: Secret::random_token(),
            sender_localpart: BOT_LOCALPART.to_owned(),
            rate_limited: false,
            namespaces: Namespaces {
                users: vec![
                    Namespace {
                        exclusive: true,
                        regex: format!("@{BOT_LOCALPART}:.*"),
                    },
                    Namespace {
                        exclusive: true,
                        regex: format!("@{NETWORK}_.*"),
                    },
                ],
                aliases: vec![],
                rooms: vec![],
            },
            receive_ephemeral: false,
            msc3202: false,
            msc4190: false,
        };
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = (shared.clone(), registration.hs_token.expose().to_owned());
        let app = Router::new()
            .route("/_matrix/app/v1/transactions/{txn}", put(transaction))
            .route("/transactions/{txn}", put(transaction))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bridge port");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandInBridge {
            registration,
            shared,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
        }
    }

    /// Where the homeserver's client API is (known once it started).
    pub fn connect(&self, client_url: &str) {
        self.shared.lock().unwrap().client_url = client_url.to_owned();
    }

    fn url(&self, path: &str, as_user: &str) -> String {
        let base = self.shared.lock().unwrap().client_url.clone();
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{base}{path}{sep}user_id={}", enc(as_user))
    }

    pub fn bot(&self, server: &str) -> String {
        format!("@{BOT_LOCALPART}:{server}")
    }

    async fn call(&self, method: reqwest::Method, path: &str, as_user: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, self.url(path, as_user))
            .bearer_auth(self.registration.as_token.expose())
            .json(&body)
            .send()
            .await
            .expect("bridge request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "bridge {path}: {status} {body}");
        body
    }

    /// Registers a ghost (`telegram_<remote id>`) with a display name; returns its MXID.
    pub async fn ghost(&self, server: &str, remote_id: &str, name: &str) -> String {
        let localpart = format!("{NETWORK}_{remote_id}");
        let mxid = format!("@{localpart}:{server}");
        let base = self.shared.lock().unwrap().client_url.clone();
        let response = self
            .http
            .post(format!("{base}/_matrix/client/v3/register"))
            .bearer_auth(self.registration.as_token.expose())
            .json(&json!({"type": "m.login.application_service", "username": localpart}))
            .send()
            .await
            .expect("register ghost");
        assert!(
            response.status().is_success() || response.status() == StatusCode::BAD_REQUEST,
            "register ghost: {}",
            response.status()
        );
        self.call(
            reqwest::Method::PUT,
            &format!("/_matrix/client/v3/profile/{}/displayname", enc(&mxid)),
            &mxid,
            json!({"displayname": name}),
        )
        .await;
        mxid
    }

    /// Creates a portal as the bot with bridgev2's initial state; ghosts join it.
    pub async fn portal(&self, server: &str, spec: PortalSpec<'_>) -> String {
        let bot = self.bot(server);
        let bridge = json!({
            "bridgebot": bot,
            "creator": bot,
            "protocol": {"id": NETWORK, "displayname": "Telegram", "external_url": "https://telegram.org/"},
            "channel": {"id": spec.channel_id, "displayname": spec.name, "fi.mau.receiver": spec.receiver},
            "com.beeper.room_type": spec.kind,
            "com.beeper.room_type.v2": spec.kind,
        });
        let state_key = format!("{server}/{NETWORK}");
        let mut service_members = vec![bot.clone()];
        service_members.extend(spec.service_ghosts.iter().cloned());
        let body = json!({
            "preset": "private_chat",
            "name": spec.name,
            "is_direct": spec.kind == "dm",
            "invite": spec.invite.iter().chain(spec.ghosts.iter()).collect::<Vec<_>>(),
            "initial_state": [
                {"type": "m.bridge", "state_key": state_key, "content": bridge},
                {"type": "uk.half-shot.bridge", "state_key": state_key, "content": bridge},
                {"type": "io.element.functional_members", "state_key": "",
                 "content": {"service_members": service_members}},
            ],
        });
        let room_id = self
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                &bot,
                body,
            )
            .await["room_id"]
            .as_str()
            .expect("room id")
            .to_owned();
        self.shared.lock().unwrap().portals.insert(room_id.clone());
        for ghost in &spec.ghosts {
            self.call(
                reqwest::Method::POST,
                &format!("/_matrix/client/v3/rooms/{}/join", enc(&room_id)),
                ghost,
                json!({}),
            )
            .await;
        }
        room_id
    }

    /// Sends state into a room as `sender` (one of the bridge's users).
    pub async fn send_state(
        &self,
        room_id: &str,
        sender: &str,
        kind: &str,
        key: &str,
        content: Value,
    ) {
        self.call(
            reqwest::Method::PUT,
            &format!(
                "/_matrix/client/v3/rooms/{}/state/{kind}/{}",
                enc(room_id),
                enc(key)
            ),
            sender,
            content,
        )
        .await;
    }

    /// A remote message, sent as `ghost`; returns its event id.
    pub async fn send_as(&self, ghost: &str, room_id: &str, text: &str) -> String {
        self.send_content_as(ghost, room_id, json!({"msgtype": "m.text", "body": text}))
            .await
    }

    /// Any `m.room.message` content, sent as `ghost`; returns its event id.
    async fn send_content_as(&self, ghost: &str, room_id: &str, content: Value) -> String {
        let txn = Secret::random_token().expose()[..16].to_owned();
        self.call(
            reqwest::Method::PUT,
            &format!(
                "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
                enc(room_id)
            ),
            ghost,
            content,
        )
        .await["event_id"]
            .as_str()
            .expect("event id")
            .to_owned()
    }

    /// A remote photo, file or voice note, sent as `ghost` the way the mautrix bridges do:
    /// the bytes uploaded to the content repository as the ghost, the event's `url` pointing
    /// at them (portals are unencrypted), `content` the rest of the event. Returns its id.
    pub async fn send_media_as(
        &self,
        ghost: &str,
        room_id: &str,
        mut content: Value,
        bytes: Vec<u8>,
        mime: &str,
    ) -> String {
        let response = self
            .http
            .post(self.url("/_matrix/media/v3/upload", ghost))
            .bearer_auth(self.registration.as_token.expose())
            .header("content-type", mime)
            .body(bytes)
            .send()
            .await
            .expect("upload");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "bridge upload: {status} {body}");
        content["url"] = body["content_uri"].clone();
        self.send_content_as(ghost, room_id, content).await
    }

    /// What was relayed to the remote side so far.
    pub fn outbox(&self) -> Vec<Relayed> {
        self.shared.lock().unwrap().outbox.clone()
    }

    /// What the relay dropped (notices).
    pub fn dropped(&self) -> Vec<Relayed> {
        self.shared.lock().unwrap().dropped.clone()
    }

    /// Waits until the outbox holds a relayed message of `sender` in `room_id`.
    pub async fn wait_for_relay(&self, room_id: &str, sender: &str, timeout: Duration) -> Relayed {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = self
                .outbox()
                .into_iter()
                .find(|r| r.room_id == room_id && r.sender == sender)
            {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing of {sender} relayed in {room_id}; outbox {:?}, dropped {:?}",
                self.outbox(),
                self.dropped()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

type BridgeState = (Arc<Mutex<Shared>>, String);

async fn transaction(
    State((shared, hs_token)): State<BridgeState>,
    Path(txn): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| query.get("access_token").cloned());
    if bearer.as_deref() != Some(hs_token.as_str()) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"errcode": "M_FORBIDDEN"})),
        );
    }
    let events = body["events"].as_array().cloned().unwrap_or_default();
    let (client_url, relay): (String, Vec<Value>) = {
        let mut shared = shared.lock().unwrap();
        if !shared.seen_txns.insert(txn) {
            return (StatusCode::OK, Json(json!({})));
        }
        let portals = shared.portals.clone();
        (
            shared.client_url.clone(),
            events
                .into_iter()
                .filter(|e| e["type"] == "m.room.message")
                .filter(|e| portals.contains(e["room_id"].as_str().unwrap_or_default()))
                .filter(|e| {
                    let sender = e["sender"].as_str().unwrap_or_default();
                    !sender.starts_with(&format!("@{NETWORK}_"))
                        && !sender.starts_with(&format!("@{BOT_LOCALPART}:"))
                })
                .collect(),
        )
    };
    for event in relay {
        let sender = event["sender"].as_str().unwrap_or_default().to_owned();
        let room_id = event["room_id"].as_str().unwrap_or_default().to_owned();
        // The relay names the sender by their display name.
        let name = reqwest::get(format!(
            "{client_url}/_matrix/client/v3/profile/{}/displayname",
            enc(&sender)
        ))
        .await
        .ok();
        let name = match name {
            Some(response) => response
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["displayname"].as_str().map(str::to_owned))
                .unwrap_or_else(|| sender.clone()),
            None => sender.clone(),
        };
        let relayed = Relayed {
            room_id,
            sender: sender.clone(),
            text: format!(
                "<b>{name}</b>: {}",
                event["content"]["body"].as_str().unwrap_or_default()
            ),
        };
        let mut shared = shared.lock().unwrap();
        match event["content"]["msgtype"].as_str() {
            Some("m.text") | Some("m.emote") => shared.outbox.push(relayed),
            _ => shared.dropped.push(relayed),
        }
    }
    (StatusCode::OK, Json(json!({})))
}
