//! [`BatchBuilder`]: gathers sealed blocks into a batch and decides when to close it.
//!
//! A batch closes
//! - on **size**, when its compressed form would pass `max_bytes` (what one L1 transaction or
//!   its blobs carry): the block that crossed the limit starts the next batch;
//! - on **age**, when its first block has waited `max_age`;
//! - on **demand** ([`BatchBuilder::close`] with [`CloseReason::Flush`]).
//!
//! The compressed size is only known by compressing, so the builder compresses when the raw
//! size reaches the point where, at the last measured ratio, the compressed size would reach
//! the limit; a handful of trial compressions per batch, not one per block.

use std::time::{Duration, Instant};

use alloy_primitives::{B256, Bytes};

use crate::format::{BatchBlock, BatchData, Compression, FormatError};

/// Why a batch was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The next block would have made it too large.
    Size,
    /// Its oldest block waited the maximum batch duration.
    Age,
    /// Someone asked (admin flush, shutdown).
    Flush,
}

impl CloseReason {
    /// Lowercase name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Size => "size",
            Self::Age => "age",
            Self::Flush => "flush",
        }
    }
}

/// Limits of a [`BatchBuilder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuilderConfig {
    /// L2 chain id written into each batch.
    pub chain_id: u64,
    /// Largest encoded (compressed) batch, bytes.
    pub max_bytes: usize,
    /// Longest a block waits in an open batch.
    pub max_age: Duration,
    /// Codec and level.
    pub compression: Compression,
}

/// A batch ready to post.
#[derive(Debug, Clone)]
pub struct ClosedBatch {
    /// Its content.
    pub data: BatchData,
    /// The wire form posted to L1.
    pub encoded: Bytes,
    /// Size of the uncompressed RLP.
    pub raw_bytes: usize,
    /// Why it was closed.
    pub reason: CloseReason,
    /// When it was closed (the start of the posting latency).
    pub closed_at: Instant,
}

impl ClosedBatch {
    /// First L2 block.
    pub fn first_block(&self) -> u64 {
        self.data.first_block
    }

    /// Last L2 block.
    pub fn last_block(&self) -> u64 {
        self.data.last_block()
    }

    /// raw / compressed.
    pub fn compression_ratio(&self) -> f64 {
        self.raw_bytes as f64 / self.encoded.len().max(1) as f64
    }
}

/// Gathers blocks into batches; see the module docs for the closing rules.
#[derive(Debug)]
pub struct BatchBuilder {
    config: BuilderConfig,
    /// Number of the next block to push.
    next_block: u64,
    /// Hash of the block before the open batch's first block.
    parent_hash: B256,
    /// Open blocks with the cumulative L1 message count after each.
    blocks: Vec<(BatchBlock, u64)>,
    raw_bytes: usize,
    opened_at: Option<Instant>,
    /// Raw size at which to compress again to check the size limit.
    next_check: usize,
}

impl BatchBuilder {
    /// An empty builder whose first block will be `next_block`, child of `parent_hash`.
    pub fn new(config: BuilderConfig, next_block: u64, parent_hash: B256) -> Self {
        let mut builder = Self {
            config,
            next_block,
            parent_hash,
            blocks: Vec::new(),
            raw_bytes: 0,
            opened_at: None,
            next_check: 0,
        };
        builder.reset(next_block, parent_hash);
        builder
    }

    /// Drops the open blocks and starts again at `next_block`.
    pub fn reset(&mut self, next_block: u64, parent_hash: B256) {
        self.next_block = next_block;
        self.parent_hash = parent_hash;
        self.blocks.clear();
        self.raw_bytes = 0;
        self.opened_at = None;
        // Compressed output is rarely larger than its input: no need to look before then.
        self.next_check = self.config.max_bytes;
    }

    /// The limits in use.
    pub fn config(&self) -> &BuilderConfig {
        &self.config
    }

    /// Number of the next block [`BatchBuilder::push`] expects.
    pub fn next_block(&self) -> u64 {
        self.next_block
    }

    /// Blocks in the open batch.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether the open batch has no blocks.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Uncompressed size of the open batch's blocks.
    pub fn raw_bytes(&self) -> usize {
        self.raw_bytes
    }

