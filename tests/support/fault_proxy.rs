//! A reverse proxy between the service and the homeserver's client-server API that can fail
//! chosen requests: every request whose path contains a given text is answered with
//! `500 {"errcode":"M_UNKNOWN","error":"injected"}` instead of reaching the homeserver.
//! Everything else (method, path and query, headers, body) is forwarded unchanged.

#![allow(dead_code)]

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderName, StatusCode},
    response::{IntoResponse, Response},
};

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), plus the ones
/// the HTTP libraries set themselves from the body.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "content-length",
];

#[derive(Clone)]
struct FaultState {
    target: String,
    fail_paths: Arc<Mutex<Option<String>>>,
    injected: Arc<AtomicU64>,
    http: reqwest::Client,
}

/// The running proxy; stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to be used as the service's `homeserver.url`.
    pub url: String,
    fail_paths: Arc<Mutex<Option<String>>>,
    injected: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `port` and forwards to `target` (the homeserver's client URL).
    pub async fn start(port: u16, target: String) -> FaultProxy {
        let fail_paths = Arc::new(Mutex::new(None));
        let injected = Arc::new(AtomicU64::new(0));
        let state = FaultState {
            target: target.trim_end_matches('/').to_owned(),
            fail_paths: fail_paths.clone(),
            injected: injected.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("proxy HTTP client"),
        };
        let app = Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("fault proxy port");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy {
            url: format!("http://127.0.0.1:{port}"),
            fail_paths,
            injected,
            task,
        }
    }

    /// From now on, requests whose path contains `fragment` fail with HTTP 500; `None` lets
    /// everything through again.
    pub fn fail_paths_containing(&self, fragment: Option<&str>) {
        *self.fail_paths.lock().unwrap_or_else(|p| p.into_inner()) = fragment.map(str::to_owned);
    }

    /// How many requests were failed on purpose so far.
    pub fn injected_failures(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

async fn forward(State(state): State<FaultState>, request: Request) -> Response {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let path = request.uri().path().to_owned();
    let failing = state
        .fail_paths
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .is_some_and(|fragment| path.contains(&fragment));
    if failing {
        state.injected.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "application/json")],
            r#"{"errcode":"M_UNKNOWN","error":"injected"}"#,
        )
            .into_response();
    }

    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in request.headers() {
        if is_hop_by_hop(name.as_str()) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let sent = state
        .http
        .request(method, format!("{}{path_and_query}", state.target))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    };
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::builder().status(status);
    for (name, value) in upstream.headers() {
        if is_hop_by_hop(name.as_str()) {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes()) {
            response = response.header(name, value.as_bytes());
        }
    }
    let bytes = upstream.bytes().await.unwrap_or_default();
    response
        .body(Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
