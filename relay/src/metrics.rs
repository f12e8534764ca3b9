//! Prometheus metrics (`/metrics`, text exposition format).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template (never the concrete path).
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Status code.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    /// Route template.
    pub route: String,
}

/// All metrics of the relay.
#[derive(Debug)]
pub struct Metrics {
    /// The registry rendered at `/metrics`.
    pub registry: Registry,
    /// Requests by route, method and status.
    pub requests: Family<RouteLabels, Counter>,
    /// Request latency by route.
    pub latency: Family<LatencyLabels, Histogram>,
    /// Devices with an open WebSocket.
    pub connected_devices: Gauge,
    /// Ciphertext bytes stored (database and blobs).
    pub stored_bytes: Gauge,
    /// Audit-log leaves across firms.
    pub audit_leaves: Gauge,
    /// Messages deleted by retention sweeps.
    pub retention_messages: Counter,
    /// Documents deleted by retention sweeps.
    pub retention_documents: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ledgerline");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        let connected_devices = Gauge::default();
        let stored_bytes = Gauge::default();
        let audit_leaves = Gauge::default();
        let retention_messages = Counter::default();
        let retention_documents = Counter::default();
        registry.register(
            "retention_deleted_messages",
            "Messages deleted by retention sweeps",
            retention_messages.clone(),
        );
        registry.register(
            "retention_deleted_documents",
            "Documents deleted by retention sweeps",
            retention_documents.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "connected_devices",
            "Devices with an open WebSocket",
            connected_devices.clone(),
        );
        registry.register(
            "stored_bytes",
            "Ciphertext bytes stored",
            stored_bytes.clone(),
        );
        registry.register(
            "audit_log_leaves",
            "Audit-log leaves across firms",
            audit_leaves.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            connected_devices,
            stored_bytes,
            audit_leaves,
            retention_messages,
            retention_documents,
        }
    }
}
