//! Batched transaction intake as a jsonrpsee middleware.
//!
//! jsonrpsee runs the calls of a batch one after another, so a batch of 100
//! `eth_sendRawTransaction`s would make 100 trips to the CPU pool, each waiting for the
//! previous one's sender recovery. This layer takes each run of consecutive
//! `eth_sendRawTransaction` calls in a batch and hands it to [`TxPool::submit_raw_batch`]:
//! one trip, senders recovered in parallel, transactions admitted in batch order. Every other
//! call, and each call whose parameters don't parse, goes to the inner service in its place in
//! the batch, so the responses and their order are what the server alone would give.

use super::eth::send_raw_response;
use crate::pool::TxPool;
use alloy_primitives::Bytes;
use jsonrpsee::{
    MethodResponse, ResponsePayload,
    core::{
        middleware::{Batch, BatchEntry, Notification, RpcServiceT},
        server::BatchResponseBuilder,
    },
    types::{Id, Request},
};
use std::{future::Future, sync::Arc};

const SEND_RAW: &str = "eth_sendRawTransaction";

/// Installs [`BatchIntake`].
#[derive(Clone, Debug)]
pub struct BatchIntakeLayer {
    pool: Arc<TxPool>,
    max_response_body_size: usize,
}

impl BatchIntakeLayer {
    /// Submits to `pool`; responses follow the server's `max_response_body_size`.
    pub fn new(pool: Arc<TxPool>, max_response_body_size: u32) -> Self {
        Self {
            pool,
            max_response_body_size: max_response_body_size as usize,
        }
    }
}

impl<S> tower::Layer<S> for BatchIntakeLayer {
    type Service = BatchIntake<S>;

    fn layer(&self, service: S) -> Self::Service {
        BatchIntake {
            layer: self.clone(),
            service,
        }
    }
}

/// The middleware service.
#[derive(Clone, Debug)]
pub struct BatchIntake<S> {
    layer: BatchIntakeLayer,
    service: S,
}

fn is_send_raw<'b, 'a, E>(entry: &'b Result<BatchEntry<'a>, E>) -> Option<&'b Request<'a>> {
    match entry {
        Ok(BatchEntry::Call(request)) if request.method_name() == SEND_RAW => Some(request),
        _ => None,
    }
}

impl<S> RpcServiceT for BatchIntake<S>
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
        self.service.call(request)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let service = self.service.clone();
        let pool = self.layer.pool.clone();
        let limit = self.layer.max_response_body_size;
        async move {
            if batch.iter().filter_map(is_send_raw).nth(1).is_none() {
                return service.batch(batch).await;
            }
            // As jsonrpsee's own batch handling, with runs of transactions submitted at once.
            let mut responses = BatchResponseBuilder::new_with_limit(limit);
            let mut got_notification = false;
            let mut entries = batch.into_iter().peekable();
            loop {
                let mut run: Vec<(Id<'a>, Bytes)> = Vec::new();
                while let Some(request) = entries.peek().and_then(is_send_raw) {
                    let Ok(raw) = request.params().one::<Bytes>() else {
                        break;
                    };
                    run.push((request.id(), raw));
                    entries.next();
                }
                if !run.is_empty() {
                    let (ids, raws): (Vec<_>, Vec<_>) = run.into_iter().unzip();
                    let results = pool.submit_raw_batch(raws).await;
                    for (id, result) in ids.into_iter().zip(results) {
                        let response = match send_raw_response(result) {
                            Ok(hash) => {
                                MethodResponse::response(id, ResponsePayload::success(hash), limit)
                            }
                            Err(err) => MethodResponse::error(id, err),
                        };
                        if let Err(too_big) = responses.append(response) {
                            return too_big;
                        }
                    }
                }
                let Some(entry) = entries.next() else {
                    break;
                };
                let response = match entry {
                    Ok(BatchEntry::Call(request)) => service.call(request).await,
                    Ok(BatchEntry::Notification(notification)) => {
                        got_notification = true;
                        service.notification(notification).await;
                        continue;
                    }
                    Err(err) => {
                        let (err, id) = err.into_parts();
                        MethodResponse::error(id, err)
                    }
                };
                if let Err(too_big) = responses.append(response) {
                    return too_big;
                }
            }
            if responses.is_empty() && got_notification {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(responses.finish())
            }
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.service.notification(n)
    }
}
