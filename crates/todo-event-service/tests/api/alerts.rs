//! The spec's three alerts and ours ship as Prometheus rules, checked by promtool.

use std::path::PathBuf;
use std::process::Command;

fn rules_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ops/prometheus/alerts.yml")
}

#[test]
fn the_alert_rules_pass_promtool_check_rules() {
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(rules_file())
        .output()
        .expect("promtool is required (Debian package `prometheus`; ./dev test installs it)");
    assert!(
        out.status.success(),
        "promtool check rules failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alert_rules_pass_their_promtool_unit_tests() {
    let tests =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ops/prometheus/alerts_test.yml");
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(tests)
        .output()
        .expect("promtool is required (Debian package `prometheus`; ./dev test installs it)");
    assert!(
        out.status.success(),
        "promtool test rules failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alerts_watch_the_metrics_the_services_export() {
    let rules = std::fs::read_to_string(rules_file()).unwrap();
    for metric in [
        "events_published_total",
        "events_published_failures_total",
        todo_event_service::metrics::CONSUMER_LAG,
        todo_event_service::metrics::CONSUMER_LAG_SECONDS,
        todo_event_service::metrics::OLDEST_PARKED_AGE_SECONDS,
        todo_event_service::metrics::EVENT_PROCESSING_DURATION_SECONDS,
    ] {
        assert!(rules.contains(metric), "alerts.yml does not use {metric}");
    }
}
