//! Creating accounts through Synapse's shared-secret admin registration API.

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha1::Sha1;

use super::DevError;
use crate::secret::Secret;

/// An account made by [`register_user`].
#[derive(Debug, Clone)]
pub struct RegisteredUser {
    /// The full user ID, e.g. `@owner:localhost`.
    pub user_id: String,
    /// An access token of a fresh device of the user.
    pub access_token: Secret,
}

/// The MAC Synapse expects from `/_synapse/admin/v1/register`: hex HMAC-SHA1 keyed with the
/// shared secret over `nonce\0user\0password\0admin|notadmin`.
pub fn registration_mac(
    shared_secret: &str,
    nonce: &str,
    localpart: &str,
    password: &str,
    admin: bool,
) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(shared_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(nonce.as_bytes());
    mac.update(b"\x00");
    mac.update(localpart.as_bytes());
    mac.update(b"\x00");
    mac.update(password.as_bytes());
    mac.update(b"\x00");
    mac.update(if admin { b"admin" } else { b"notadmin" });
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Deserialize)]
struct Nonce {
    nonce: String,
}

#[derive(Deserialize)]
struct Registered {
    user_id: String,
    access_token: String,
}

#[derive(Deserialize, Default)]
struct MatrixError {
    #[serde(default)]
    errcode: String,
    #[serde(default)]
    error: String,
}

/// Registers `localpart` with `password` via `/_synapse/admin/v1/register` (the homeserver's
/// `registration_shared_secret`), as a server admin if `admin`.
///
/// An existing user ID gives [`DevError::UserTaken`].
pub async fn register_user(
    client_url: &str,
    shared_secret: &str,
    localpart: &str,
    password: &str,
    admin: bool,
) -> Result<RegisteredUser, DevError> {
    let url = format!(
        "{}/_synapse/admin/v1/register",
        client_url.trim_end_matches('/')
    );
    let http_err = |what: &str| {
        let what = what.to_string();
        move |e: reqwest::Error| DevError::Http {
            what,
            message: e.to_string(),
        }
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .no_proxy()
        .build()
        .map_err(http_err("HTTP client"))?;
    let what = format!("GET {url}");
    let resp = http.get(&url).send().await.map_err(http_err(&what))?;
    let nonce: Nonce = check(resp, &what)
        .await?
        .json()
        .await
        .map_err(http_err(&what))?;
    let body = serde_json::json!({
        "nonce": nonce.nonce,
        "username": localpart,
        "password": password,
        "admin": admin,
        "mac": registration_mac(shared_secret, &nonce.nonce, localpart, password, admin),
    });
    let what = format!("registering {localpart:?} at {url}");
    let resp = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(http_err(&what))?;
    let status = resp.status();
    if !status.is_success() {
        let err: MatrixError = resp.json().await.unwrap_or_default();
        if err.errcode == "M_USER_IN_USE" {
            return Err(DevError::UserTaken {
                localpart: localpart.to_string(),
            });
        }
        return Err(DevError::Matrix {
            what,
            status: status.as_u16(),
            errcode: err.errcode,
            error: err.error,
        });
    }
    let registered: Registered = resp.json().await.map_err(http_err(&what))?;
    Ok(RegisteredUser {
        user_id: registered.user_id,
        access_token: Secret::new(registered.access_token),
    })
}

/// Turns a non-2xx response into [`DevError::Matrix`].
async fn check(resp: reqwest::Response, what: &str) -> Result<reqwest::Response, DevError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let err: MatrixError = resp.json().await.unwrap_or_default();
    Err(DevError::Matrix {
        what: what.to_string(),
        status: status.as_u16(),
        errcode: err.errcode,
        error: err.error,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mac_matches_python_hmac() {
        // Computed independently with Python:
        // hmac.new(b"shared-secret", b"abcdef\x00alice\x00p4ss word\x00notadmin",
        //          hashlib.sha1).hexdigest()
        assert_eq!(
            registration_mac("shared-secret", "abcdef", "alice", "p4ss word", false),
            "a31b2a746a9d53ef7588b62f0244ea4626ac380c"
        );
        assert_eq!(
            registration_mac("shared-secret", "abcdef", "alice", "p4ss word", true),
            "904769ff23bdc504e3190ebc00f00994e2ee7659"
        );
    }
}