    /// Adds block `next_block()` (with the cumulative number of L1 messages executed by it).
    /// Returns the batch this closed on size, if any; the pushed block is then the first of
    /// the next batch, unless it alone is over the limit, in which case it is the whole of
    /// the returned batch.
    pub fn push(
        &mut self,
        block: BatchBlock,
        l1_messages_included: u64,
        now: Instant,
    ) -> Result<Option<ClosedBatch>, FormatError> {
        self.raw_bytes += block.encoded_len();
        self.blocks.push((block, l1_messages_included));
        self.next_block += 1;
        self.opened_at.get_or_insert(now);
        if self.raw_bytes < self.next_check {
            return Ok(None);
        }
        let encoded = self
            .data(self.blocks.len())
            .encode_batch(self.config.compression)?;
        if encoded.len() <= self.config.max_bytes {
            // Aim the next check at where the limit is reached at the ratio just measured.
            let ratio = self.raw_bytes as f64 / encoded.len().max(1) as f64;
            let room = (self.config.max_bytes - encoded.len()) as f64 * ratio;
            self.next_check = self.raw_bytes + (room as usize).max(1);
            return Ok(None);
        }
        if self.blocks.len() == 1 {
            // One block over the limit cannot be split; post it alone and let L1 judge.
            return Ok(Some(self.finish(1, encoded, CloseReason::Size, now)));
        }
        let count = self.blocks.len() - 1;
        let encoded = self.data(count).encode_batch(self.config.compression)?;
        Ok(Some(self.finish(count, encoded, CloseReason::Size, now)))
    }

