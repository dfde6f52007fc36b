//! `GET /users/{userId}` and `GET /rooms/{alias}`.

use axum::{
    Json,
    extract::{Path, State},
};
use ruma::UserId;

use super::{AppState, error::ApiError};

pub(crate) async fn query_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user_id = UserId::parse(&user_id)
        .map_err(|_| ApiError::not_found(format!("{user_id} is not a user ID")))?;
    match state.provisioner.provision(&user_id).await {
        Ok(true) => Ok(Json(serde_json::json!({}))),
        Ok(false) => Err(ApiError::not_found(format!("{user_id} has no twin here"))),
        Err(err) => {
            tracing::error!(%user_id, "provisioning failed: {err:#}");
            Err(ApiError::internal("could not create the twin right now"))
        }
    }
}

pub(crate) async fn query_room_alias(Path(alias): Path<String>) -> ApiError {
    ApiError::not_found(format!("no room alias {alias} here"))
}
