//! Prometheus metrics: the process-wide recorder, the request metrics the middleware
//! records, and the gauges other modules set (relay lag, log size). Labels are bounded
//! (route templates, never raw paths or query strings), so cardinality cannot explode.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::path::Path;
use std::sync::OnceLock;

pub const REQUESTS: &str = "http_requests_total";
pub const DURATION: &str = "http_request_duration_seconds";
pub const IN_FLIGHT: &str = "http_requests_in_flight";
pub const RELAY_LAG: &str = "souk_relay_lag_events";
pub const LOG_SIZE: &str = "souk_log_size_bytes";
pub const STORE_SIZE: &str = "souk_store_size_bytes";

/// Fine enough at the bottom for p50 of fast routes, wide enough for the 60 s payment limit.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder once per process (servers started later, as in tests,
/// share it). If another recorder was installed first, ours still renders, just empty.
pub fn init() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets_for_metric(Matcher::Full(DURATION.into()), BUCKETS)
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "metrics buckets refused; using summaries");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics stays empty");
        }
        describe();
        spawn_upkeep(handle.clone());
        handle
    })
}

/// How often recorded latencies are folded into the histograms' buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every latency sample until an upkeep folds it into the buckets. A
/// scrape runs one, but a server nobody scrapes would otherwise hold every sample of
/// every request (about 150 KB a second at 20k requests/s), so a thread runs it too.
fn spawn_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "metrics upkeep thread; latencies are folded at scrapes only");
    }
}

fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, route and status"
    );
    metrics::describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency, by method and route"
    );
    metrics::describe_gauge!(IN_FLIGHT, "HTTP requests being handled now");
    metrics::describe_gauge!(RELAY_LAG, "Outbox events committed but not yet in the log");
    metrics::describe_gauge!(LOG_SIZE, metrics::Unit::Bytes, "Event log size on disk");
    metrics::describe_gauge!(
        STORE_SIZE,
        metrics::Unit::Bytes,
        "State store (redb) file size"
    );
}

/// Renders the text exposition, refreshing the gauges that are read at scrape time.
pub fn render(data_dir: &Path) -> String {
    let handle = init();
    if let Ok(meta) = std::fs::metadata(data_dir.join("souk.redb")) {
        metrics::gauge!(STORE_SIZE).set(meta.len() as f64);
    }
    handle.run_upkeep();
    handle.render()
}

/// Outbox events committed but not yet moved to the log; set at scrape time.
pub fn set_relay_lag(events: u64) {
    metrics::gauge!(RELAY_LAG).set(events as f64);
}

/// Bytes the event log takes on disk; set at scrape time.
pub fn set_log_size_bytes(bytes: u64) {
    metrics::gauge!(LOG_SIZE).set(bytes as f64);
}

/// Handles looked up once (after the recorder is installed, so never a no-op handle): the
/// registry hashes a metric's name and labels (and copies the labels) on every lookup,
/// which was a few percent of /health's server time.
fn in_flight() -> &'static metrics::Gauge {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| {
        init();
        metrics::gauge!(IN_FLIGHT)
    })
}

pub(crate) fn request_started() {
    in_flight().increment(1.0);
}

pub(crate) fn in_flight_done() {
    in_flight().decrement(1.0);
}

/// Route labels are templates, so each worker thread keeps few entries.
type Handles = std::collections::HashMap<String, (metrics::Counter, metrics::Histogram)>;

pub(crate) fn request_finished(method: &str, route: &str, status: u16, seconds: f64) {
    use std::fmt::Write;
    thread_local! {
        static HANDLES: std::cell::RefCell<(String, Handles)> = Default::default();
    }
    HANDLES.with_borrow_mut(|(key, handles)| {
        key.clear();
        let _ = write!(key, "{method} {status} {route}");
        if let Some((counter, histogram)) = handles.get(key.as_str()) {
            counter.increment(1);
            histogram.record(seconds);
            return;
        }
        init();
        let counter = metrics::counter!(
            REQUESTS,
            "method" => method.to_owned(),
            "route" => route.to_owned(),
            "status" => status.to_string()
        );
        let histogram = metrics::histogram!(
            DURATION, "method" => method.to_owned(), "route" => route.to_owned()
        );
        counter.increment(1);
        histogram.record(seconds);
        handles.insert(key.clone(), (counter, histogram));
    });
}
