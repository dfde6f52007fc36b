//! Prometheus metrics, served at `GET /metrics` in the text exposition format.
//!
//! A [`Metrics`] owns its own [`prometheus::Registry`] rather than the process-wide default, so
//! several services in one process (as in the integration tests) keep separate numbers. Every
//! name starts with `matrixos_`. Labels take only the fixed values of [`TurnErrorKind`] and
//! [`TokenDirection`]: no user ID, room ID or other free text ever becomes a label value.
//!
//! Counters and histograms are incremented where things happen (`metrics.turns.inc()`,
//! `metrics.turn_duration.observe(secs)`, [`Metrics::turn_error`]). Gauges describe state and are
//! set just before a scrape: the `/metrics` handler sets the inbox gauges from the store, then
//! runs the hook given to [`Metrics::set_refresh`], through which the service sets the rest
//! (room queues, twins) from wherever that state lives.

mod labels;
#[cfg(test)]
mod tests;

use std::sync::{Arc, PoisonError, RwLock};

use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

pub use self::labels::{RefusedReason, TokenDirection, TurnErrorKind};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets of `matrixos_turn_duration_seconds`: a turn is one or more model calls, from a
/// fraction of a second (a command) to minutes (many tool rounds on a slow model).
const TURN_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Buckets of `matrixos_ack_duration_seconds`: storing a transaction is one database commit.
const ACK_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets of `matrixos_provision_duration_seconds`: registering a user on the homeserver,
/// creating a home (a git commit) and a device with its keys.
const PROVISION_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The metrics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The registry refused a metric (a duplicate or malformed name: a bug in this module).
    #[error("cannot register metric {name}: {source}")]
    Register {
        /// The metric's name.
        name: &'static str,
        /// The registry's reason.
        source: prometheus::Error,
    },
}

/// A hook that sets gauges just before a scrape; see [`Metrics::set_refresh`].
pub type RefreshHook = Arc<dyn Fn(&Metrics) + Send + Sync>;

/// Every metric of the service, in a registry of its own. Share it as `Arc<Metrics>`.
pub struct Metrics {
    registry: prometheus::Registry,
    refresh: RwLock<Option<RefreshHook>>,
    turn_errors: IntCounterVec,
    model_tokens: IntCounterVec,
    events_refused: IntCounterVec,

    /// `matrixos_transactions_received_total`: transactions stored (repeats not counted).
    pub transactions_received: IntCounter,
    /// `matrixos_events_received_total`: events stored from transactions.
    pub events_received: IntCounter,
    /// `matrixos_turns_total`: turns started.
    pub turns: IntCounter,
    /// `matrixos_model_calls_total`: requests to the model provider.
    pub model_calls: IntCounter,
    /// `matrixos_sends_total`: events sent to rooms.
    pub sends: IntCounter,
    /// `matrixos_send_retries_total`: retried send attempts.
    pub send_retries: IntCounter,
    /// `matrixos_send_failures_total`: sends given up.
    pub send_failures: IntCounter,
    /// `matrixos_encryption_failures_total`: events not sent because encrypting failed.
    pub encryption_failures: IntCounter,
    /// `matrixos_decryption_failures_total`: events a twin could not decrypt when they came.
    pub decryption_failures: IntCounter,
    /// `matrixos_undecryptable_expired_total`: undecryptable events given up on.
    pub undecryptable_expired: IntCounter,
    /// `matrixos_devices_recreated_total`: twin devices made anew (their keys were lost).
    pub devices_recreated: IntCounter,
    /// `matrixos_twins_provisioned_total`: twins created.
    pub twins_provisioned: IntCounter,
    /// `matrixos_twins_closed_total`: twins closed (unloaded from memory).
    pub twins_closed: IntCounter,

    /// `matrixos_turn_duration_seconds`: how long turns take, start to last send.
    pub turn_duration: Histogram,
    /// `matrixos_ack_duration_seconds`: from a transaction's arrival to its `200`.
    pub ack_duration: Histogram,
    /// `matrixos_provision_duration_seconds`: how long creating a twin takes.
    pub provision_duration: Histogram,

