#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prometheus_parse::{Scrape, Value};

use super::*;

fn scrape(metrics: &Metrics) -> Scrape {
    let text = metrics.render();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn value<'a>(scrape: &'a Scrape, name: &str, label: Option<(&str, &str)>) -> &'a Value {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {label:?}"));
    &sample.value
}

#[test]
fn rendered_text_parses_with_names_types_and_values() {
    let metrics = Metrics::new().unwrap();
    metrics.transactions_received.inc();
    metrics.events_received.inc_by(3);
    metrics.turns.inc();
    metrics.turn_error(TurnErrorKind::Deadline);
    metrics.turn_error(TurnErrorKind::Deadline);
    metrics.add_model_tokens(120, 30, 100, 20);
    metrics.turn_duration.observe(0.7);
    metrics.ack_duration.observe(0.002);
    metrics.inbox_depth.set(5);
    metrics.inbox_oldest_pending_seconds.set(1.5);

    let scrape = scrape(&metrics);
    assert_eq!(
        value(&scrape, "matrixos_transactions_received_total", None),
        &Value::Counter(1.0)
    );
    assert_eq!(
        value(&scrape, "matrixos_events_received_total", None),
        &Value::Counter(3.0)
    );
    assert_eq!(
        value(
            &scrape,
            "matrixos_turn_errors_total",
            Some(("kind", "deadline"))
        ),
        &Value::Counter(2.0)
    );
    assert_eq!(
        value(
            &scrape,
            "matrixos_turn_errors_total",
            Some(("kind", "provider"))
        ),
        &Value::Counter(0.0),
        "every kind is there from the start"
    );
    assert_eq!(
        value(
            &scrape,
            "matrixos_model_tokens_total",
            Some(("direction", "input"))
        ),
        &Value::Counter(120.0)
    );
    assert_eq!(
        value(
            &scrape,
            "matrixos_model_tokens_total",
            Some(("direction", "output"))
        ),
        &Value::Counter(30.0)
    );
    assert_eq!(
        value(
            &scrape,
            "matrixos_model_tokens_total",
            Some(("direction", "cache_read"))
        ),
        &Value::Counter(100.0)
    );
    assert_eq!(
        value(&scrape, "matrixos_inbox_depth", None),
        &Value::Gauge(5.0)
    );
    assert_eq!(
        value(&scrape, "matrixos_inbox_oldest_pending_seconds", None),
        &Value::Gauge(1.5)
    );
    let Value::Histogram(buckets) = value(&scrape, "matrixos_turn_duration_seconds", None) else {
        panic!("turn_duration is not a histogram");
    };
    let count_below = |le: f64| {
        buckets
            .iter()
            .find(|b| b.less_than == le)
            .map(|b| b.count)
            .unwrap()
    };
    assert_eq!(count_below(0.5), 0.0);
    assert_eq!(count_below(1.0), 1.0);
    assert_eq!(count_below(600.0), 1.0);
    assert_eq!(count_below(f64::INFINITY), 1.0);
    assert_eq!(
        value(&scrape, "matrixos_turn_duration_seconds_count", None),
        &Value::Untyped(1.0)
    );
    assert!(matches!(
        value(&scrape, "matrixos_ack_duration_seconds", None),
        Value::Histogram(b) if b.iter().any(|b| b.less_than == 0.001)
    ));
}

#[test]
fn every_metric_is_prefixed_documented_and_present() {
    let metrics = Metrics::new().unwrap();
    let families = metrics.registry.gather();
    let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
    for expected in [
        "matrixos_transactions_received_total",
        "matrixos_events_received_total",
        "matrixos_turns_total",
        "matrixos_turn_errors_total",
        "matrixos_model_calls_total",
        "matrixos_model_tokens_total",
        "matrixos_sends_total",
        "matrixos_send_retries_total",
        "matrixos_send_failures_total",
        "matrixos_encryption_failures_total",
        "matrixos_decryption_failures_total",
        "matrixos_undecryptable_expired_total",
        "matrixos_devices_recreated_total",
        "matrixos_twins_provisioned_total",
        "matrixos_twins_closed_total",
        "matrixos_turn_duration_seconds",
        "matrixos_ack_duration_seconds",
        "matrixos_provision_duration_seconds",
        "matrixos_inbox_depth",
        "matrixos_inbox_oldest_pending_seconds",
        "matrixos_room_queue_items",
        "matrixos_room_queue_depth_max",
        "matrixos_room_queue_capacity",
        "matrixos_room_queues_active",
        "matrixos_undecryptable_events_waiting",
        "matrixos_twins_open",
        "matrixos_twins_unable_to_act",
        "matrixos_events_refused_total",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(names.len(), 28, "{names:?}");
    for family in &families {
        assert!(family.name().starts_with("matrixos_"), "{}", family.name());
        assert!(!family.help().is_empty(), "{} has no help", family.name());
    }
    let scrape = scrape(&metrics);
    for name in names {
        assert!(scrape.docs.contains_key(name), "no HELP for {name}");
    }
}

#[test]
fn labels_are_only_the_fixed_enums() {
    let metrics = Metrics::new().unwrap();
    for kind in TurnErrorKind::ALL {
        metrics.turn_error(kind);
    }
    metrics.add_model_tokens(1, 1, 0, 0);
    for family in metrics.registry.gather() {
        for metric in family.get_metric() {
            for pair in metric.get_label() {
                let allowed = labels::allowed(pair.name())
                    .unwrap_or_else(|| panic!("{} has label {}", family.name(), pair.name()));
                assert!(
                    allowed.contains(&pair.value()),
                    "{}: {}={}",
                    family.name(),
                    pair.name(),
                    pair.value()
                );
            }
        }
    }
}

#[test]
fn registries_are_separate_per_instance() {
    let a = Metrics::new().unwrap();
    let b = Metrics::new().unwrap();
    a.turns.inc();
    assert_eq!(b.turns.get(), 0);
    assert!(
        !prometheus::gather()
            .iter()
            .any(|f| f.name() == "matrixos_turns_total")
    );
}

#[test]
fn refresh_hook_sets_gauges_before_a_scrape() {
    let metrics = Metrics::new().unwrap();
    metrics.refresh(); // no hook: nothing happens
    metrics.set_refresh(|m| {
        m.twins_open.set(3);
        m.room_queue_capacity.set(64);
    });
    metrics.refresh();
    let scrape = scrape(&metrics);
    assert_eq!(
        value(&scrape, "matrixos_twins_open", None),
        &Value::Gauge(3.0)
    );
    assert_eq!(
        value(&scrape, "matrixos_room_queue_capacity", None),
        &Value::Gauge(64.0)
    );
}

#[test]
fn label_values_are_the_documented_ones() {
    let kinds: Vec<&str> = TurnErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["provider", "deadline", "storage", "send", "internal"]
    );
    let directions: Vec<&str> = TokenDirection::ALL.iter().map(|d| d.as_str()).collect();
    assert_eq!(directions, ["input", "output", "cache_read", "cache_write"]);
}
