//! `/metrics` in the Prometheus text format (issue 14): the router's counters per protocol,
//! HTTP requests by route, database query latency and the change feed's lag. Each server has
//! its own registry (tests run several in one process).
//!
//! Access: open when the server listens on a loopback address; otherwise the server identity
//! or `metrics_token` (`Authorization: Bearer <token>`).

mod http;
mod store;

pub use http::track_requests;
pub use store::TimedStore;

use crate::auth::Authenticator;
use crate::collections::feed::ChangeFeed;
use crate::collections::store::SharedStore;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::Arc;

/// Latency buckets in seconds, 0.5 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub db_duration: HistogramVec,
    router: RouterMetrics,
    /// Scrapes bring the router's counters up to date one at a time.
    scrape: Mutex<()>,
}

struct RouterMetrics {
    connections: IntGaugeVec,
    opened: IntCounterVec,
    events: IntCounterVec,
    messages_in: IntCounterVec,
    bytes_in: IntCounterVec,
    messages_out: IntCounterVec,
    bytes_out: IntCounterVec,
    slow_consumers: IntCounterVec,
    groups: IntGaugeVec,
    members: IntGaugeVec,
    queued: IntGauge,
    feed_lag: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| invalid(e));
    registry
        .register(Box::new(vec.clone()))
        .unwrap_or_else(|e| invalid(e));
    vec
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let gauge = IntGauge::new(name, help).unwrap_or_else(|e| invalid(e));
    registry
        .register(Box::new(gauge.clone()))
        .unwrap_or_else(|e| invalid(e));
    gauge
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let vec = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| invalid(e));
    registry
        .register(Box::new(vec.clone()))
        .unwrap_or_else(|e| invalid(e));
    vec
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(BUCKETS.to_vec());
    let vec = HistogramVec::new(opts, labels).unwrap_or_else(|e| invalid(e));
    registry
        .register(Box::new(vec.clone()))
        .unwrap_or_else(|e| invalid(e));
    vec
}

