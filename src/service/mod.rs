//! Wires the parts into a running service: store, appservice API, inbox dispatcher, ping.

mod ping;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};

pub use self::ping::{PingVerdict, diagnose, ping_until_ok};
use crate::{
    appservice::{self, AppState},
    bridge::Bridges,
    budget::BudgetKeeper,
    config::Config,
    crypto::{self, Crypto},
    kernel::Kernel,
    matrix::{MatrixClient, TwinNaming},
    metrics::Metrics,
    negotiator::Negotiator,
    outbox::Outbox,
    pipeline::{Pipeline, PipelineParts},
    registration::Registration,
    room::{CommandRunner, Pairing, RoomSession, SessionParts, limits::Limits},
    storage::Store,
    turns::TurnRunner,
    twin::Twins,
};

/// Timeout of one client-server request.
const MATRIX_TIMEOUT: Duration = Duration::from_secs(30);

/// A started service; [`RunningService::stop`] shuts it down.
#[derive(Debug)]
pub struct RunningService {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    store: Store,
}

impl RunningService {
    /// The address the appservice API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store (for health checks and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops accepting requests, abandons running turns (their events stay in the inbox and are
    /// handled on the next start) and closes the database.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("a task did not stop in time; aborting it");
                abort.abort();
            }
        }
        self.store.close().await;
    }
}

/// How long processed transaction ids are kept: the homeserver only repeats a transaction
/// until it is acknowledged, so a week is far more than enough.
const KEEP_TRANSACTION_IDS: Duration = Duration::from_secs(7 * 24 * 3600);

