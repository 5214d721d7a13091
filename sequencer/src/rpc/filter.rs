//! Polled filters, as geth serves them to clients without WebSocket (ethers' `contract.on`,
//! web3.py's `w3.eth.filter`): `eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`, `eth_getFilterChanges`, `eth_getFilterLogs` and
//! `eth_uninstallFilter`.
//!
//! A block or log filter keeps only a cursor, the next block number it has not reported:
//! a poll reads the committed blocks from there, so a filter costs a few bytes however long
//! its client waits between polls. A pending-transaction filter holds a receiver of the
//! pool's admissions, which keeps the most recent ones only (a client that polls too
//! rarely misses the older ones rather than holding memory). A filter not polled for
//! `rpc.filter_timeout` is removed, as in geth; at most `rpc.max_filters` are installed.

use super::{
    HexIdProvider, RpcContext,
    convert::{RpcTransaction, rpc_pending_transaction},
    error::{LIMIT_EXCEEDED, RpcResult, internal, rpc_error, server_error},
    eth::{blocking, logs_in_range},
};
use alloy_primitives::B256;
use alloy_rpc_types_eth::{Filter, FilterChanges, Log};
use jsonrpsee::{RpcModule, core::traits::IdProvider, types::SubscriptionId};
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::broadcast::{self, error::TryRecvError};

/// What `eth_getFilterChanges` answers.
type Changes = FilterChanges<RpcTransaction, Log>;

/// The installed filters.
#[derive(Debug)]
pub struct Filters {
    installed: Mutex<HashMap<String, Arc<Mutex<Installed>>>>,
    ids: HexIdProvider,
    timeout: Duration,
    max: usize,
}

#[derive(Debug)]
struct Installed {
    kind: Kind,
    /// Last installed or polled.
    touched: Instant,
}

#[derive(Debug)]
enum Kind {
    /// Hashes of new blocks.
    Blocks { next: u64 },
    /// Logs of new blocks that match.
    Logs { filter: Box<Filter>, next: u64 },
    /// Transactions admitted to the pool: hashes, or whole transactions.
    Pending {
        admitted: broadcast::Receiver<B256>,
        full: bool,
    },
}

impl Filters {
    /// No filters; each expires after `timeout` without a poll, and at most `max` exist.
    pub fn new(timeout: Duration, max: usize) -> Self {
        Self {
            installed: Mutex::new(HashMap::new()),
            ids: HexIdProvider::default(),
            timeout,
            max,
        }
    }

    /// Installs a filter and returns its id.
    fn install(&self, kind: Kind) -> RpcResult<String> {
        let mut installed = self.installed.lock();
        self.expire(&mut installed);
        if installed.len() >= self.max {
            return Err(rpc_error(
                LIMIT_EXCEEDED,
                format!(
                    "too many filters installed (rpc.max_filters = {})",
                    self.max
                ),
            ));
        }
        let id = match self.ids.next_id() {
            SubscriptionId::Str(id) => id.into_owned(),
            SubscriptionId::Num(n) => format!("{n:#x}"),
        };
        let filter = Installed {
            kind,
            touched: Instant::now(),
        };
        installed.insert(id.clone(), Arc::new(Mutex::new(filter)));
        Ok(id)
    }

    /// The filter `id`, if installed and not expired.
    fn get(&self, id: &str) -> RpcResult<Arc<Mutex<Installed>>> {
        let mut installed = self.installed.lock();
        self.expire(&mut installed);
        installed
            .get(id)
            .cloned()
            .ok_or_else(|| server_error("filter not found"))
    }

    fn uninstall(&self, id: &str) -> bool {
        let mut installed = self.installed.lock();
        self.expire(&mut installed);
        installed.remove(id).is_some()
    }

    /// Drops filters not polled for the timeout. A filter being polled right now is locked
    /// and was just touched, so it is kept.
    fn expire(&self, installed: &mut HashMap<String, Arc<Mutex<Installed>>>) {
        let now = Instant::now();
        installed.retain(|_, filter| {
            filter
                .try_lock()
                .is_none_or(|f| now.duration_since(f.touched) < self.timeout)
        });
    }

    /// Number of installed filters (expired ones included until the next call).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.installed.lock().len()
    }
}

