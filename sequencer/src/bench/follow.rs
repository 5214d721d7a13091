//! Follows the chain over WebSocket (`eth_subscribe` `newHeads`) and matches each block's
//! transaction hashes against the run's, so inclusion latency comes from one notification
//! and one block read per block rather than from polling receipts.

use super::{
    BenchError, Shared,
    rpc::{RpcClient, quantity},
    stats::BlockPoint,
};
use alloy_primitives::B256;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::{sync::Arc, sync::atomic::Ordering, time::Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// The WebSocket URL of an HTTP JSON-RPC URL (the node serves both on one port).
pub fn ws_url(http: &str) -> String {
    if let Some(rest) = http.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http.to_string()
    }
}

/// Subscribes to `newHeads` and returns once the subscription is confirmed; heads then flow
/// (number, arrival time) into the returned channel until `stop`.
pub async fn subscribe(
    ws: &str,
    stop: CancellationToken,
) -> Result<mpsc::UnboundedReceiver<(u64, Instant)>, BenchError> {
    let (mut socket, _) = tokio_tungstenite::connect_async(ws)
        .await
        .map_err(|e| BenchError::Connect(format!("WebSocket {ws}: {e}")))?;
    let request =
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]});
    socket
        .send(Message::text(request.to_string()))
        .await
        .map_err(|e| BenchError::Connect(format!("WebSocket {ws}: {e}")))?;
    // The confirmation comes before any notification.
    loop {
        let message = socket
            .next()
            .await
            .ok_or_else(|| BenchError::Connect("WebSocket closed before subscribing".into()))?
            .map_err(|e| BenchError::Connect(format!("WebSocket: {e}")))?;
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap_or_default();
            if let Some(error) = value.get("error") {
                return Err(BenchError::Connect(format!("eth_subscribe: {error}")));
            }
            if value.get("id") == Some(&json!(1)) {
                break;
            }
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                message = socket.next() => message,
                _ = stop.cancelled() => break,
            };
            let Some(Ok(message)) = message else {
                eprintln!("lanes bench: the newHeads WebSocket closed");
                break;
            };
            let arrival = Instant::now();
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap_or_default();
                if let Some(number) = quantity(&value["params"]["result"]["number"])
                    && tx.send((number, arrival)).is_err()
                {
                    break;
                }
            }
        }
        let _ = socket.close(None).await;
    });
    Ok(rx)
}

/// Reads each announced block (and any the subscription skipped) and records what it holds.
pub async fn process(
    mut heads: mpsc::UnboundedReceiver<(u64, Instant)>,
    mut last: u64,
    client: RpcClient,
    shared: Arc<Shared>,
) -> Result<(), BenchError> {
    while let Some((number, arrival)) = heads.recv().await {
        while last < number {
            last += 1;
            let block: Value = client
                .call(
                    "eth_getBlockByNumber",
                    json!([format!("0x{last:x}"), false]),
                )
                .await?;
            record_block(&shared, &block, last, arrival);
        }
    }
    Ok(())
}

fn record_block(shared: &Shared, block: &Value, number: u64, arrival: Instant) {
    let t = arrival.saturating_duration_since(shared.t0);
    let arrival_us = t.as_micros() as u64;
    let hashes = block["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut ours = 0u64;
    let mut latencies = Vec::new();
    for hash in &hashes {
        let Some(hash) = hash.as_str().and_then(|h| h.parse::<B256>().ok()) else {
            continue;
        };
        let Some(&index) = shared.index.get(&hash) else {
            continue;
        };
        let index = index as usize;
        if shared.included_flags[index].swap(true, Ordering::Relaxed) {
            continue;
        }
        let sent = shared.send_us[index].load(Ordering::Relaxed);
        ours += 1;
        if sent > 0 {
            latencies.push(arrival_us.saturating_sub(sent - 1));
        }
    }
    let point = BlockPoint {
        number,
        t: t.as_secs_f64(),
        txs: hashes.len() as u64,
        ours,
        gas_used: quantity(&block["gasUsed"]).unwrap_or(0),
        base_fee: quantity(&block["baseFeePerGas"]).unwrap_or(0),
    };
    let mut live = shared.live.lock();
    live.record_block(point, &latencies);
    drop(live);
    shared.included.fetch_add(ours, Ordering::Relaxed);
}
