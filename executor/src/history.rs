//! Recent states for `eth_getProof` and for state reads at recent blocks: RocksDB snapshots
//! of the last committed blocks.
//!
//! The tries in [`crate::Storage`] describe the head only. Rather than keeping reverse
//! diffs of every trie node, each commit pins a RocksDB snapshot (a sequence number: no copy,
//! compaction just keeps the versions it still needs), and proofs at a recent block walk the
//! tries as that snapshot sees them. The snapshots borrow the database, so they live on one
//! thread of their own that owns a handle on it; requests reach it over a channel.

use crate::{
    error::{ExecutorError, ExecutorResult},
    state::StoredAccount,
    trie::{self, AccountProof, db::TrieTables},
};
use alloy_primitives::{Address, B256, U256};
use rocksdb::DB;
use std::{
    collections::VecDeque,
    sync::{Arc, mpsc},
    thread::JoinHandle,
};

/// Builds the trie tables of `db` as `snapshot` sees them (the head's node cache is never
/// used: it holds the head's nodes, not the snapshot's).
pub(crate) type TablesFn = for<'a> fn(&'a DB, &'a rocksdb::Snapshot<'a>) -> TrieTables<'a>;

/// Reads `read` from the flat state columns of `db` as `snapshot` sees them.
pub(crate) type FlatFn =
    for<'a> fn(&'a DB, &'a rocksdb::Snapshot<'a>, FlatRead) -> ExecutorResult<FlatValue>;

/// One read of a pinned block's flat state.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FlatRead {
    /// An account.
    Account(Address),
    /// A storage slot.
    Storage(Address, U256),
}

/// What a [`FlatRead`] found.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FlatValue {
    /// The account, `None` if it does not exist.
    Account(Option<StoredAccount>),
    /// The slot's value.
    Storage(U256),
}

type ProofReply = mpsc::SyncSender<ExecutorResult<Option<((u64, B256), AccountProof)>>>;

enum Request {
    /// Block `number` with `hash` and `state_root` was just committed: pin it.
    Record {
        number: u64,
        hash: B256,
        state_root: B256,
        done: mpsc::SyncSender<()>,
    },
    /// A proof at a pinned block, `None` if the block is not (or no longer) pinned.
    Proof {
        number: u64,
        address: Address,
        slots: Vec<B256>,
        reply: ProofReply,
    },
    /// A read of a pinned block's flat state, `None` if the block is not (or no longer)
    /// pinned.
    Read {
        number: u64,
        read: FlatRead,
        reply: mpsc::SyncSender<ExecutorResult<Option<FlatValue>>>,
    },
}

/// Handle on the snapshot thread; dropping it stops the thread and releases the snapshots
/// (and its reference to the database) before returning.
pub(crate) struct History {
    requests: Option<mpsc::SyncSender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl History {
    /// Keeps the states of the last `keep` committed blocks (`keep` ≥ 1).
    pub(crate) fn start(
        db: Arc<DB>,
        keep: usize,
        tables: TablesFn,
        flat: FlatFn,
    ) -> ExecutorResult<Self> {
        let (requests, rx) = mpsc::sync_channel(64);
        let thread = std::thread::Builder::new()
            .name("lanes-state-history".into())
            .spawn(move || run(&db, keep.max(1), tables, flat, rx))
            .map_err(|e| ExecutorError::Evm(format!("starting the state history thread: {e}")))?;
        Ok(Self {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Pins the database as it is now as the state after block `number`. Waits until the
    /// snapshot is taken, so the caller must not commit the next block before this returns.
    pub(crate) fn record(&self, number: u64, hash: B256, state_root: B256) {
        let (done, ack) = mpsc::sync_channel(1);
        if self.send(Request::Record {
            number,
            hash,
            state_root,
            done,
        }) {
            let _ = ack.recv();
        }
    }

    /// Proofs at pinned block `number`, or `None` when it is not pinned.
    pub(crate) fn proof(
        &self,
        number: u64,
        address: Address,
        slots: &[B256],
    ) -> ExecutorResult<Option<((u64, B256), AccountProof)>> {
        let (reply, answer) = mpsc::sync_channel(1);
        if !self.send(Request::Proof {
            number,
            address,
            slots: slots.to_vec(),
            reply,
        }) {
            return Ok(None);
        }
        answer.recv().unwrap_or(Ok(None))
    }

    /// Reads the flat state of pinned block `number`, or `None` when it is not pinned.
    pub(crate) fn read(&self, number: u64, read: FlatRead) -> ExecutorResult<Option<FlatValue>> {
        let (reply, answer) = mpsc::sync_channel(1);
        if !self.send(Request::Read {
            number,
            read,
            reply,
        }) {
            return Ok(None);
        }
        answer.recv().unwrap_or(Ok(None))
    }

    fn send(&self, request: Request) -> bool {
        self.requests
            .as_ref()
            .is_some_and(|requests| requests.send(request).is_ok())
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(db: &DB, keep: usize, tables: TablesFn, flat: FlatFn, requests: mpsc::Receiver<Request>) {
    let mut pinned: VecDeque<(u64, B256, B256, rocksdb::Snapshot<'_>)> = VecDeque::new();
    for request in requests {
        match request {
            Request::Record {
                number,
                hash,
                state_root,
                done,
            } => {
                // A rewound head (block import replacing blocks) makes later pins stale.
                while pinned.back().is_some_and(|(n, ..)| *n >= number) {
                    pinned.pop_back();
                }
                pinned.push_back((number, hash, state_root, db.snapshot()));
                while pinned.len() > keep {
                    pinned.pop_front();
                }
                let _ = done.send(());
            }
            Request::Proof {
                number,
                address,
                slots,
                reply,
            } => {
                let answer = pinned
                    .iter()
                    .find(|(n, ..)| *n == number)
                    .map(|(number, hash, state_root, snapshot)| {
                        let proof = trie::account_proof(&tables(db, snapshot), address, &slots)?;
                        if proof.state_root != *state_root {
                            return Err(ExecutorError::corrupt(
                                trie::db::ACCOUNT_TRIE,
                                format!(
                                    "the state trie at block {number} gives root {}, its header has {state_root}",
                                    proof.state_root
                                ),
                            ));
                        }
                        Ok(((*number, *hash), proof))
                    })
                    .transpose();
                let _ = reply.send(answer);
            }
            Request::Read {
                number,
                read,
                reply,
            } => {
                let answer = pinned
                    .iter()
                    .find(|(n, ..)| *n == number)
                    .map(|(.., snapshot)| flat(db, snapshot, read))
                    .transpose();
                let _ = reply.send(answer);
            }
        }
    }
}
