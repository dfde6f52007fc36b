//! `GET /metrics`: the service's [`Metrics`](crate::metrics::Metrics) in the Prometheus text
//! format, open like `/health` (it holds counts only, no IDs); 404 when the service runs
//! without metrics.

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};

use super::{AppState, error::ApiError};
use crate::metrics::{CONTENT_TYPE, Metrics};

pub(crate) async fn get_metrics(State(state): State<AppState>) -> Response {
    let Some(metrics) = state.metrics.as_deref() else {
        return ApiError::not_found("metrics are not enabled").into_response();
    };
    if let Err(err) = set_store_gauges(&state, metrics).await {
        tracing::warn!(%err, "cannot read the inbox for /metrics");
        return ApiError::internal("database unavailable").into_response();
    }
    metrics.refresh();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response()
}

/// The gauges whose state is in the database: inbox depth and age, undecryptable events,
/// twins that cannot act.
async fn set_store_gauges(
    state: &AppState,
    metrics: &Metrics,
) -> Result<(), crate::storage::StorageError> {
    metrics.inbox_depth.set(state.store.inbox_backlog().await?);
    let oldest = state.store.inbox_oldest_pending_age().await?;
    metrics
        .inbox_oldest_pending_seconds
        .set(oldest.map_or(0.0, |age| age.as_secs_f64()));
    metrics
        .undecryptable_events_waiting
        .set(state.store.undecrypted_count().await?);
    let unable = state.store.twin_problems().await?.len();
    metrics
        .twins_unable_to_act
        .set(i64::try_from(unable).unwrap_or(i64::MAX));
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{appservice::Provisioner, secret::Secret, storage::Store};

    struct NoUsers;

    #[async_trait::async_trait]
    impl Provisioner for NoUsers {
        async fn provision(&self, _user_id: &ruma::UserId) -> anyhow::Result<bool> {
            Ok(false)
        }
    }

    const HS_TOKEN: &str = "hs-token";

    async fn serve(store: Store, metrics: Option<Arc<Metrics>>) -> String {
        let mut state = AppState::new(
            Secret::new(HS_TOKEN),
            store,
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(NoUsers),
            1 << 20,
        );
        if let Some(metrics) = metrics {
            state = state.with_metrics(metrics);
        }
        let (listener, addr) = crate::appservice::bind(([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, crate::appservice::router(state)).await;
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn metrics_are_open_and_count_stored_transactions() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        metrics.set_refresh(|m| m.twins_open.set(2));
        let base = serve(store, Some(metrics.clone())).await;
        let http = reqwest::Client::new();
        let body = r#"{"events":[{"type":"m.room.message","event_id":"$a"},{"type":"x","event_id":"$b"}]}"#;
        for _ in 0..2 {
            // The second time is a repeat: acknowledged, not counted again.
            let answer = http
                .put(format!("{base}/_matrix/app/v1/transactions/1"))
                .bearer_auth(HS_TOKEN)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
        }

        let answer = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(answer.status(), 200, "no token needed");
        assert_eq!(
            answer.headers()[reqwest::header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = answer.text().await.unwrap();
        for line in [
            "matrixos_transactions_received_total 1",
            "matrixos_events_received_total 2",
            "matrixos_ack_duration_seconds_count 2",
            "matrixos_inbox_depth 2",
            "matrixos_undecryptable_events_waiting 0",
            "matrixos_twins_open 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with("matrixos_inbox_oldest_pending_seconds ")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn without_metrics_the_route_is_not_found() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let base = serve(store, None).await;
        let answer = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(answer.status(), 404);
    }
}
