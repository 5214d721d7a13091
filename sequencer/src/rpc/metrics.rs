//! Per-method request, error and latency metrics as a jsonrpsee middleware.

use crate::metrics::SequencerMetrics;
use alloy_primitives::map::HashSet;
use jsonrpsee::{
    MethodResponse,
    core::middleware::{Batch, BatchEntry, Notification, RpcServiceT},
    types::Request,
};
use std::{future::Future, sync::Arc, time::Instant};

/// Label for methods the node does not serve: keeps label cardinality bounded whatever
/// clients send.
const UNKNOWN: &str = "unknown";

/// Records `lanes_rpc_*` metrics around every call.
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer {
    metrics: Arc<SequencerMetrics>,
    known: Arc<HashSet<&'static str>>,
}

impl RpcMetricsLayer {
    /// A layer that labels calls to `known` methods by name and all others `unknown`.
    pub fn new(
        metrics: Arc<SequencerMetrics>,
        known: impl IntoIterator<Item = &'static str>,
    ) -> Self {
        Self {
            metrics,
            known: Arc::new(known.into_iter().collect()),
        }
    }

    fn label<'a>(&self, method: &'a str) -> &'a str {
        if self.known.contains(method) {
            method
        } else {
            UNKNOWN
        }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, service: S) -> Self::Service {
        RpcMetrics {
            layer: self.clone(),
            service,
        }
    }
}

/// The middleware service.
#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    layer: RpcMetricsLayer,
    service: S,
}

impl<S> RpcServiceT for RpcMetrics<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let method = self.layer.label(request.method_name()).to_owned();
        let metrics = self.layer.metrics.clone();
        let service = self.service.clone();
        async move {
            let started = Instant::now();
            let response = service.call(request).await;
            metrics.rpc_requests.with_label_values(&[&method]).inc();
            metrics
                .rpc_latency
                .with_label_values(&[&method])
                .observe(started.elapsed().as_secs_f64());
            if response.is_error() {
                metrics.rpc_errors.with_label_values(&[&method]).inc();
            }
            response
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        // The server runs a batch's calls without passing them through `call`, so they are
        // counted here; latency and errors are recorded for the batch as a whole.
        for entry in batch.iter().flatten() {
            let name = match entry {
                BatchEntry::Call(request) => request.method_name(),
                BatchEntry::Notification(notification) => notification.method_name(),
            };
            let label = self.layer.label(name);
            self.layer
                .metrics
                .rpc_requests
                .with_label_values(&[label])
                .inc();
        }
        let metrics = self.layer.metrics.clone();
        let service = self.service.clone();
        async move {
            let started = Instant::now();
            let response = service.batch(batch).await;
            metrics
                .rpc_latency
                .with_label_values(&["batch"])
                .observe(started.elapsed().as_secs_f64());
            if response.is_error() {
                metrics.rpc_errors.with_label_values(&["batch"]).inc();
            }
            response
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.service.notification(n)
    }
}
