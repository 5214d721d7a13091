//! The `/metrics` and `/health` HTTP endpoint.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lanes_config::MetricsConfig;
use tokio::net::TcpListener;

use crate::{Health, MetricsRegistry, MonitoringError};

/// Content type of `/metrics`: Prometheus text exposition format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

#[derive(Clone)]
struct AppState {
    registry: MetricsRegistry,
    health: Health,
}

/// The endpoint's routes: `GET /metrics` and `GET /health`. Also registers
/// `health`'s block age gauge in `registry` (see
/// [`MetricsRegistry::register_health`]) unless it is already there.
pub fn router(registry: MetricsRegistry, health: Health) -> Router {
    match registry.register_health(&health) {
        Ok(()) | Err(MonitoringError::AlreadyRegistered { .. }) => {}
        Err(error) => tracing::warn!(%error, "block age metric unavailable"),
    }
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health_check))
        .with_state(AppState { registry, health })
}

/// Binds the listener for the endpoint described by `config`.
pub async fn bind(config: &MetricsConfig) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::new(config.addr, config.port)).await
}

/// Serves [`router`] on `listener` until `shutdown` completes, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    registry: MetricsRegistry,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics and /health");
    }
    axum::serve(listener, router(registry, health))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(state): State<AppState>) -> Response {
    // Gathering reads /proc for the process metrics: blocking, but brief.
    let body = state.registry.render();
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response()
}

async fn health_check(State(state): State<AppState>) -> Response {
    let report = state.health.report();
    let code = if report.status.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(report.to_json())).into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    use super::*;

    struct Reply {
        status: u16,
        headers: String,
        body: String,
    }

    /// A minimal HTTP/1.1 GET, enough to check status, headers and body.
    async fn get(addr: SocketAddr, path: &str) -> Reply {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut raw))
            .await
            .expect("response within 10s")
            .unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("header/body separator");
        let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        Reply {
            status,
            headers: headers.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    async fn start(
        registry: MetricsRegistry,
        health: Health,
    ) -> (
        SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, registry, health, async {
            let _ = stopped.await;
        }));
        (addr, stop, task)
    }

    #[tokio::test]
    async fn metrics_endpoint() {
        let registry = MetricsRegistry::new();
        let blocks = registry
            .counter("lanes_blocks_total", "Blocks produced.")
            .unwrap();
        blocks.inc();
        let (addr, stop, task) = start(registry, Health::new(Duration::from_secs(60))).await;

        let reply = get(addr, "/metrics").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply
                .headers
                .contains("content-type: text/plain; version=0.0.4"),
            "{}",
            reply.headers
        );
        assert!(
            reply
                .body
                .contains("# HELP lanes_blocks_total Blocks produced."),
            "{}",
            reply.body
        );
        assert!(
            reply.body.contains("lanes_blocks_total 1"),
            "{}",
            reply.body
        );

        // The health endpoint's block age is exported next to the registry's metrics.
        assert!(
            reply
                .body
                .contains("# TYPE lanes_producer_heartbeat_age_seconds gauge"),
            "{}",
            reply.body
        );

        assert_eq!(get(addr, "/nope").await.status, 404);

        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn health_endpoint_follows_block_production() {
        let max_age = Duration::from_millis(300);
        let health = Health::new(max_age);
        let (addr, stop, task) = start(MetricsRegistry::new(), health.clone()).await;

        let reply = get(addr, "/health").await;
        assert_eq!(reply.status, 200);
        assert!(
            reply.headers.contains("content-type: application/json"),
            "{}",
            reply.headers
        );
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["status"], "starting");

        tokio::time::sleep(max_age + Duration::from_millis(20)).await;
        let reply = get(addr, "/health").await;
        assert_eq!(reply.status, 503);
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["status"], "stalled");

        health.block_produced(42, 1_700_000_000);
        let reply = get(addr, "/health").await;
        assert_eq!(reply.status, 200);
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["status"], "ok");
        assert_eq!(json["head"], 42);
        assert!(json["last_block_age_ms"].as_u64().unwrap() < 300);

        tokio::time::sleep(max_age + Duration::from_millis(20)).await;
        let reply = get(addr, "/health").await;
        assert_eq!(reply.status, 503);
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            (json["status"].as_str(), json["head"].as_u64()),
            (Some("stalled"), Some(42))
        );

        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn bind_uses_config() {
        let config = MetricsConfig {
            port: 0,
            ..MetricsConfig::default()
        };
        let listener = bind(&config).await.unwrap();
        assert_eq!(listener.local_addr().unwrap().ip(), config.addr);
    }
}
