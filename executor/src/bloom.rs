//! Receipt blooms that remember the hashes of recent inputs.
//!
//! A receipt's bloom hashes each log's address and every topic with keccak: four hashes for an
//! ERC-20 `Transfer`, a fifth of the time the sequential executor spends on such a transfer.
//! Most of them repeat within a block (the token's address, the event's signature, a popular
//! holder), so a small direct-mapped table of recent inputs with their hashes saves most of
//! that work. A slot keeps the whole input and is only trusted when the input matches, so a
//! collision costs one hash, never a wrong bit; an input chosen to collide gains nothing over
//! no table at all.

use alloy_consensus::{Receipt, ReceiptWithBloom};
use alloy_primitives::{Address, B256, Bloom, FixedBytes, Log, keccak256};

/// Slots for log addresses: a block's logs come from few contracts.
const ADDRESS_SLOTS: usize = 64;
/// Slots for topics: event signatures plus the indexed arguments that repeat.
const TOPIC_SLOTS: usize = 256;

/// Computes logs blooms, remembering the keccak hashes of recent addresses and topics.
pub(crate) struct BloomCache {
    addresses: Box<[(FixedBytes<20>, B256)]>,
    topics: Box<[(B256, B256)]>,
}

impl BloomCache {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        // Every slot starts as the zero input with its true hash: no slot is ever "empty".
        let address = (FixedBytes::ZERO, keccak256(Address::ZERO));
        let topic = (B256::ZERO, keccak256(B256::ZERO));
        Self {
            addresses: vec![address; ADDRESS_SLOTS].into_boxed_slice(),
            topics: vec![topic; TOPIC_SLOTS].into_boxed_slice(),
        }
    }

    /// The bloom of `logs`, equal to [`Bloom`]'s own for the same logs.
    pub(crate) fn logs_bloom(&mut self, logs: &[Log]) -> Bloom {
        let mut bloom = Bloom::ZERO;
        for log in logs {
            bloom.m3_2048_hashed(&hash(&mut self.addresses, &log.address.0));
            for topic in log.topics() {
                bloom.m3_2048_hashed(&hash(&mut self.topics, topic));
            }
        }
        bloom
    }

    /// `receipt` with its bloom, as [`Receipt::with_bloom`] makes it.
    pub(crate) fn with_bloom(&mut self, receipt: Receipt) -> ReceiptWithBloom<Receipt> {
        let logs_bloom = self.logs_bloom(&receipt.logs);
        ReceiptWithBloom {
            receipt,
            logs_bloom,
        }
    }
}

/// The keccak hash of `input`, from its slot of `table` (a power of two long) if the slot
/// holds it. The slot is picked by the input's last eight bytes, which vary in every common
/// input: addresses, hashes, padded addresses, small numbers.
fn hash<const N: usize>(table: &mut [(FixedBytes<N>, B256)], input: &FixedBytes<N>) -> B256 {
    let tail: [u8; 8] = input.0[N - 8..].try_into().expect("eight bytes");
    let entry = &mut table[u64::from_be_bytes(tail) as usize & (table.len() - 1)];
    if entry.0 != *input {
        *entry = (*input, keccak256(input));
    }
    entry.1
}

impl Default for BloomCache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for BloomCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BloomCache").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::LogData;
    use proptest::prelude::*;

    fn log(address: Address, topics: Vec<B256>) -> Log {
        Log {
            address,
            data: LogData::new_unchecked(topics, Default::default()),
        }
    }

    fn expected(logs: &[Log]) -> Bloom {
        Receipt {
            status: true.into(),
            cumulative_gas_used: 0,
            logs: logs.to_vec(),
        }
        .bloom_slow()
    }

    #[test]
    fn colliding_inputs_keep_their_own_hashes() {
        // Same last eight bytes, so the same slot: each must still get its own bits.
        let a = Address::repeat_byte(1);
        let mut b = a;
        b.0[0] = 2;
        let t = B256::repeat_byte(3);
        let mut u = t;
        u.0[0] = 4;
        let mut cache = BloomCache::new();
        for logs in [
            vec![log(a, vec![t])],
            vec![log(b, vec![u])],
            vec![log(a, vec![u, t]), log(b, vec![t])],
            vec![log(Address::ZERO, vec![B256::ZERO])],
        ] {
            assert_eq!(cache.logs_bloom(&logs), expected(&logs));
        }
    }

    proptest! {
        /// Over many receipts drawn from a few addresses and topics (so inputs repeat and
        /// collide), the cached bloom is alloy's bloom.
        #[test]
        fn cached_bloom_is_alloys_bloom(
            receipts in prop::collection::vec(
                prop::collection::vec(
                    (0u8..6, prop::collection::vec(0u16..600, 0..=4)),
                    0..4,
                ),
                1..40,
            )
        ) {
            let mut cache = BloomCache::new();
            for logs in receipts {
                let logs: Vec<Log> = logs
                    .into_iter()
                    .map(|(a, topics)| {
                        let topics = topics
                            .into_iter()
                            .map(|t| B256::left_padding_from(&t.to_be_bytes()))
                            .collect();
                        log(Address::repeat_byte(a), topics)
                    })
                    .collect();
                let receipt = Receipt {
                    status: true.into(),
                    cumulative_gas_used: 7,
                    logs: logs.clone(),
                };
                let got = cache.with_bloom(receipt.clone());
                prop_assert_eq!(got, receipt.with_bloom());
            }
        }
    }
}
