//! The admin endpoint: JSON-RPC on its own port (`batcher.admin_port`, loopback only),
//! authenticated like the Engine API with an HS256 JWT whose `iat` is within 60 s of now,
//! signed with a 32-byte secret kept in a hex file (`batcher.jwt_secret_file`, or
//! `<datadir>/admin-jwt.hex`, created on first start).
//!
//! Methods: `admin_stopBatcher`, `admin_startBatcher`, `admin_flushBatcher` (returns the last
//! L2 block recorded on L1), `admin_stopSequencer` (returns the head hash once the block
//! pipeline has drained), `admin_startSequencer`.

use crate::chain::Chain;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonrpsee::{RpcModule, types::ErrorObjectOwned};
use lanes_batcher::BatcherHandle;
use sha2::Sha256;
use std::{
    net::SocketAddr,
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Largest clock difference accepted between a token's `iat` and now.
pub const JWT_IAT_WINDOW: Duration = Duration::from_secs(60);

/// What the admin methods act on.
#[derive(Debug, Clone)]
pub struct AdminContext {
    /// The batcher, when the node posts to L1.
    pub batcher: Option<BatcherHandle>,
    /// The chain (head hash).
    pub chain: Arc<Chain>,
    /// Pauses block production while `true`.
    pub pause: Arc<watch::Sender<bool>>,
    /// The producer's answer: the head it paused at.
    pub paused_at: Arc<watch::Sender<Option<u64>>>,
    /// Longest wait for the producer to pause.
    pub pause_timeout: Duration,
}

/// Reads the JWT secret (hex, 32 bytes, `0x` optional) from `path`, creating the file with a
/// random secret if it does not exist.
pub fn load_or_create_secret(path: &Path) -> std::io::Result<[u8; 32]> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = text.trim();
            let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(text))
                .map_err(|e| invalid(format!("{}: not hex: {e}", path.display())))?;
            bytes
                .try_into()
                .map_err(|_| invalid(format!("{}: the secret must be 32 bytes", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = alloy_signer_local::PrivateKeySigner::random().to_bytes();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, format!("0x{}\n", hex::encode(secret)))?;
            info!(target: "lanes::admin", path = %path.display(), "created a JWT secret for the admin endpoint");
            Ok(secret.0)
        }
        Err(e) => Err(e),
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Signs a token with `iat = now`, as a client of the admin endpoint does.
pub fn make_token(secret: &[u8; 32], now_secs: u64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = b64.encode(format!(r#"{{"iat":{now_secs}}}"#));
    let signing_input = format!("{header}.{claims}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key size");
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        b64.encode(mac.finalize().into_bytes())
    )
}

/// Checks an HS256 token: signature, algorithm, and `iat` within [`JWT_IAT_WINDOW`] of
/// `now_secs`.
pub fn verify_token(secret: &[u8; 32], token: &str, now_secs: u64) -> Result<(), String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed token".into());
    };
    let signature = b64.decode(signature).map_err(|_| "malformed signature")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key size");
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(claims.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&signature)
        .map_err(|_| "bad signature".to_string())?;
    let header: serde_json::Value = b64
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("malformed header")?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err("algorithm must be HS256".into());
    }
    let claims: serde_json::Value = b64
        .decode(claims)
        .ok()
        .and_then(|c| serde_json::from_slice(&c).ok())
        .ok_or("malformed claims")?;
    let iat = claims
        .get("iat")
        .and_then(|i| i.as_u64())
        .ok_or("missing iat")?;
    if iat.abs_diff(now_secs) > JWT_IAT_WINDOW.as_secs() {
        return Err("stale token: iat is more than 60 s from now".into());
    }
    Ok(())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn admin_error(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, message.into(), None::<()>)
}

fn batcher(ctx: &AdminContext) -> Result<&BatcherHandle, ErrorObjectOwned> {
    ctx.batcher
        .as_ref()
        .ok_or_else(|| admin_error("no batcher: this node runs L2 only"))
}

