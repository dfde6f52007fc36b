//! One test's world: a real Synapse, the service in-process, a scripted fake model server.
//! Include after `synapse`, `fake_llm`, `human`, `proxy` and `fault_proxy`:
//! `#[path = "support/env.rs"] mod env;`

#![allow(dead_code)]

use std::{path::PathBuf, time::Duration};

use matrix_os::{
    config::{Config, LlmProvider},
    registration::Registration,
    service::{self, RunningService},
};
use matrix_sdk::ruma::OwnedUserId;

use super::{
    fake_llm::FakeLlm,
    fault_proxy::FaultProxy,
    human::Human,
    proxy::TxnProxy,
    synapse::{TestHomeserver, free_port},
};

/// Name of the variable `.cargo/config.toml` sets for tests.
pub const TEST_KEY_ENV: &str = "MATRIX_OS_TEST_LLM_KEY";

/// Knobs for [`TestEnv::start_with`].
pub struct EnvOptions {
    /// `database.url`; `None` is SQLite in the test's temp dir.
    pub database_url: Option<String>,
    /// Which wire protocol the service speaks to the fake model.
    pub provider: LlmProvider,
    /// `llm.max_retries`.
    pub max_retries: u32,
    /// Put a [`TxnProxy`] between the homeserver and the service.
    pub proxy: bool,
    /// Changes to the service's configuration (limits, access defaults).
    pub configure: Option<fn(&mut Config)>,
    /// Start a second homeserver federating with the first (see [`TestEnv::remote_human`]).
    pub federated: bool,
    /// Put a [`FaultProxy`] between the service and the homeserver's client-server API
    /// (`homeserver.url` points at it), to fail chosen requests of the service.
    pub client_proxy: bool,
    /// More appservices on the (first) homeserver, e.g. a stand-in bridge.
    pub extra_registrations: Vec<Registration>,
    /// `[media.transcription]` and `[media.speech]` at the fake's OpenAI audio endpoints.
    pub audio: bool,
}

impl Default for EnvOptions {
    fn default() -> Self {
        Self {
            database_url: None,
            provider: LlmProvider::Openai,
            max_retries: 2,
            proxy: false,
            configure: None,
            federated: false,
            client_proxy: false,
            extra_registrations: Vec::new(),
            audio: false,
        }
    }
}