/// The names and labels above are constants: a failure here is a programming error found by
/// every test that starts a server.
fn invalid(error: prometheus::Error) -> ! {
    panic!("invalid metric definition: {error}")
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let registry =
            Registry::new_custom(Some("rthub".into()), None).unwrap_or_else(|e| invalid(e));
        let r = &registry;
        let router = RouterMetrics {
            connections: gauge_vec(
                r,
                "connections",
                "Open connections.",
                &["protocol", "transport"],
            ),
            opened: counter(
                r,
                "connections_opened_total",
                "Connections opened.",
                &["protocol", "transport"],
            ),
            events: counter(
                r,
                "connection_events_total",
                "Handshakes by outcome and closes by reason.",
                &["event", "protocol", "reason"],
            ),
            messages_in: counter(
                r,
                "messages_received_total",
                "Messages read from clients.",
                &["protocol"],
            ),
            bytes_in: counter(
                r,
                "received_bytes_total",
                "Bytes of messages read from clients.",
                &["protocol"],
            ),
            messages_out: counter(
                r,
                "messages_sent_total",
                "Messages queued to clients by the router.",
                &["protocol"],
            ),
            bytes_out: counter(
                r,
                "sent_bytes_total",
                "Bytes queued to clients by the router.",
                &["protocol"],
            ),
            slow_consumers: counter(
                r,
                "slow_consumer_closes_total",
                "Connections closed because their outbound queue was full.",
                &["protocol"],
            ),
            groups: gauge_vec(
                r,
                "groups",
                "Groups with members on this node: channels, and internal ones (/realtime's).",
                &["kind"],
            ),
            members: gauge_vec(
                r,
                "group_members",
                "Group memberships on this node.",
                &["kind"],
            ),
            queued: gauge(
                r,
                "outbound_queue_bytes",
                "Bytes waiting in outbound queues.",
            ),
            feed_lag: gauge(
                r,
                "change_feed_lag_changes",
                "Changes in the log that the change feed has not delivered yet.",
            ),
        };
        Arc::new(Self {
            http_requests: counter(
                r,
                "http_requests_total",
                "HTTP requests by route and status.",
                &["method", "route", "status"],
            ),
            http_duration: histogram(
                r,
                "http_request_duration_seconds",
                "Time to the response's head, by route.",
                &["method", "route"],
            ),
            db_duration: histogram(
                r,
                "db_query_duration_seconds",
                "Database calls by operation.",
                &["operation"],
            ),
            router,
            scrape: Mutex::new(()),
            registry,
        })
    }

    /// Register a collector made elsewhere (the change feed's delivery delay).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        self.registry
            .register(collector)
            .unwrap_or_else(|e| invalid(e));
    }

    /// Bring the router's counters into the registry.
    fn collect_router(&self, router: &router::Router) {
        let _one_at_a_time = self.scrape.lock();
        let m = &self.router;
        let stats = router.stats();
        // Counters follow the router's monotonic totals: add what is new since the last scrape.
        let follow = |vec: &IntCounterVec, labels: &[&str], total: u64| {
            let counter = vec.with_label_values(labels);
            let seen = counter.get();
            if total > seen {
                counter.inc_by(total - seen);
            }
        };
        for s in &stats.sessions {
            let labels = [s.protocol.as_str(), s.transport];
            m.connections.with_label_values(&labels).set(s.open);
            follow(&m.opened, &labels, s.opened);
        }
        for e in &stats.events {
            follow(
                &m.events,
                &[e.family, e.protocol.as_str(), e.label],
                e.count,
            );
        }
        for p in &stats.protocols {
            let labels = [p.protocol.as_str()];
            follow(&m.messages_in, &labels, p.messages_in);
            follow(&m.bytes_in, &labels, p.bytes_in);
            follow(&m.messages_out, &labels, p.messages_out);
            follow(&m.bytes_out, &labels, p.bytes_out);
            follow(&m.slow_consumers, &labels, p.slow_consumer_closes);
        }
        let mut counts = [(0i64, 0i64); 2];
        router.for_each_group(|name, members, _| {
            // Internal group names contain '/', which channel names cannot.
            let kind = usize::from(name.contains('/'));
            counts[kind].0 += 1;
            counts[kind].1 += members as i64;
        });
        for (kind, (groups, members)) in ["channel", "internal"].iter().zip(counts) {
            m.groups.with_label_values(&[kind]).set(groups);
            m.members.with_label_values(&[kind]).set(members);
        }
        m.queued.set(router.queued_bytes() as i64);
    }
}

/// What the `/metrics` handler reads.
#[derive(Clone)]
pub struct MetricsState {
    pub metrics: Arc<Metrics>,
    pub router: router::Router,
    pub feed: Arc<ChangeFeed>,
    pub store: SharedStore,
    pub auth: Authenticator,
    /// Open without credentials (a loopback listener).
    pub open: bool,
    pub token: Option<String>,
}

pub async fn serve(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    if !state.open && !authorized(&state, &headers) {
        return crate::api_error::ApiError::unauthorized(
            "/metrics needs the server identity or the metrics token.",
        )
        .into_response();
    }
    if let Ok(head) = state.store.last_seq().await {
        state
            .metrics
            .router
            .feed_lag
            .set((head - state.feed.delivered()).max(0));
    }
    state.metrics.collect_router(&state.router);
    let mut body = Vec::new();
    let families = state.metrics.registry.gather();
    if let Err(error) = TextEncoder::new().encode(&families, &mut body) {
        return crate::api_error::ApiError::internal(error).into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        body,
    )
        .into_response()
}

fn authorized(state: &MetricsState, headers: &HeaderMap) -> bool {
    let credentials = negotiate::Credentials::from_request(headers, &negotiate::Query::parse(None));
    if let (Some(token), Some(presented)) = (&state.token, &credentials.bearer) {
        if crate::auth::constant_time_eq(token, presented) {
            return true;
        }
    }
    state
        .auth
        .identify(&credentials)
        .is_ok_and(|identity| identity.is_server)
}
