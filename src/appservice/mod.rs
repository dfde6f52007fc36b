//! The appservice HTTP API the homeserver calls (axum).

mod auth;
mod error;
mod metrics;
mod query;
mod serve;
mod transactions;

pub use self::serve::{HEADER_READ_TIMEOUT, serve};

use std::{net::SocketAddr, sync::Arc};

use async_trait::async_trait;
use axum::{
    Json, Router,
    extract::State,
    middleware,
    routing::{get, post, put},
};
use ruma::UserId;
use tokio::{net::TcpListener, sync::Notify};

use crate::{secret::Secret, storage::Store};

/// Decides whether a user ID queried by the homeserver is one of ours, creating it if so.
#[async_trait]
pub trait Provisioner: Send + Sync {
    /// `Ok(true)` when the user now exists; `Ok(false)` when it is not ours to create.
    async fn provision(&self, user_id: &UserId) -> anyhow::Result<bool>;

    /// The owner of `user_id` when it is one of our twins (of an owner allowed to have one).
    fn owner_of_twin(&self, _user_id: &UserId) -> Option<ruma::OwnedUserId> {
        None
    }
}

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    pub(crate) hs_token: Secret,
    pub(crate) store: Store,
    pub(crate) inbox_ready: Arc<Notify>,
    pub(crate) provisioner: Arc<dyn Provisioner>,
    pub(crate) max_body_bytes: usize,
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl AppState {
    /// State for the router: the registration's hs_token, the store whose inbox receives
    /// transactions, a notifier woken on each new transaction, and the user provisioner.
    pub fn new(
        hs_token: Secret,
        store: Store,
        inbox_ready: Arc<Notify>,
        provisioner: Arc<dyn Provisioner>,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            hs_token,
            store,
            inbox_ready,
            provisioner,
            max_body_bytes,
            metrics: None,
        }
    }

    /// Serves `GET /metrics` from `metrics`, counts transactions into it and reports its
    /// counters in `/health`. Without it `/metrics` answers 404.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

/// A twin's A2A agent card (the one its `hello` carries), open to anyone: who it is, whom it
/// acts for, which protocol versions and skills it has. 404 for anyone who is not our twin.
async fn agent_card(
    State(state): State<AppState>,
    axum::extract::Path(user_id): axum::extract::Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let not_found = || {
        error::ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "M_NOT_FOUND",
            "no twin with this ID here",
        )
        .into_response()
    };
    let Ok(twin) = ruma::OwnedUserId::try_from(user_id) else {
        return not_found();
    };
    match state.provisioner.owner_of_twin(&twin) {
        Some(owner) => {
            axum::Json(crate::protocol::events::Hello::new(owner, twin).agent_card).into_response()
        }
        None => not_found(),
    }
}

/// The appservice API routes (all behind the hs_token check) plus an open `/health` and
/// `/metrics`.
pub fn router(state: AppState) -> Router {
    let authed = Router::new()
        .route(
            "/_matrix/app/v1/transactions/{txn_id}",
            put(transactions::put_transaction),
        )
        .route("/_matrix/app/v1/users/{user_id}", get(query::query_user))
        .route(
            "/_matrix/app/v1/rooms/{alias}",
            get(query::query_room_alias),
        )
        .route("/_matrix/app/v1/ping", post(ping))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_hs_token,
        ));
    Router::new()
        .merge(authed)
        .route("/health", get(health))
        .route("/metrics", get(metrics::get_metrics))
        .route("/agents/{user_id}/agent-card.json", get(agent_card))
        .fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "M_UNRECOGNIZED",
                "unknown endpoint",
            )
        })
        .with_state(state)
        // Every request, its body included, within a bound: a slow or stalled client cannot
        // hold a connection's handler for ever.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

/// Longest time a request may take, reading its body included.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

async fn ping() -> Json<serde_json::Value> {
    Json(serde_json::json!({}))
}

/// `GET /health`: what an admin needs to see at a glance. Database errors are not shown (they
/// can hold paths and names); `doctor` says more.
async fn health(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let store = &state.store;
    let (Ok(backlog), Ok(undecrypted), Ok(problems)) = (
        store.inbox_backlog().await,
        store.undecrypted_count().await,
        store.twin_problems().await,
    ) else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "database unavailable"})),
        )
            .into_response();
    };
    let counter = |read: fn(&crate::metrics::Metrics) -> u64| {
        state.metrics.as_deref().map(read).unwrap_or_default()
    };
    // Events not acted on because they broke a trust rule, by reason.
    let refused: serde_json::Map<String, serde_json::Value> = crate::metrics::RefusedReason::ALL
        .iter()
        .map(|reason| {
            let count = state
                .metrics
                .as_deref()
                .map(|m| m.refused_count(*reason))
                .unwrap_or_default();
            (reason.as_str().to_owned(), count.into())
        })
        .collect();
    let cannot_act: Vec<serde_json::Value> = problems
        .iter()
        .map(|p| {
            serde_json::json!({
                "twin": p.twin_id,
                "problem": p.problem,
                "since_ms": p.since_ms,
            })
        })
        .collect();
    Json(serde_json::json!({
        "status": if cannot_act.is_empty() { "ok" } else { "degraded" },
        "inbox_backlog": backlog,
        "undecrypted_events": undecrypted,
        "encryption_failures": counter(|m| m.encryption_failures.get()),
        "transactions_received": counter(|m| m.transactions_received.get()),
        "twins_open": counter(|m| u64::try_from(m.twins_open.get()).unwrap_or_default()),
        "twins_unable_to_act": cannot_act,
        "events_refused": refused,
    }))
    .into_response()
}

/// Binds `addr`; returns the listener and the address actually bound (port 0 picks one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
