//! Prometheus text metrics from a few atomic counters.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: AtomicU64,
    pub unlocks_granted: AtomicU64,
    pub unlocks_denied: AtomicU64,
    pub controller_events: AtomicU64,
    pub webhook_delivered: AtomicU64,
    pub webhook_failed: AtomicU64,
    pub logins_failed: AtomicU64,
    /// Cloud unlock handling time, microseconds, summed (with the count of unlocks).
    pub unlock_micros_sum: AtomicU64,
    pub unlock_count: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, controllers_connected: usize) -> String {
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        line(
            "keyway_http_requests_total",
            "counter",
            "HTTP requests served",
            get(&self.http_requests),
        );
        line(
            "keyway_unlocks_granted_total",
            "counter",
            "Cloud unlocks granted",
            get(&self.unlocks_granted),
        );
        line(
            "keyway_unlocks_denied_total",
            "counter",
            "Cloud unlocks denied",
            get(&self.unlocks_denied),
        );
        line(
            "keyway_controller_events_total",
            "counter",
            "Door events stored from controllers",
            get(&self.controller_events),
        );
        line(
            "keyway_webhook_deliveries_total",
            "counter",
            "Webhook deliveries that succeeded",
            get(&self.webhook_delivered),
        );
        line(
            "keyway_webhook_failures_total",
            "counter",
            "Webhook delivery attempts that failed",
            get(&self.webhook_failed),
        );
        line(
            "keyway_logins_failed_total",
            "counter",
            "Failed password logins",
            get(&self.logins_failed),
        );
        line(
            "keyway_controllers_connected",
            "gauge",
            "Controllers connected to this instance",
            controllers_connected as u64,
        );
        out.push_str(&format!(
            "# HELP keyway_unlock_seconds Cloud unlock handling time\n# TYPE keyway_unlock_seconds summary\n\
             keyway_unlock_seconds_sum {:.6}\nkeyway_unlock_seconds_count {}\n",
            get(&self.unlock_micros_sum) as f64 / 1e6,
            get(&self.unlock_count)
        ));
        out
    }
}