/// Registers the filter methods on `module`.
pub fn register(
    module: &mut RpcModule<RpcContext>,
) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_method("eth_newFilter", |params, ctx, _| -> RpcResult<String> {
        let filter: Filter = params.one()?;
        if let (Some(from), Some(to)) = (filter.get_from_block(), filter.get_to_block())
            && from > to
        {
            return Err(server_error("invalid from and to block combination"));
        }
        let next = ctx.chain.head().number() + 1;
        ctx.filters.install(Kind::Logs {
            filter: Box::new(filter),
            next,
        })
    })?;
    module.register_method("eth_newBlockFilter", |_, ctx, _| -> RpcResult<String> {
        let next = ctx.chain.head().number() + 1;
        ctx.filters.install(Kind::Blocks { next })
    })?;
    module.register_method(
        "eth_newPendingTransactionFilter",
        |params, ctx, _| -> RpcResult<String> {
            let full: Option<bool> = params.sequence().optional_next()?;
            ctx.filters.install(Kind::Pending {
                admitted: ctx.pool.subscribe_admitted(),
                full: full.unwrap_or(false),
            })
        },
    )?;
    module.register_method("eth_uninstallFilter", |params, ctx, _| -> RpcResult<bool> {
        let id: String = params.one()?;
        Ok(ctx.filters.uninstall(&id))
    })?;
    module.register_async_method("eth_getFilterChanges", |params, ctx, _| async move {
        let id: String = params.one()?;
        let filter = ctx.filters.get(&id)?;
        blocking(move || {
            let mut filter = filter.lock();
            filter.touched = Instant::now();
            changes(&ctx, &mut filter.kind)
        })
        .await
    })?;
    module.register_async_method("eth_getFilterLogs", |params, ctx, _| async move {
        let id: String = params.one()?;
        let filter = ctx.filters.get(&id)?;
        let criteria = {
            let mut filter = filter.lock();
            filter.touched = Instant::now();
            match &filter.kind {
                Kind::Logs { filter, .. } => (**filter).clone(),
                _ => return Err(server_error("filter not found")),
            }
        };
        blocking(move || super::eth::get_logs(&ctx, &criteria)).await
    })?;
    Ok(())
}

/// What happened since the filter's last poll, and moves its cursor past it.
fn changes(ctx: &RpcContext, kind: &mut Kind) -> RpcResult<Changes> {
    let head_block = ctx.chain.head();
    let head = head_block.number();
    match kind {
        Kind::Blocks { next } => {
            // Bounded per poll like a log query; the rest comes with the next poll.
            let last = head.min(next.saturating_add(ctx.config.max_logs_block_range) - 1);
            let mut hashes = Vec::new();
            for number in *next..=last {
                // Headers only: a whole stored block is decoded with its transactions.
                let hash = if number == head {
                    head_block.hash
                } else {
                    match ctx.chain.storage().header(number).map_err(internal)? {
                        Some(header) => header.hash_slow(),
                        None => break,
                    }
                };
                hashes.push(hash);
                *next = number + 1;
            }
            Ok(FilterChanges::Hashes(hashes))
        }
        Kind::Logs { filter, next } => {
            // Explicit block numbers bound the blocks reported; tags ("latest") do not, as
            // in geth's filters.
            let from = filter
                .get_from_block()
                .map_or(*next, |from| from.max(*next));
            let to = filter.get_to_block().map_or(head, |to| to.min(head));
            if from > to {
                *next = (*next).max(head + 1);
                return Ok(FilterChanges::Logs(Vec::new()));
            }
            let last = to.min(from.saturating_add(ctx.config.max_logs_block_range) - 1);
            let (logs, reached) = logs_in_range(ctx, filter, from, last, ctx.config.max_logs)?;
            *next = reached + 1;
            Ok(FilterChanges::Logs(logs))
        }
        Kind::Pending { admitted, full } => {
            let mut hashes = Vec::new();
            loop {
                match admitted.try_recv() {
                    Ok(hash) => hashes.push(hash),
                    // The oldest admissions were overwritten: report what is left.
                    Err(TryRecvError::Lagged(_)) => continue,
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            if !*full {
                return Ok(FilterChanges::Hashes(hashes));
            }
            // Transactions already included or dropped are no longer in the pool.
            let transactions = hashes
                .iter()
                .filter_map(|hash| ctx.pool.get(hash))
                .map(|tx| rpc_pending_transaction(&tx.tx))
                .collect();
            Ok(FilterChanges::Transactions(transactions))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks() -> Kind {
        Kind::Blocks { next: 1 }
    }

    #[test]
    fn filters_expire_unpolled_and_are_bounded() {
        let filters = Filters::new(Duration::from_millis(50), 2);
        let a = filters.install(blocks()).unwrap();
        let b = filters.install(blocks()).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("0x") && a.len() == 34, "geth-style id: {a}");
        let err = filters.install(blocks()).unwrap_err();
        assert_eq!(err.code(), LIMIT_EXCEEDED);
        assert!(
            err.message().contains("rpc.max_filters"),
            "{}",
            err.message()
        );

        // Polling keeps a filter; the one left alone expires and frees its place.
        std::thread::sleep(Duration::from_millis(30));
        filters.get(&a).unwrap().lock().touched = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        assert!(filters.get(&a).is_ok());
        let err = filters.get(&b).unwrap_err();
        assert_eq!(err.message(), "filter not found");
        assert_eq!(filters.len(), 1);
        filters.install(blocks()).unwrap();

        assert!(filters.uninstall(&a));
        assert!(!filters.uninstall(&a));
        assert!(filters.get(&a).is_err());
    }
}