pub struct TestEnv {
    pub proxy: Option<TxnProxy>,
    pub client_proxy: Option<FaultProxy>,
    pub llm: FakeLlm,
    pub config: Config,
    pub registration: Registration,
    service: Option<RunningService>,
    pub hs: TestHomeserver,
    /// The federating second homeserver, with [`EnvOptions::federated`].
    pub peer: Option<TestHomeserver>,
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        Self::start_with(EnvOptions::default()).await
    }

    pub async fn start_with(options: EnvOptions) -> TestEnv {
        let (pending, peer) = if options.federated {
            let (a, b) = TestHomeserver::reserve_pair();
            (a, Some(b))
        } else {
            (TestHomeserver::reserve(), None)
        };
        let extra = options.extra_registrations.clone();
        let (pending, prepared) = Prepared::new(pending, options).await;
        let registrations: Vec<Registration> = std::iter::once(prepared.registration.clone())
            .chain(extra)
            .collect();
        let (hs, peer) = match peer {
            Some(peer) => {
                let (hs, peer) = tokio::join!(pending.start_with(registrations), peer.start(None));
                (hs, Some(peer))
            }
            None => (pending.start_with(registrations).await, None),
        };
        let mut env = TestEnv {
            proxy: prepared.proxy,
            client_proxy: prepared.client_proxy,
            llm: prepared.llm,
            config: prepared.config,
            registration: prepared.registration,
            service: None,
            hs,
            peer,
        };
        env.start_service().await;
        env
    }

    /// Two worlds whose homeservers federate, each with its own service and fake model.
    pub async fn start_pair(a: EnvOptions, b: EnvOptions) -> (TestEnv, TestEnv) {
        let (pa, pb) = TestHomeserver::reserve_pair();
        let ((pa, a), (pb, b)) = tokio::join!(Prepared::new(pa, a), Prepared::new(pb, b));
        let (hs_a, hs_b) = tokio::join!(
            pa.start(Some(&a.registration)),
            pb.start(Some(&b.registration))
        );
        let make = |p: Prepared, hs: TestHomeserver| TestEnv {
            proxy: p.proxy,
            client_proxy: p.client_proxy,
            llm: p.llm,
            config: p.config,
            registration: p.registration,
            service: None,
            hs,
            peer: None,
        };
        let mut env_a = make(a, hs_a);
        let mut env_b = make(b, hs_b);
        tokio::join!(env_a.start_service(), env_b.start_service());
        (env_a, env_b)
    }

    pub async fn start_service(&mut self) {
        assert!(self.service.is_none(), "service already running");
        let running = service::start(self.config.clone(), self.registration.clone())
            .await
            .expect("service starts");
        self.service = Some(running);
    }

    pub async fn stop_service(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop().await;
        }
    }

    pub fn appservice_url(&self) -> String {
        self.config
            .appservice
            .url
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    pub fn server_name(&self) -> &str {
        self.hs.server_name()
    }

    /// Registers `localpart` on the homeserver and logs in as them.
    pub async fn human(&self, localpart: &str) -> Human {
        let (_user_id, password, _token) = self.hs.register_user(localpart).await;
        Human::login(self.hs.client_url(), localpart, &password).await
    }

    /// Registers `localpart` on the second homeserver and logs in as them.
    pub async fn remote_human(&self, localpart: &str) -> Human {
        let peer = self.peer.as_ref().expect("EnvOptions::federated");
        let (_user_id, password, _token) = peer.register_user(localpart).await;
        Human::login(peer.client_url(), localpart, &password).await
    }

    pub fn twin_of(&self, localpart: &str) -> OwnedUserId {
        format!(
            "@{localpart}{}:{}",
            self.config.appservice.puppet_suffix,
            self.server_name()
        )
        .try_into()
        .expect("twin id")
    }

    /// Writes a file into an owner's home (the twin reads its policy files on every event).
    pub fn write_home_file(&self, localpart: &str, rel: &str, contents: &str) {
        let path = self.home_of(localpart).join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("folder");
        std::fs::write(path, contents).expect("write home file");
    }

    /// The negotiations the twin of `localpart` keeps open, read from its SQLite database.
    pub async fn open_negotiations(
        &self,
        localpart: &str,
    ) -> Vec<matrix_os::storage::NegotiationRow> {
        let url = format!("sqlite://{}", self.sqlite_path().display());
        let store = matrix_os::storage::Store::connect(&url).await.unwrap();
        let rows = store
            .open_negotiations(&self.twin_of(localpart))
            .await
            .unwrap();
        store.close().await;
        rows
    }

    /// The owner's home folder.
    pub fn home_of(&self, localpart: &str) -> PathBuf {
        self.config.home.dir.join(localpart)
    }

    /// Sends a raw transaction to the service as the homeserver would.
    /// The room's events as stored on the homeserver (never decrypted), via the client API.
    pub async fn raw_events(
        &self,
        human: &Human,
        room: &matrix_sdk::Room,
    ) -> Vec<serde_json::Value> {
        let url = format!(
            "{}/_matrix/client/v3/rooms/{}/messages?dir=b&limit=200",
            self.hs.client_url(),
            room.room_id()
                .as_str()
                .replace('!', "%21")
                .replace(':', "%3A")
        );
        let token = human.client.access_token().expect("logged in");
        let body: serde_json::Value = reqwest::Client::new()
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("messages")
            .json()
            .await
            .expect("json");
        body["chunk"].as_array().cloned().unwrap_or_default()
    }

    /// `GET /metrics`, parsed as Prometheus text (a parse failure fails the test).
    pub async fn metrics(&self) -> prometheus_parse::Scrape {
        let text = reqwest::get(format!("{}/metrics", self.appservice_url()))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("metrics parse as Prometheus text")
    }

    /// The value of a metric (summed over its labels; a histogram's count), 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        metric_value(&self.metrics().await, name)
    }

    /// The database file of the service (SQLite only).
    pub fn sqlite_path(&self) -> PathBuf {
        let url = &self.config.database.url;
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .expect("an SQLite database");
        PathBuf::from(path.split('?').next().unwrap_or(path))
    }

    pub async fn put_transaction(
        &self,
        txn_id: &str,
        body: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .put(format!(
                "{}/_matrix/app/v1/transactions/{txn_id}",
                self.appservice_url()
            ))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .timeout(Duration::from_secs(10));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("appservice answers")
    }
}

