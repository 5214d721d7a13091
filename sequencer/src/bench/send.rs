//! Sending: set-up transactions (submitted and confirmed wave by wave), the timed phase's
//! batches over several connections, and the once-a-second progress line.

use super::{
    BenchError, Shared,
    rpc::{RpcClient, quantity},
    stats::error_kind,
    workload::SignedTx,
};
use serde_json::{Value, json};
use std::{
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

/// Submits set-up transactions in order and waits for all their receipts, which must all
/// report success.
pub async fn submit_and_confirm(
    client: &RpcClient,
    txs: &[SignedTx],
    what: &str,
) -> Result<(), BenchError> {
    for chunk in txs.chunks(500) {
        let raws: Vec<&str> = chunk.iter().map(|t| t.raw.as_str()).collect();
        for result in client.send_raw_batch(&raws).await? {
            if let Err(e) = result
                && !e.message.starts_with("already known")
            {
                return Err(BenchError::Setup(format!(
                    "{what}: a transaction was refused: {} ({})",
                    e.message, e.code
                )));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut waiting: Vec<&SignedTx> = txs.iter().collect();
    while !waiting.is_empty() {
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "{what}: {} transactions not included after 120 s",
                waiting.len()
            )));
        }
        let mut still = Vec::new();
        for chunk in waiting.chunks(500) {
            let params: Vec<Value> = chunk.iter().map(|t| json!([t.hash])).collect();
            let receipts = client.batch("eth_getTransactionReceipt", &params).await?;
            for (tx, receipt) in chunk.iter().zip(receipts) {
                match receipt {
                    Ok(Value::Null) => still.push(*tx),
                    Ok(receipt) => {
                        if quantity(&receipt["status"]) != Some(1) {
                            return Err(BenchError::Setup(format!(
                                "{what}: transaction {} reverted",
                                tx.hash
                            )));
                        }
                    }
                    Err(e) => {
                        return Err(BenchError::Setup(format!(
                            "{what}: eth_getTransactionReceipt: {}",
                            e.message
                        )));
                    }
                }
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Sends `range` of the run's transactions as one batch and counts the outcomes.
async fn send_batch(client: &RpcClient, shared: &Shared, range: Range<usize>) {
    let now_us = shared.t0.elapsed().as_micros() as u64 + 1;
    for i in range.clone() {
        shared.send_us[i].store(now_us, Ordering::Relaxed);
    }
    let raws: Vec<&str> = shared.txs[range.clone()]
        .iter()
        .map(|t| t.raw.as_str())
        .collect();
    shared.sent.fetch_add(raws.len() as u64, Ordering::Relaxed);
    match client.send_raw_batch(&raws).await {
        Ok(results) => {
            let mut ok = 0;
            for result in results {
                match result {
                    Ok(()) => ok += 1,
                    Err(e) => shared.error(error_kind(e.code, &e.message), 1),
                }
            }
            shared.accepted.fetch_add(ok, Ordering::Relaxed);
        }
        Err(e) => {
            let text = e.to_string();
            let kind = format!("transport: {}", text.chars().take(80).collect::<String>());
            shared.error(kind, raws.len() as u64);
        }
    }
}

/// The timed phase. Returns whether the pre-signed transactions ran out early.
pub async fn send_phase(
    url: &str,
    shared: Arc<Shared>,
    rate: Option<f64>,
    duration: Duration,
    connections: usize,
    batch: usize,
    max_inflight: u64,
) -> Result<bool, BenchError> {
    let total = shared.txs.len();
    let exhausted = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    match rate {
        Some(rate) => {
            // Open loop: a clock releases what is due every few milliseconds, whatever the
            // node's answers; connections take released batches as they free up.
            let (tx, rx) = mpsc::unbounded_channel::<Range<usize>>();
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..connections {
                let client = RpcClient::new(url, Duration::from_secs(60))?;
                let (rx, shared) = (rx.clone(), shared.clone());
                workers.push(tokio::spawn(async move {
                    loop {
                        let range = rx.lock().await.recv().await;
                        let Some(range) = range else { break };
                        send_batch(&client, &shared, range).await;
                    }
                }));
            }
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut released = 0usize;
            loop {
                tick.tick().await;
                let elapsed = shared.t0.elapsed();
                let due = ((rate * elapsed.min(duration).as_secs_f64()) as usize).min(total);
                while released < due {
                    let end = due.min(released + batch);
                    let _ = tx.send(released..end);
                    released = end;
                }
                if elapsed >= duration {
                    break;
                }
                if released >= total {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        None => {
            // Closed loop: each connection sends its next batch as soon as the previous
            // one is answered, holding back while too many are in the pool.
            let cursor = Arc::new(AtomicUsize::new(0));
            for _ in 0..connections {
                let client = RpcClient::new(url, Duration::from_secs(60))?;
                let (cursor, shared, exhausted) =
                    (cursor.clone(), shared.clone(), exhausted.clone());
                workers.push(tokio::spawn(async move {
                    while shared.t0.elapsed() < duration {
                        let in_flight = shared
                            .accepted
                            .load(Ordering::Relaxed)
                            .saturating_sub(shared.included.load(Ordering::Relaxed));
                        if in_flight >= max_inflight {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            continue;
                        }
                        let start = cursor.fetch_add(batch, Ordering::Relaxed);
                        if start >= total {
                            exhausted.store(true, Ordering::Relaxed);
                            break;
                        }
                        send_batch(&client, &shared, start..(start + batch).min(total)).await;
                    }
                }));
            }
        }
    }
    for worker in workers {
        let _ = worker.await;
    }
    Ok(exhausted.load(Ordering::Relaxed))
}

/// Counters at the end of one second of the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Sent so far.
    pub sent: u64,
    /// Accepted so far.
    pub accepted: u64,
    /// Failed so far.
    pub failed: u64,
    /// Included so far.
    pub included: u64,
    /// `txpool_status` (pending, queued), if the node serves it.
    pub pool: Option<(u64, u64)>,
}

/// Prints a progress line every second until `stop`; returns the per-second samples.
pub async fn monitor(
    client: RpcClient,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut pool_supported = true;
    let mut previous = Sample::default();
    let mut second = 1u64;
    loop {
        let due = shared.t0 + Duration::from_secs(second);
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = stop.cancelled() => break,
        }
        let mut sample = Sample {
            sent: shared.sent.load(Ordering::Relaxed),
            accepted: shared.accepted.load(Ordering::Relaxed),
            failed: shared.failed.load(Ordering::Relaxed),
            included: shared.included.load(Ordering::Relaxed),
            pool: None,
        };
        if pool_supported {
            match client.call::<Value>("txpool_status", json!([])).await {
                Ok(status) => {
                    sample.pool = Some((
                        quantity(&status["pending"]).unwrap_or(0),
                        quantity(&status["queued"]).unwrap_or(0),
                    ))
                }
                Err(BenchError::Rpc { code: -32601, .. }) => pool_supported = false,
                Err(_) => {}
            }
        }
        let latency = shared.live.lock().latencies.percentiles();
        eprintln!(
            "[{second:>4}s] sent {:>7} ({:>6}/s)  accepted {:>7}  included {:>7} ({:>6}/s)  pool {}  errors {}  latency p50 {:.0} ms p99 {:.0} ms",
            sample.sent,
            sample.sent - previous.sent,
            sample.accepted,
            sample.included,
            sample.included - previous.included,
            sample
                .pool
                .map_or("n/a".to_string(), |(p, q)| format!("{p}+{q}")),
            sample.failed,
            latency.p50,
            latency.p99,
        );
        samples.push(sample);
        previous = sample;
        second += 1;
    }
    samples
}
