//! A forwarding proxy between the homeserver and the service that can hold back to-device
//! messages (room keys), as happens when they come over a slow federation path: the events go
//! through at once, the keys when the test releases them.

#![allow(dead_code)]

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::Value;

const TO_DEVICE: &str = "de.sorunome.msc2409.to_device";

/// A held-back transaction of to-device messages: its path, authorization and body.
type Held = (String, Option<String>, Bytes);

#[derive(Clone)]
struct ProxyState {
    target: String,
    hold_keys: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<Held>>>,
    http: reqwest::Client,
}

pub struct TxnProxy {
    pub url: String,
    state: ProxyState,
    task: tokio::task::JoinHandle<()>,
}

impl TxnProxy {
    /// Listens on `port` and forwards everything to `target` (`http://127.0.0.1:PORT`).
    pub async fn start(port: u16, target: String) -> TxnProxy {
        let state = ProxyState {
            target,
            hold_keys: Arc::new(AtomicBool::new(false)),
            held: Arc::new(Mutex::new(Vec::new())),
            http: reqwest::Client::new(),
        };
        let app = Router::new().fallback(forward).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("proxy port");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TxnProxy {
            url: format!("http://127.0.0.1:{port}"),
            state,
            task,
        }
    }

    /// From now on, to-device messages are held back until [`TxnProxy::release_room_keys`];
    /// the events of the same transactions go through at once.
    pub fn hold_back_room_keys(&self) {
        self.state.hold_keys.store(true, Ordering::SeqCst);
    }

    /// Stops holding back and sends what was held, in order, each as its own transaction.
    /// Returns how many transactions of to-device messages had been held.
    pub async fn release_room_keys(&self) -> usize {
        self.state.hold_keys.store(false, Ordering::SeqCst);
        let held = std::mem::take(&mut *self.state.held.lock().unwrap());
        let count = held.len();
        for (path, auth, body) in held {
            let response = send(&self.state, reqwest::Method::PUT, &path, auth, body).await;
            assert!(
                response.status().is_success(),
                "the service refused held-back keys: {}",
                response.status()
            );
        }
        count
    }
}

impl Drop for TxnProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn send(
    state: &ProxyState,
    method: reqwest::Method,
    path: &str,
    auth: Option<String>,
    body: Bytes,
) -> Response {
    let mut request = state
        .http
        .request(method, format!("{}{path}", state.target))
        .body(body);
    request = request.header("content-type", "application/json");
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    match request.send().await {
        Ok(response) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, response.bytes().await.unwrap_or_default()).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap_or_default();

    let holding = state.hold_keys.load(Ordering::SeqCst) && path.contains("/transactions/");
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let keys = parsed
        .as_ref()
        .and_then(|v| v.get(TO_DEVICE))
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .cloned();
    let (true, Some(keys), Some(mut rest)) = (holding, keys, parsed) else {
        return send(&state, method, &path, auth, body).await;
    };
    // Events (and everything else) now, the to-device messages on release as their own
    // transaction.
    rest.as_object_mut().map(|o| o.remove(TO_DEVICE));
    let later = serde_json::json!({ "events": [], TO_DEVICE: keys });
    let later_path = format!("{}-keys", path.split('?').next().unwrap_or_default());
    state
        .held
        .lock()
        .unwrap()
        .push((later_path, auth.clone(), Bytes::from(later.to_string())));
    send(&state, method, &path, auth, Bytes::from(rest.to_string())).await
}
