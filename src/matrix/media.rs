//! The content repository, as a twin: authenticated downloads (`/_matrix/client/v1/media/
//! download`) with a size bound, and uploads.

use std::time::Duration;

use ruma::{
    MxcUri, OwnedMxcUri, UserId,
    api::client::{authenticated_media::get_content, media::create_content},
};

use super::{MatrixClient, MatrixError, RetryPolicy};

/// Attempts of a download whose failure may pass (rate limits, server errors, network).
const DOWNLOAD_ATTEMPTS: u32 = 3;

/// A file fetched from the content repository.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// Its bytes, as stored (still encrypted for an encrypted attachment).
    pub bytes: Vec<u8>,
    /// The `Content-Type` the homeserver gave.
    pub content_type: Option<String>,
}

impl MatrixClient {
    /// Downloads `uri` as `twin`, reading at most `max_bytes` ([`MatrixError::TooLarge`]
    /// beyond). Passing failures are tried again a few times.
    pub async fn download_media(
        &self,
        twin: &UserId,
        uri: &MxcUri,
        max_bytes: usize,
    ) -> Result<Downloaded, MatrixError> {
        let request = get_content::v1::Request::from_uri(uri)
            .map_err(|e| MatrixError::Protocol(format!("not a media address ({uri}): {e}")))?;
        let mut attempt = 0;
        loop {
            match self
                .send_bounded(request.clone(), Some(twin), None, max_bytes)
                .await
            {
                Ok(response) => {
                    return Ok(Downloaded {
                        bytes: response.file,
                        content_type: response.content_type,
                    });
                }
                Err(err) if err.is_transient() && attempt + 1 < DOWNLOAD_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(%err, attempt, "media download failed, retrying");
                    tokio::time::sleep(Duration::from_millis(300 << attempt)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Uploads `bytes` as `twin`; the answer is the content's `mxc://` address.
    pub async fn upload_media(
        &self,
        twin: &UserId,
        bytes: Vec<u8>,
        content_type: &str,
        file_name: Option<&str>,
    ) -> Result<OwnedMxcUri, MatrixError> {
        let mut request = create_content::v3::Request::new(bytes);
        request.content_type = Some(content_type.to_owned());
        request.filename = file_name.map(str::to_owned);
        let response = self
            .send_with(request, Some(twin), RetryPolicy::default())
            .await?;
        Ok(response.content_uri)
    }
}