    /// `matrixos_inbox_depth`: inbox items waiting (set by the `/metrics` handler).
    pub inbox_depth: IntGauge,
    /// `matrixos_inbox_oldest_pending_seconds`: age of the oldest waiting inbox item (set by
    /// the `/metrics` handler; 0 when the inbox is empty).
    pub inbox_oldest_pending_seconds: Gauge,
    /// `matrixos_room_queue_items`: items in all room queues together.
    pub room_queue_items: IntGauge,
    /// `matrixos_room_queue_depth_max`: items in the fullest room queue.
    pub room_queue_depth_max: IntGauge,
    /// `matrixos_room_queue_capacity`: how many items one room queue holds.
    pub room_queue_capacity: IntGauge,
    /// `matrixos_room_queues_active`: rooms with a queue.
    pub room_queues_active: IntGauge,
    /// `matrixos_undecryptable_events_waiting`: events waiting for their room key (set by the
    /// `/metrics` handler).
    pub undecryptable_events_waiting: IntGauge,
    /// `matrixos_twins_open`: twins loaded in memory.
    pub twins_open: IntGauge,
    /// `matrixos_twins_unable_to_act`: open twins that cannot act (no device, no home).
    pub twins_unable_to_act: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Every metric, registered in a new registry, all at zero.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = prometheus::Registry::new();
        let r = &registry;
        let turn_errors = register(
            r,
            "matrixos_turn_errors_total",
            IntCounterVec::new(
                Opts::new("matrixos_turn_errors_total", "Turns that failed, by cause."),
                &["kind"],
            ),
        )?;
        let model_tokens = register(
            r,
            "matrixos_model_tokens_total",
            IntCounterVec::new(
                Opts::new(
                    "matrixos_model_tokens_total",
                    "Tokens the model provider reported: sent (input), produced (output), and of the \
                     input those read from (cache_read) and written to (cache_write) its prompt \
                     cache.",
                ),
                &["direction"],
            ),
        )?;
        let events_refused = register(
            r,
            "matrixos_events_refused_total",
            IntCounterVec::new(
                Opts::new(
                    "matrixos_events_refused_total",
                    "Events not acted on because they broke a trust rule, by reason.",
                ),
                &["reason"],
            ),
        )?;
        for reason in RefusedReason::ALL {
            events_refused.with_label_values(&[reason.as_str()]);
        }
        // Every label value present from the start, so a rate over a series that has not
        // moved yet reads 0 rather than nothing.
        for kind in TurnErrorKind::ALL {
            turn_errors.with_label_values(&[kind.as_str()]);
        }
        for direction in TokenDirection::ALL {
            model_tokens.with_label_values(&[direction.as_str()]);
        }
        Ok(Self {
            turn_errors,
            model_tokens,
            events_refused,
            transactions_received: counter(
                r,
                "matrixos_transactions_received_total",
                "Appservice transactions stored (a repeated transaction is not counted).",
            )?,
            events_received: counter(
                r,
                "matrixos_events_received_total",
                "Events stored from appservice transactions.",
            )?,
            turns: counter(r, "matrixos_turns_total", "Turns started.")?,
            model_calls: counter(
                r,
                "matrixos_model_calls_total",
                "Requests sent to the model provider.",
            )?,
            sends: counter(r, "matrixos_sends_total", "Events sent to rooms.")?,
            send_retries: counter(
                r,
                "matrixos_send_retries_total",
                "Send attempts repeated after a failure.",
            )?,
            send_failures: counter(
                r,
                "matrixos_send_failures_total",
                "Sends given up after their retries.",
            )?,
            encryption_failures: counter(
                r,
                "matrixos_encryption_failures_total",
                "Events not sent because encrypting them failed.",
            )?,
            decryption_failures: counter(
                r,
                "matrixos_decryption_failures_total",
                "Events a twin could not decrypt on arrival.",
            )?,
            undecryptable_expired: counter(
                r,
                "matrixos_undecryptable_expired_total",
                "Undecryptable events given up on because their room key never came.",
            )?,
            devices_recreated: counter(
                r,
                "matrixos_devices_recreated_total",
                "Twin devices created anew because their keys were missing.",
            )?,
            twins_provisioned: counter(r, "matrixos_twins_provisioned_total", "Twins created.")?,
            twins_closed: counter(
                r,
                "matrixos_twins_closed_total",
                "Twins closed (unloaded from memory).",
            )?,
            turn_duration: histogram(
                r,
                "matrixos_turn_duration_seconds",
                "How long turns take, in seconds.",
                TURN_BUCKETS,
            )?,
            ack_duration: histogram(
                r,
                "matrixos_ack_duration_seconds",
                "From a transaction's arrival to its answer, in seconds.",
                ACK_BUCKETS,
            )?,
            provision_duration: histogram(
                r,
                "matrixos_provision_duration_seconds",
                "How long creating a twin takes, in seconds.",
                PROVISION_BUCKETS,
            )?,
            inbox_depth: gauge(r, "matrixos_inbox_depth", "Inbox items waiting.")?,
            inbox_oldest_pending_seconds: register(
                r,
                "matrixos_inbox_oldest_pending_seconds",
                Gauge::new(
                    "matrixos_inbox_oldest_pending_seconds",
                    "Age of the oldest waiting inbox item, in seconds (0 when empty).",
                ),
            )?,
            room_queue_items: gauge(
                r,
                "matrixos_room_queue_items",
                "Items in all room queues together.",
            )?,
            room_queue_depth_max: gauge(
                r,
                "matrixos_room_queue_depth_max",
                "Items in the fullest room queue.",
            )?,
            room_queue_capacity: gauge(
                r,
                "matrixos_room_queue_capacity",
                "How many items one room queue holds.",
            )?,
            room_queues_active: gauge(r, "matrixos_room_queues_active", "Rooms with a queue.")?,
            undecryptable_events_waiting: gauge(
                r,
                "matrixos_undecryptable_events_waiting",
                "Events waiting for their room key.",
            )?,
            twins_open: gauge(r, "matrixos_twins_open", "Twins loaded in memory.")?,
            twins_unable_to_act: gauge(
                r,
                "matrixos_twins_unable_to_act",
                "Open twins that cannot act (no device or no home).",
            )?,
            registry,
            refresh: RwLock::new(None),
        })
    }

    /// Counts an event refused for `reason`.
    pub fn refused(&self, reason: RefusedReason) {
        self.events_refused
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// How many events were refused for `reason`.
    pub fn refused_count(&self, reason: RefusedReason) -> u64 {
        self.events_refused
            .with_label_values(&[reason.as_str()])
            .get()
    }

    /// Counts a failed turn.
    pub fn turn_error(&self, kind: TurnErrorKind) {
        self.turn_errors.with_label_values(&[kind.as_str()]).inc();
    }

    /// Adds the tokens of one model call: all input, output, and of the input those read
    /// from and written to the provider's prompt cache.
    pub fn add_model_tokens(&self, input: u64, output: u64, cache_read: u64, cache_write: u64) {
        for (direction, n) in [
            (TokenDirection::Input, input),
            (TokenDirection::Output, output),
            (TokenDirection::CacheRead, cache_read),
            (TokenDirection::CacheWrite, cache_write),
        ] {
            self.model_tokens
                .with_label_values(&[direction.as_str()])
                .inc_by(n);
        }
    }

    /// Sets the hook [`Metrics::refresh`] runs, replacing any earlier one. The service uses it
    /// to set the gauges whose state lives elsewhere (room queues, twins); it runs on every
    /// scrape, so it must be quick and must not block (no I/O, no async locks held).
    pub fn set_refresh(&self, hook: impl Fn(&Metrics) + Send + Sync + 'static) {
        let hook: RefreshHook = Arc::new(hook);
        *self.refresh.write().unwrap_or_else(PoisonError::into_inner) = Some(hook);
    }

    /// Runs the hook set by [`Metrics::set_refresh`], if any.
    pub fn refresh(&self) {
        // Cloned out of the lock so that a hook may call set_refresh without deadlocking.
        let hook = self
            .refresh
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            hook(self);
        }
    }

    /// Every metric in the Prometheus text exposition format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        match prometheus::TextEncoder::new().encode_to_string(&families) {
            Ok(text) => text,
            Err(err) => {
                // Only a malformed family can fail, and every one is built above.
                tracing::error!(%err, "cannot encode the metrics");
                format!("# metrics could not be encoded: {err}\n")
            }
        }
    }
}

fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &prometheus::Registry,
    name: &'static str,
    made: prometheus::Result<C>,
) -> Result<C, MetricsError> {
    let wrap = |source| MetricsError::Register { name, source };
    let metric = made.map_err(wrap)?;
    registry.register(Box::new(metric.clone())).map_err(wrap)?;
    Ok(metric)
}

fn counter(
    registry: &prometheus::Registry,
    name: &'static str,
    help: &str,
) -> Result<IntCounter, MetricsError> {
    register(registry, name, IntCounter::new(name, help))
}

fn gauge(
    registry: &prometheus::Registry,
    name: &'static str,
    help: &str,
) -> Result<IntGauge, MetricsError> {
    register(registry, name, IntGauge::new(name, help))
}

fn histogram(
    registry: &prometheus::Registry,
    name: &'static str,
    help: &str,
    buckets: &[f64],
) -> Result<Histogram, MetricsError> {
    register(
        registry,
        name,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())),
    )
}