/// The value of `name` in `scrape` (summed over labels; a histogram's sample count).
pub fn metric_value(scrape: &prometheus_parse::Scrape, name: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.last().map(|b| b.count).unwrap_or_default()
            }
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // The runtime is going away; the service's tasks die with it.
        self.service.take();
    }
}

/// Everything of a world before its homeserver starts.
struct Prepared {
    proxy: Option<TxnProxy>,
    client_proxy: Option<FaultProxy>,
    llm: FakeLlm,
    config: Config,
    registration: Registration,
}

impl Prepared {
    async fn new(
        pending: super::synapse::PendingHomeserver,
        options: EnvOptions,
    ) -> (super::synapse::PendingHomeserver, Prepared) {
        // `RUST_LOG=matrix_os=debug cargo test ...` shows the service's logs for a failing test.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let llm = FakeLlm::start().await;
        let port = free_port();
        // With a proxy, the homeserver talks to the proxy, which forwards to the service.
        let (proxy, public_port) = if options.proxy {
            let public = free_port();
            let proxy = TxnProxy::start(public, format!("http://127.0.0.1:{port}")).await;
            (Some(proxy), public)
        } else {
            (None, port)
        };
        let mut config = pending.appservice_config(&format!("http://127.0.0.1:{public_port}"));
        config.appservice.listen = ([127, 0, 0, 1], port).into();
        // With a client proxy, the service talks to the proxy, which forwards to the homeserver.
        let client_proxy = if options.client_proxy {
            let proxy = FaultProxy::start(free_port(), pending.client_url()).await;
            config.homeserver.url = proxy.url.parse().expect("proxy URL");
            Some(proxy)
        } else {
            None
        };
        if let Some(url) = options.database_url {
            config.database.url = url;
        }
        config.llm.provider = options.provider;
        config.llm.base_url = Some(
            match options.provider {
                LlmProvider::Anthropic => llm.anthropic_base(),
                _ => llm.openai_base(),
            }
            .parse()
            .expect("fake LLM URL"),
        );
        config.llm.model = "fake-model".into();
        config.llm.api_key_env = TEST_KEY_ENV.into();
        config.llm.max_retries = options.max_retries;
        config.llm.timeout_secs = 10;
        if options.audio {
            let base: url::Url = llm.openai_base().parse().expect("fake LLM URL");
            config.media.transcription = Some(
                toml::from_str(&format!(
                    "base_url = \"{base}\"\napi_key_env = \"{TEST_KEY_ENV}\""
                ))
                .expect("transcription config"),
            );
            config.media.speech = Some(
                toml::from_str(&format!(
                    "base_url = \"{base}\"\napi_key_env = \"{TEST_KEY_ENV}\""
                ))
                .expect("speech config"),
            );
        }
        if let Some(configure) = options.configure {
            configure(&mut config);
        }
        let registration = Registration::generate(&config);
        registration
            .write(&config.appservice.registration, true)
            .expect("registration");
        (
            pending,
            Prepared {
                proxy,
                client_proxy,
                llm,
                config,
                registration,
            },
        )
    }
}
