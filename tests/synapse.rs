//! The local-Synapse harness against a real Synapse: appservice registration loaded, accounts,
//! restarts, federation between two homeservers, and `matrix-os dev`'s set-up run twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/synapse.rs"]
mod synapse;

use matrix_os::{
    config::Config,
    devenv::{DevError, DevOptions, prepare_dev, register_user},
    registration::Registration,
};
use serde_json::{Value, json};
use synapse::{TestHomeserver, free_port, venv_dir};

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post(url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http().post(url).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn login(client_url: &str, user_id: &str, password: &str) -> (u16, Value) {
    post(
        &format!("{client_url}/_matrix/client/v3/login"),
        None,
        json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
        }),
    )
    .await
}

#[tokio::test]
async fn appservice_registration_is_loaded_and_data_survives_a_restart() {
    let pending = TestHomeserver::reserve();
    let config = pending.appservice_config(&format!("http://127.0.0.1:{}", free_port()));
    let registration = Registration::generate(&config);
    let mut hs = pending.start(Some(&registration)).await;
    eprintln!("Synapse answered after {:?}", hs.synapse().startup_time());
    let register_url = format!("{}/_matrix/client/v3/register", hs.client_url());

    let (bob, bob_password, bob_token) = hs.register_user("bob").await;
    assert_eq!(bob, format!("@bob:{}", hs.server_name()));
    assert!(!bob_token.is_empty());

    // The appservice may create a puppet in its namespace...
    let (status, body) = post(
        &register_url,
        Some(registration.as_token.expose()),
        json!({"type": "m.login.application_service", "username": "alice_ai", "inhibit_login": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], format!("@alice_ai:{}", hs.server_name()));

    // ...and nobody else may.
    let (status, body) = post(
        &register_url,
        None,
        json!({"username": "bob_ai", "password": "a long password", "auth": {"type": "m.login.dummy"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errcode"], "M_EXCLUSIVE", "{body}");

    // A taken name is reported as such.
    let err = register_user(hs.client_url(), hs.shared_secret(), "bob", "pw", false)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DevError::UserTaken { localpart } if localpart == "bob"),
        "{err}"
    );
    // A wrong shared secret is refused.
    let err = register_user(hs.client_url(), "wrong", "carol", "pw", false)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DevError::Matrix { status: 403, .. }),
        "{err}"
    );

    // Stop and start on the same data: bob can still log in.
    let stopping = std::time::Instant::now();
    hs.stop().await;
    eprintln!("Synapse stopped after {:?}", stopping.elapsed());
    assert!(!hs.synapse().is_running());
    hs.start_again().await;
    let (status, body) = login(hs.client_url(), &bob, &bob_password).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn two_homeservers_federate_on_loopback() {
    let (a, b) = TestHomeserver::reserve_pair();
    let (a, b) = tokio::join!(a.start(None), b.start(None));
    let (_alice, _, alice_token) = a.register_user("alice").await;
    let (bob, _, _) = b.register_user("bob").await;
    // A profile query for a remote user goes over federation (signed request, key fetch).
    let resp = http()
        .get(format!(
            "{}/_matrix/client/v3/profile/{bob}",
            a.client_url()
        ))
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["displayname"], "bob", "{body}");
}

#[tokio::test]
async fn prepare_dev_twice_reuses_owner_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DevOptions {
        client_port: free_port(),
        appservice_port: free_port(),
        venv: Some(venv_dir()),
        ..DevOptions::default()
    };

    let mut first = prepare_dev(dir.path(), opts.clone())
        .await
        .expect("first prepare_dev");
    eprintln!("{}", matrix_os::devenv::connect_instructions(&first));
    assert_eq!(first.owner_user_id, "@owner:localhost");
    assert_eq!(first.twin_user_id, "@owner_ai:localhost");
    let config = Config::load(&first.config_path).expect("dev config loads");
    assert_eq!(config.homeserver.server_name, "localhost");
    let registration = Registration::read_for(&config).expect("registration matches config");
    let (status, body) = login(
        &first.client_url,
        &first.owner_user_id,
        &first.owner_password,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("owner.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    first.synapse.stop().await;

    let mut second = prepare_dev(dir.path(), opts)
        .await
        .expect("second prepare_dev");
    assert_eq!(second.owner_user_id, first.owner_user_id);
    assert_eq!(second.owner_password, first.owner_password);
    assert_eq!(second.config_path, first.config_path);
    let again = Registration::read(&second.registration_path).unwrap();
    assert_eq!(again.as_token, registration.as_token);
    assert_eq!(again.hs_token, registration.hs_token);
    let (status, body) = login(
        &second.client_url,
        &second.owner_user_id,
        &second.owner_password,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The appservice registration is loaded: its namespace is exclusive.
    let (status, body) = post(
        &format!("{}/_matrix/client/v3/register", second.client_url),
        None,
        json!({"username": "owner_ai", "password": "a long password", "auth": {"type": "m.login.dummy"}}),
    )
    .await;
    assert_eq!(
        (status, body["errcode"].as_str()),
        (400, Some("M_EXCLUSIVE")),
        "{body}"
    );
    second.synapse.stop().await;
}
