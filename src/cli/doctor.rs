//! `matrix-os doctor`: one line per check, with what to do when it fails.

use std::{future::Future, path::Path, process::ExitCode, sync::Arc, time::Duration};

use async_trait::async_trait;
use ruma::UserId;
use tokio::sync::Notify;

use super::{EXIT_CONFIG, load_config};
use crate::{
    appservice::{self, AppState, Provisioner},
    config::Config,
    kernel::Kernel,
    matrix::MatrixClient,
    registration::Registration,
    service::{PingVerdict, diagnose},
    storage::Store,
};

struct Report {
    failures: usize,
}

impl Report {
    fn ok(&self, name: &str, detail: impl std::fmt::Display) {
        println!("✓ {name}: {detail}");
    }

    fn fail(&mut self, name: &str, problem: impl std::fmt::Display) {
        self.failures += 1;
        println!("✗ {name}: {problem}");
    }
}

/// Answers user queries with "not ours" while doctor stands in for a stopped service.
struct NoProvisioning;

#[async_trait]
impl Provisioner for NoProvisioning {
    async fn provision(&self, _user_id: &UserId) -> anyhow::Result<bool> {
        Ok(false)
    }
}

async fn with_timeout<T>(future: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .ok()
}

pub(super) async fn run(config_path: &Path) -> ExitCode {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let mut report = Report { failures: 0 };
    report.ok("config", format!("{} is valid", config_path.display()));

    let registration = match Registration::read_for(&config) {
        Ok(registration) => {
            report.ok("registration", config.appservice.registration.display());
            registration
        }
        Err(err) => {
            report.fail(
                "registration",
                format!("{err} -> run `matrix-os generate-registration`"),
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };

    let store = match with_timeout(Store::connect(&config.database.url)).await {
        Some(Ok(store)) => match store.ping().await {
            Ok(()) => {
                let backlog = store.inbox_backlog().await.unwrap_or(-1);
                report.ok(
                    "database",
                    format!(
                        "{:?}, migrations applied, {backlog} event(s) waiting in the inbox",
                        store.backend()
                    ),
                );
                Some(store)
            }
            Err(err) => {
                report.fail("database", format!("{err} -> check database.url"));
                None
            }
        },
        Some(Err(err)) => {
            report.fail("database", format!("{err} -> check database.url"));
            None
        }
        None => {
            report.fail(
                "database",
                "timed out -> check database.url and that the server is up",
            );
            None
        }
    };

    if let Some(store) = &store {
        check_twins(store, &mut report).await;
    }
    check_encryption_registration(&registration, &mut report);
    check_homeserver(&config, &registration, store, &mut report).await;
    check_llm(&config, &mut report).await;

    if report.failures == 0 {
        println!("All checks passed.");
        ExitCode::SUCCESS
    } else {
        println!("{} check(s) failed.", report.failures);
        ExitCode::FAILURE
    }
}

/// Twins that cannot act (with what the homeserver said) and events waiting for room keys.
async fn check_twins(store: &Store, report: &mut Report) {
    match store.undecrypted_count().await {
        Ok(0) => report.ok("room keys", "no event is waiting for its room key"),
        Ok(waiting) => report.ok(
            "room keys",
            format!(
                "{waiting} encrypted event(s) waiting for their room key (kept until it comes, \
                 or given up after encryption.undecryptable_expiry_secs)"
            ),
        ),
        Err(err) => report.fail("room keys", err),
    }
    match store.twin_problems().await {
        Ok(problems) if problems.is_empty() => report.ok("twins", "every twin can act"),
        Ok(problems) => {
            for problem in problems {
                report.fail(
                    &format!("twin {}", problem.twin_id),
                    format!(
                        "cannot act: {} -> see the service's log; it tries again when the \
                         twin next has work",
                        problem.problem
                    ),
                );
            }
        }
        Err(err) => report.fail("twins", err),
    }
}

async fn check_homeserver(
    config: &Config,
    registration: &Registration,
    store: Option<Store>,
    report: &mut Report,
) {
    let versions_url = format!(
        "{}/_matrix/client/versions",
        config.homeserver.url.as_str().trim_end_matches('/')
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build();
    let reachable = match http {
        Ok(http) => http.get(&versions_url).send().await,
        Err(err) => {
            report.fail("homeserver", err);
            return;
        }
    };
    match reachable {
        Ok(response) if response.status().is_success() => {
            report.ok("homeserver", format!("{} answers", config.homeserver.url))
        }
        Ok(response) => {
            report.fail(
                "homeserver",
                format!(
                    "{versions_url} answered {} -> is homeserver.url the client-server API?",
                    response.status()
                ),
            );
            return;
        }
        Err(err) => {
            report.fail("homeserver", format!("cannot reach {versions_url}: {err} -> check homeserver.url and that the homeserver runs"));
            return;
        }
    }

    let matrix = match MatrixClient::new(
        config.homeserver.url.as_str(),
        registration.as_token.clone(),
        Duration::from_secs(15),
    ) {
        Ok(matrix) => matrix,
        Err(err) => {
            report.fail("homeserver", err);
            return;
        }
    };
    match matrix.whoami().await {
        Ok(user) => report.ok(
            "as_token",
            format!("the homeserver knows the appservice as {user}"),
        ),
        Err(err) => report.fail(
            "as_token",
            format!(
                "{err} -> add {} to app_service_config_files and restart the homeserver",
                config.appservice.registration.display()
            ),
        ),
    }

    // When the service is not running, stand in for it so the ping can still test both ways.
    let stand_in = match (store, appservice::bind(config.appservice.listen).await) {
        (Some(store), Ok((listener, _))) => {
            let state = AppState::new(
                registration.hs_token.clone(),
                store,
                Arc::new(Notify::new()),
                Arc::new(NoProvisioning),
                1024 * 1024,
            );
            Some(tokio::spawn(async move {
                let _ = axum::serve(listener, appservice::router(state)).await;
            }))
        }
        _ => None,
    };
    match diagnose(matrix.ping_appservice(&config.appservice.id).await, config) {
        PingVerdict::Ok(duration) => report.ok(
            "ping",
            format!(
                "the homeserver reached {} and back in {} ms{}",
                config.appservice.url,
                duration.as_millis(),
                if stand_in.is_some() {
                    " (doctor answered for the stopped service)"
                } else {
                    ""
                }
            ),
        ),
        PingVerdict::Unsupported => {
            report.ok("ping", "the homeserver has no ping endpoint; skipped")
        }
        PingVerdict::Problem(problem) => report.fail("ping", problem),
    }
    match stand_in {
        Some(task) => task.abort(),
        None => check_running_service(config, report).await,
    }
}

/// What end-to-end encryption needs from the registration (and so from the homeserver).
fn check_encryption_registration(registration: &Registration, report: &mut Report) {
    let mut missing = Vec::new();
    if !registration.receive_ephemeral {
        missing.push("receive_ephemeral: true");
    }
    if !registration.msc3202 {
        missing.push("org.matrix.msc3202: true");
    }
    if !registration.msc4190 {
        missing.push("io.element.msc4190: true");
    }
    if missing.is_empty() {
        report.ok(
            "encryption",
            "the registration asks for to-device messages, key counts and device management; \
             homeserver.yaml must also have experimental_features \
             msc2409_to_device_messages_enabled and msc3202_transaction_extensions set to true",
        );
    } else {
        report.fail(
            "encryption",
            format!(
                "twins cannot use encrypted rooms: the registration lacks {} -> add them (or \
                 regenerate it with `matrix-os generate-registration --force`) and restart the homeserver",
                missing.join(", ")
            ),
        );
    }
}

/// What the running service reports about encryption, when it runs.
async fn check_running_service(config: &Config, report: &mut Report) {
    let url = format!(
        "{}/health",
        config.appservice.url.as_str().trim_end_matches('/')
    );
    let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(5), reqwest::get(&url)).await
    else {
        return;
    };
    let Ok(health) = response.json::<serde_json::Value>().await else {
        return;
    };
    let number = |key: &str| {
        health
            .get(key)
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
    };
    let (waiting, failures, with_keys) = (
        number("undecrypted_events"),
        number("encryption_failures"),
        number("transactions_with_encryption_data"),
    );
    let detail = format!(
        "{waiting} event(s) waiting for room keys, {failures} message(s) not sent because encryption \
         failed, {with_keys} transaction(s) with encryption data since start"
    );
    if failures > 0 || waiting > 0 {
        report.fail("service", format!("{detail} -> see the service log"));
    } else if with_keys == 0 {
        report.ok(
            "service",
            format!(
                "{detail}; if twins are in encrypted rooms and this stays 0, the homeserver does not send \
                 to-device messages: enable msc2409_to_device_messages_enabled and \
                 msc3202_transaction_extensions in homeserver.yaml"
            ),
        );
    } else {
        report.ok("service", detail);
    }
}

async fn check_llm(config: &Config, report: &mut Report) {
    let kernel = match Kernel::from_config(&config.llm) {
        Ok(kernel) => kernel,
        Err(err) => {
            report.fail("llm", err);
            return;
        }
    };
    if config.llm.provider == crate::config::LlmProvider::None {
        report.ok(
            "llm",
            "llm.provider is \"none\": twins answer with a notice instead of thinking",
        );
        return;
    }
    if !kernel.is_configured() {
        report.fail(
            "llm",
            format!(
                "{} -> set the key in that variable (or ANTHROPIC_API_KEY / OPENAI_API_KEY with `matrix-os dev`), \
                 or set llm.provider = \"none\" to run without a model on purpose",
                kernel.describe()
            ),
        );
        return;
    }
    match with_timeout(kernel.check_endpoint()).await {
        Some(Ok(detail)) => report.ok("llm", format!("{}: {detail}", kernel.describe())),
        Some(Err(err)) => report.fail("llm", format!("{}: {err}", kernel.describe())),
        None => report.fail(
            "llm",
            format!(
                "{}: no answer in 20 s -> check llm.base_url",
                kernel.describe()
            ),
        ),
    }
}
