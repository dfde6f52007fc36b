//! hs_token check on every request from the homeserver.

use axum::{
    extract::{Request, State},
    http::header::AUTHORIZATION,
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{AppState, error::ApiError};

/// Rejects requests without the right `Authorization: Bearer <hs_token>`: 401 when missing,
/// 403 when wrong. The comparison takes the same time wherever the tokens differ.
pub(crate) async fn require_hs_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        None => ApiError::unauthorized().into_response(),
        Some(token) if !state.hs_token.constant_time_eq(token) => {
            tracing::warn!("request with a wrong hs_token refused");
            ApiError::forbidden().into_response()
        }
        Some(_) => next.run(request).await,
    }
}
