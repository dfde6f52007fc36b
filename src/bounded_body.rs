//! Reading HTTP response bodies with a size bound, so a broken or hostile server (a model
//! provider, a homeserver) cannot make the service buffer an unbounded answer.

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is longer than the bound.
    #[error("the answer is larger than {max} bytes")]
    TooLarge {
        /// The bound, in bytes.
        max: usize,
    },
    /// Reading failed (connection, timeout).
    #[error(transparent)]
    Read(#[from] reqwest::Error),
}

/// Reads `response`'s body, failing as soon as it passes `max` bytes (or announces more).
pub async fn read(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > max))
    {
        return Err(BodyError::TooLarge { max });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge { max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Serves `body` once per connection, chunked (no length announced) when `chunked`.
    async fn serve(body: Vec<u8>, chunked: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || {
                let body = body.clone();
                async move {
                    if chunked {
                        let stream = futures::stream::iter(
                            body.chunks(1024)
                                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                                .collect::<Vec<_>>(),
                        );
                        axum::body::Body::from_stream(stream)
                    } else {
                        axum::body::Body::from(body)
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn bodies_past_the_bound_are_refused_announced_or_not() {
        for chunked in [false, true] {
            let url = serve(vec![b'x'; 10_000], chunked).await;
            let small = read(reqwest::get(&url).await.unwrap(), 10_000)
                .await
                .unwrap();
            assert_eq!(small.len(), 10_000);
            let err = read(reqwest::get(&url).await.unwrap(), 9_999)
                .await
                .unwrap_err();
            assert!(matches!(err, BodyError::TooLarge { max: 9_999 }), "{err}");
        }
    }
}