    /// Whether the open batch's first block has waited `max_age`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.opened_at
            .is_some_and(|opened| now.saturating_duration_since(opened) >= self.config.max_age)
    }

    /// When the open batch becomes due, if it has blocks.
    pub fn due_at(&self) -> Option<Instant> {
        self.opened_at.map(|opened| opened + self.config.max_age)
    }

    /// Closes the open batch now; `None` if it is empty.
    pub fn close(
        &mut self,
        reason: CloseReason,
        now: Instant,
    ) -> Result<Option<ClosedBatch>, FormatError> {
        if self.blocks.is_empty() {
            return Ok(None);
        }
        let count = self.blocks.len();
        let encoded = self.data(count).encode_batch(self.config.compression)?;
        Ok(Some(self.finish(count, encoded, reason, now)))
    }

    fn data(&self, count: usize) -> BatchData {
        BatchData {
            chain_id: self.config.chain_id,
            first_block: self.next_block - self.blocks.len() as u64,
            parent_hash: self.parent_hash,
            l1_messages_included: self.blocks[count - 1].1,
            blocks: self.blocks[..count]
                .iter()
                .map(|(b, _)| b.clone())
                .collect(),
        }
    }

    /// Takes the first `count` blocks out as a closed batch; the rest stay open.
    fn finish(
        &mut self,
        count: usize,
        encoded: Vec<u8>,
        reason: CloseReason,
        now: Instant,
    ) -> ClosedBatch {
        let data = self.data(count);
        let rest: Vec<_> = self.blocks.drain(count..).collect();
        let next_block = self.next_block;
        self.reset(next_block - rest.len() as u64, data.blocks[count - 1].hash);
        for (block, l1) in rest {
            self.raw_bytes += block.encoded_len();
            self.blocks.push((block, l1));
            self.next_block += 1;
            self.opened_at = Some(now);
        }
        ClosedBatch {
            raw_bytes: data.to_rlp().len(),
            data,
            encoded: encoded.into(),
            reason,
            closed_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Codec, DEFAULT_MAX_DECOMPRESSED};
    use alloy_primitives::{Address, keccak256};

    fn config(max_bytes: usize, codec: Codec) -> BuilderConfig {
        BuilderConfig {
            chain_id: 42069,
            max_bytes,
            max_age: Duration::from_secs(10),
            compression: Compression { codec, level: 3 },
        }
    }

    /// A block whose transactions are `txs` incompressible blobs of `size` bytes.
    fn block(number: u64, txs: usize, size: usize) -> BatchBlock {
        let transactions = (0..txs)
            .map(|i| {
                let mut bytes = Vec::with_capacity(size);
                let mut seed = keccak256([number.to_be_bytes(), (i as u64).to_be_bytes()].concat());
                while bytes.len() < size {
                    bytes.extend_from_slice(seed.as_slice());
                    seed = keccak256(seed);
                }
                bytes.truncate(size);
                Bytes::from(bytes)
            })
            .collect();
        BatchBlock {
            timestamp: 1_000 + number,
            beneficiary: Address::repeat_byte(1),
            gas_limit: 30_000_000,
            base_fee: 7,
            prevrandao: keccak256(number.to_be_bytes()),
            parent_beacon_block_root: B256::ZERO,
            excess_blob_gas: 0,
            transactions,
            state_root: keccak256([number as u8, 1]),
            hash: keccak256([number as u8, 2]),
        }
    }

    #[test]
    fn closes_on_size_and_carries_the_overflowing_block() {
        let max = 10_000;
        let now = Instant::now();
        let mut builder = BatchBuilder::new(config(max, Codec::Zstd), 1, B256::repeat_byte(9));
        let mut closed = Vec::new();
        let mut number = 1;
        while closed.len() < 3 {
            if let Some(batch) = builder.push(block(number, 3, 700), number, now).unwrap() {
                closed.push(batch);
            }
            number += 1;
        }
        let mut expected_first = 1;
        let mut parent = B256::repeat_byte(9);
        for batch in &closed {
            assert_eq!(batch.reason, CloseReason::Size);
            assert!(
                batch.encoded.len() <= max,
                "{} > {max}",
                batch.encoded.len()
            );
            // Full: one more block (about 2.1 KB of random data) would not have fitted.
            assert!(batch.encoded.len() > max - 2_500, "{}", batch.encoded.len());
            assert_eq!(batch.first_block(), expected_first);
            assert_eq!(batch.data.parent_hash, parent);
            assert_eq!(batch.data.l1_messages_included, batch.last_block());
            let decoded =
                BatchData::decode_batch(&batch.encoded, DEFAULT_MAX_DECOMPRESSED).unwrap();
            assert_eq!(decoded, batch.data);
            expected_first = batch.last_block() + 1;
            parent = batch.data.blocks.last().unwrap().hash;
        }
        // The block that overflowed the last batch is open in the next one.
        assert_eq!(builder.next_block(), number);
        assert_eq!(builder.next_block() - builder.len() as u64, expected_first);
        assert!(!builder.is_empty());
    }

    #[test]
    fn a_single_oversized_block_is_its_own_batch() {
        let now = Instant::now();
        let mut builder = BatchBuilder::new(config(1_000, Codec::Brotli), 5, B256::ZERO);
        assert!(builder.push(block(5, 1, 100), 0, now).unwrap().is_none());
        let first = builder.push(block(6, 4, 800), 0, now).unwrap().unwrap();
        assert_eq!((first.first_block(), first.last_block()), (5, 5));
        let alone = builder.push(block(7, 1, 10), 0, now).unwrap();
        // Block 6 alone is over the limit: it went out by itself when block 7 could not join.
        let alone =
            alone.unwrap_or_else(|| builder.close(CloseReason::Flush, now).unwrap().unwrap());
        assert_eq!(alone.first_block(), 6);
        assert!(alone.encoded.len() > 1_000);
    }

    #[test]
    fn closes_on_age_and_on_demand() {
        let start = Instant::now();
        let mut builder = BatchBuilder::new(config(1 << 20, Codec::Zstd), 1, B256::ZERO);
        assert!(
            !builder.is_due(start + Duration::from_secs(3600)),
            "empty is never due"
        );
        assert!(builder.close(CloseReason::Flush, start).unwrap().is_none());

        builder.push(block(1, 1, 50), 0, start).unwrap();
        builder
            .push(block(2, 1, 50), 0, start + Duration::from_secs(9))
            .unwrap();
        assert!(!builder.is_due(start + Duration::from_secs(9)));
        // Age counts from the first block, not the last.
        assert!(builder.is_due(start + Duration::from_secs(10)));
        assert_eq!(builder.due_at(), Some(start + Duration::from_secs(10)));
        let batch = builder
            .close(CloseReason::Age, start + Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!((batch.first_block(), batch.last_block()), (1, 2));
        assert_eq!(batch.reason, CloseReason::Age);
        assert!(builder.is_empty());
        assert!(!builder.is_due(start + Duration::from_secs(100)));

        builder.push(block(3, 2, 50), 2, start).unwrap();
        let flushed = builder.close(CloseReason::Flush, start).unwrap().unwrap();
        assert_eq!((flushed.first_block(), flushed.last_block()), (3, 3));
        assert_eq!(flushed.data.parent_hash, batch.data.blocks[1].hash);
        assert_eq!(flushed.data.l1_messages_included, 2);
        assert!(flushed.compression_ratio() > 0.0);
    }
}