async fn prune_old_records(store: Store, mut shutdown: watch::Receiver<bool>) {
    loop {
        match store.prune_transactions(KEEP_TRANSACTION_IDS).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "forgot old transaction ids"),
            Err(err) => tracing::warn!(%err, "could not prune old transaction ids"),
        }
        match store.prune_turns(KEEP_TRANSACTION_IDS).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "forgot old turn records"),
            Err(err) => tracing::warn!(%err, "could not prune old turn records"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(6 * 3600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Starts the service: database and migrations, appservice API, the event pipeline (handling
/// whatever an earlier run left), and the start-up ping.
pub async fn start(config: Config, registration: Registration) -> anyhow::Result<RunningService> {
    let store = Store::connect(&config.database.url)
        .await
        .with_context(|| "cannot open the database (database.url)")?;
    crate::installation::check(&store, &config.encryption.store_dir).await?;
    let metrics = Arc::new(Metrics::new().context("metrics")?);
    let matrix = MatrixClient::new(
        config.homeserver.url.as_str(),
        registration.as_token.clone(),
        MATRIX_TIMEOUT,
    )?;
    let kernel = Arc::new(Kernel::from_config(&config.llm)?.with_metrics(metrics.clone()));
    tracing::info!(model = %kernel.describe(), "kernel ready");
    let passphrase = crypto::load_or_create_passphrase(
        &config.encryption.store_dir,
        &config.encryption.passphrase,
    )
    .context("encryption.store_dir")?;
    let crypto = Arc::new(Crypto::new(
        matrix.clone(),
        &config.encryption.store_dir,
        passphrase,
        store.clone(),
        metrics.clone(),
    ));
    let naming = TwinNaming::new(
        &config.appservice.puppet_suffix,
        &config.homeserver.server_name,
    );
    let bridges = Arc::new(Bridges::new(&config.bridges).context("bridges")?);
    let twins = Arc::new(
        Twins::new(
            naming,
            &config.owner_globs(),
            store.clone(),
            matrix.clone(),
            crypto.clone(),
            metrics.clone(),
            &config.home.dir,
            config.home.template.as_deref(),
            config.twins.provision_workers,
        )
        .context("access.owners")?
        .excluding(bridges.clone()),
    );
    let outbox = Arc::new(Outbox::new(
        store.clone(),
        matrix.clone(),
        crypto.clone(),
        metrics.clone(),
    ));
    let budgets = Arc::new(BudgetKeeper::new(
        store.clone(),
        config.llm.default_budget(),
    ));
    let negotiator = Arc::new(Negotiator::new(
        store.clone(),
        twins.clone(),
        kernel.clone(),
        outbox.clone(),
        budgets.clone(),
        config.access.clone(),
    ));
    let limits = Arc::new(Limits::new(&config.limits, &config.homeserver.server_name));
    let turns = Arc::new(TurnRunner::new(
        store.clone(),
        matrix.clone(),
        twins.clone(),
        kernel.clone(),
        outbox.clone(),
        negotiator.clone(),
        limits.clone(),
        metrics.clone(),
        budgets.clone(),
        &config,
    ));
    let pairing = Arc::new(Pairing::new(
        store.clone(),
        matrix.clone(),
        outbox.clone(),
        limits.clone(),
        turns.clone(),
    ));
    let commands = Arc::new(
        CommandRunner::new(
            store.clone(),
            matrix.clone(),
            twins.clone(),
            kernel,
            crypto.clone(),
            outbox.clone(),
            negotiator.clone(),
            pairing.clone(),
            limits,
            budgets,
            config.access.clone(),
        )
        .with_speech(config.media.speech.is_some()),
    );
    let session = Arc::new(RoomSession::new(SessionParts {
        store: store.clone(),
        matrix: matrix.clone(),
        twins: twins.clone(),
        crypto: crypto.clone(),
        turns,
        commands,
        pairing,
        negotiator: negotiator.clone(),
        outbox: outbox.clone(),
        metrics: metrics.clone(),
        access_defaults: config.access.clone(),
        owner_devices: config.encryption.owner_devices,
        bridges,
        quiet: Arc::default(),
    }));

    let (shutdown, shutdown_rx) = watch::channel(false);
    let inbox_ready = Arc::new(Notify::new());
    let pipeline = Pipeline::start(
        PipelineParts {
            store: store.clone(),
            session,
            negotiator,
            crypto: crypto.clone(),
            outbox,
            twins: twins.clone(),
            metrics: metrics.clone(),
            queue_capacity: config.rooms.queue_capacity,
            undecryptable_expiry: Duration::from_secs(config.encryption.undecryptable_expiry_secs),
            idle_close: Duration::from_secs(config.twins.idle_close_secs),
        },
        inbox_ready.clone(),
        shutdown_rx.clone(),
    );
    let queues = pipeline.queues.clone();
    let open = crypto.clone();
    metrics.set_refresh(move |metrics| {
        let depths = queues.depths();
        metrics.room_queue_items.set(depths.items as i64);
        metrics.room_queue_depth_max.set(depths.max as i64);
        metrics.room_queue_capacity.set(depths.capacity as i64);
        metrics.room_queues_active.set(depths.active as i64);
        metrics.twins_open.set(open.open_count() as i64);
    });
    let state = AppState::new(
        registration.hs_token.clone(),
        store.clone(),
        inbox_ready,
        twins,
        config.appservice.max_body_bytes,
    )
    .with_metrics(metrics);
    let (listener, addr) = appservice::bind(config.appservice.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (appservice.listen)",
                config.appservice.listen
            )
        })?;
    tracing::info!(%addr, "appservice API listening");

    let mut tasks = pipeline.tasks;
    let mut server_shutdown = shutdown_rx.clone();
    let app = appservice::router(state);
    tasks.push(tokio::spawn(async move {
        appservice::serve(listener, app, async move {
            let _ = server_shutdown.changed().await;
        })
        .await;
    }));
    tasks.push(tokio::spawn(prune_old_records(
        store.clone(),
        shutdown_rx.clone(),
    )));
    tasks.push(tokio::spawn(ping_until_ok(matrix, config, shutdown_rx)));
    Ok(RunningService {
        addr,
        shutdown,
        tasks,
        store,
    })
}
