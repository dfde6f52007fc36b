//! The twin shows as typing while a turn runs.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::matrix::MatrixClient;

/// Typing notices last this long and are refreshed before they run out.
const TYPING_TIMEOUT: Duration = Duration::from_secs(30);
const TYPING_REFRESH: Duration = Duration::from_secs(20);

/// Shows the twin typing until the returned sender fires (or is dropped).
pub(crate) fn spawn_typing(
    matrix: MatrixClient,
    twin: ruma::OwnedUserId,
    room: ruma::OwnedRoomId,
) -> oneshot::Sender<()> {
    let (tx, mut rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            if let Err(err) = matrix.set_typing(&twin, &room, Some(TYPING_TIMEOUT)).await {
                tracing::debug!(%err, "typing notice failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(TYPING_REFRESH) => {}
                _ = &mut rx => return,
            }
        }
    });
    tx
}