/// The admin methods.
pub fn module(ctx: AdminContext) -> RpcModule<AdminContext> {
    let mut module = RpcModule::new(ctx);
    module
        .register_async_method("admin_stopBatcher", |_, ctx, _| async move {
            batcher(&ctx)?
                .stop()
                .await
                .map_err(|e| admin_error(e.to_string()))?;
            info!(target: "lanes::admin", "batcher stopped");
            Ok::<_, ErrorObjectOwned>(true)
        })
        .expect("unique names");
    module
        .register_async_method("admin_startBatcher", |_, ctx, _| async move {
            batcher(&ctx)?
                .start()
                .await
                .map_err(|e| admin_error(e.to_string()))?;
            info!(target: "lanes::admin", "batcher started");
            Ok::<_, ErrorObjectOwned>(true)
        })
        .expect("unique names");
    module
        .register_async_method("admin_flushBatcher", |_, ctx, _| async move {
            let posted = batcher(&ctx)?
                .flush()
                .await
                .map_err(|e| admin_error(e.to_string()))?;
            info!(target: "lanes::admin", posted, "batcher flushed");
            Ok::<_, ErrorObjectOwned>(alloy_primitives::U64::from(posted))
        })
        .expect("unique names");
    module
        .register_async_method("admin_stopSequencer", |_, ctx, _| async move {
            let mut paused_at = ctx.paused_at.subscribe();
            ctx.pause.send_replace(true);
            let waited = tokio::time::timeout(ctx.pause_timeout, paused_at.wait_for(Option::is_some))
                .await;
            match waited {
                Ok(Ok(_)) => {
                    let head = ctx.chain.head();
                    info!(target: "lanes::admin", head = head.number(), hash = %head.hash, "sequencer stopped");
                    Ok(head.hash)
                }
                _ => Err(admin_error("block production did not pause in time")),
            }
        })
        .expect("unique names");
    module
        .register_async_method("admin_startSequencer", |_, ctx, _| async move {
            ctx.pause.send_replace(false);
            info!(target: "lanes::admin", "sequencer started");
            Ok::<_, ErrorObjectOwned>(true)
        })
        .expect("unique names");
    module
}

#[derive(Clone)]
struct Server {
    module: Arc<RpcModule<AdminContext>>,
    secret: Arc<[u8; 32]>,
}

async fn handle(State(server): State<Server>, headers: HeaderMap, body: Bytes) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return (StatusCode::UNAUTHORIZED, "missing bearer token").into_response();
    };
    if let Err(why) = verify_token(&server.secret, token, now_secs()) {
        warn!(target: "lanes::admin", %why, "admin request refused");
        return (StatusCode::UNAUTHORIZED, why).into_response();
    }
    let Ok(body) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not UTF-8").into_response();
    };
    match server.module.raw_json_request(body, 1).await {
        Ok((response, _)) => (
            [(header::CONTENT_TYPE, "application/json")],
            response.get().to_owned(),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("invalid JSON-RPC request: {e}"),
        )
            .into_response(),
    }
}

/// Binds `addr` and serves the admin methods until `shutdown` fires.
pub async fn serve(
    addr: SocketAddr,
    secret: [u8; 32],
    ctx: AdminContext,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/", post(handle))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(Server {
            module: Arc::new(module(ctx)),
            secret: Arc::new(secret),
        });
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = result {
            warn!(target: "lanes::admin", error = %e, "admin endpoint failed");
        }
    });
    info!(target: "lanes::admin", addr = %bound, "admin endpoint listening");
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_check_signature_algorithm_and_age() {
        let secret = [7u8; 32];
        let now = 1_700_000_000;
        let token = make_token(&secret, now);
        assert_eq!(verify_token(&secret, &token, now), Ok(()));
        assert_eq!(verify_token(&secret, &token, now + 60), Ok(()));
        assert!(
            verify_token(&secret, &token, now + 61)
                .unwrap_err()
                .contains("stale")
        );
        assert!(
            verify_token(&secret, &token, now - 61)
                .unwrap_err()
                .contains("stale")
        );
        assert_eq!(
            verify_token(&[8u8; 32], &token, now),
            Err("bad signature".into())
        );
        // Same claims, "none" algorithm, no signature: refused.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = token.split('.').nth(1).unwrap();
        let none = format!("{}.{claims}.", b64.encode(br#"{"alg":"none"}"#));
        assert!(verify_token(&secret, &none, now).is_err());
        assert!(verify_token(&secret, "a.b", now).is_err());
    }

    #[test]
    fn secret_file_is_created_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt.hex");
        let created = load_or_create_secret(&path).unwrap();
        assert_eq!(load_or_create_secret(&path).unwrap(), created);
        std::fs::write(&path, "0x1234").unwrap();
        assert!(load_or_create_secret(&path).is_err());
    }
}
