//! Receipt blooms that remember the hashes of recent inputs.
//!
//! A receipt's bloom hashes each log's address and every topic with keccak: four hashes for an
//! ERC-20 `Transfer`, a fifth of the time the sequential executor spends on such a transfer.
//! Most of them repeat within a block (the token's address, the event's signature, a popular
//! holder), so a small direct-mapped table of recent inputs with the bloom bits of their
//! hashes saves most of that work. A slot keeps the whole input and is only trusted when the
//! input matches, so a collision costs one hash, never a wrong bit; an input chosen to collide
//! gains nothing over no table at all.
//!
//! [`BloomBits`] is a receipt's bloom before it is spread out: the parallel executor's workers
//! record it so, and the bloom is written once, in the block's receipt.

use alloy_consensus::{Receipt, ReceiptWithBloom};
use alloy_primitives::{Address, B256, Bloom, FixedBytes, Log, keccak256};

/// Slots for log addresses: a block's logs come from few contracts.
const ADDRESS_SLOTS: usize = 64;
/// Slots for topics: event signatures plus the indexed arguments that repeat.
const TOPIC_SLOTS: usize = 256;

/// The three bloom bits one input sets (numbers 0..2048, as [`Bloom::m3_2048`] picks them).
type Bits = [u16; 3];

/// Computes logs blooms, remembering the bloom bits of recent addresses and topics.
pub(crate) struct BloomCache {
    addresses: Box<[(FixedBytes<20>, Bits)]>,
    topics: Box<[(B256, Bits)]>,
}

impl BloomCache {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        // Every slot starts as the zero input with its true bits: no slot is ever "empty".
        let address = (FixedBytes::ZERO, bits_of(&keccak256(Address::ZERO)));
        let topic = (B256::ZERO, bits_of(&keccak256(B256::ZERO)));
        Self {
            addresses: vec![address; ADDRESS_SLOTS].into_boxed_slice(),
            topics: vec![topic; TOPIC_SLOTS].into_boxed_slice(),
        }
    }

    /// Calls `f` with the bits of every input of `logs`: each log's address, then its topics.
    fn each_input(&mut self, logs: &[Log], mut f: impl FnMut(Bits)) {
        for log in logs {
            f(cached_bits(&mut self.addresses, &log.address.0));
            for topic in log.topics() {
                f(cached_bits(&mut self.topics, topic));
            }
        }
    }

    /// The bloom of `logs`, equal to [`Bloom`]'s own for the same logs.
    pub(crate) fn logs_bloom(&mut self, logs: &[Log]) -> Bloom {
        let mut bloom = Bloom::ZERO;
        self.each_input(logs, |bits| set_bits(&mut bloom, bits));
        bloom
    }

    /// The bloom of `logs` in the compact form a worker hands on (see [`BloomBits`]).
    pub(crate) fn logs_bloom_bits(&mut self, logs: &[Log]) -> BloomBits {
        let inputs: usize = logs.iter().map(|log| 1 + log.topics().len()).sum();
        if inputs > INLINE_INPUTS {
            return BloomBits::Full(Box::new(self.logs_bloom(logs)));
        }
        let mut few = [[0; 3]; INLINE_INPUTS];
        let mut len = 0;
        self.each_input(logs, |bits| {
            few[len] = bits;
            len += 1;
        });
        BloomBits::Few {
            len: len as u8,
            bits: few,
        }
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

/// Inputs (log addresses and topics) whose bits [`BloomBits`] keeps inline: a Uniswap V2
/// swap's four logs have fourteen.
const INLINE_INPUTS: usize = 16;

/// A receipt's bloom as the bits of its inputs, until the receipt is put in its block.
///
/// A bloom is 256 bytes and an ERC-20 transfer's sets twelve bits: a parallel worker's record
/// of a transaction carries about 100 bytes of bit numbers instead, and the bloom is written
/// once, where the block keeps it, rather than into the record, read back and written again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BloomBits {
    /// The bits of up to [`INLINE_INPUTS`] inputs.
    Few {
        /// Inputs in `bits`.
        len: u8,
        /// Each input's three bits; those past `len` are unused.
        bits: [Bits; INLINE_INPUTS],
    },
    /// The whole bloom, for receipts with more inputs.
    Full(Box<Bloom>),
}

impl BloomBits {
    /// The bloom.
    #[inline(always)]
    pub(crate) fn to_bloom(&self) -> Bloom {
        match self {
            Self::Few { len, bits } => {
                let mut bloom = Bloom::ZERO;
                for &input in &bits[..*len as usize] {
                    set_bits(&mut bloom, input);
                }
                bloom
            }
            Self::Full(bloom) => **bloom,
        }
    }
}

/// The bits [`Bloom::m3_2048_hashed`] sets for `hash`: each of the first three big-endian
/// byte pairs, modulo 2048.
fn bits_of(hash: &B256) -> Bits {
    [0, 2, 4].map(|i| u16::from_be_bytes([hash[i], hash[i + 1]]) & 0x7FF)
}

/// Sets `bits` in `bloom`, as [`Bloom::m3_2048_hashed`] does (bytes high to low, bits
/// within a byte low to high).
fn set_bits(bloom: &mut Bloom, bits: Bits) {
    for bit in bits {
        let bit = bit as usize;
        bloom[255 - bit / 8] |= 1 << (bit % 8);
    }
}

/// The bloom bits of `input`, from its slot of `table` (a power of two long) if the slot
/// holds it. The slot is picked by the input's last eight bytes, which vary in every common
/// input: addresses, hashes, padded addresses, small numbers.
fn cached_bits<const N: usize>(table: &mut [(FixedBytes<N>, Bits)], input: &FixedBytes<N>) -> Bits {
    let tail: [u8; 8] = input.0[N - 8..].try_into().expect("eight bytes");
    let entry = &mut table[u64::from_be_bytes(tail) as usize & (table.len() - 1)];
    if entry.0 != *input {
        *entry = (*input, bits_of(&keccak256(input)));
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
            assert_eq!(cache.logs_bloom_bits(&logs).to_bloom(), expected(&logs));
        }
    }

    #[test]
    fn many_inputs_keep_the_whole_bloom() {
        let topics = |n: u8| (0..n).map(B256::repeat_byte).collect::<Vec<_>>();
        let mut cache = BloomCache::new();
        // Sixteen inputs fit inline; seventeen do not. Both give alloy's bloom.
        let sixteen = vec![log(Address::repeat_byte(9), topics(3)); 4];
        let mut seventeen = sixteen.clone();
        seventeen.push(log(Address::repeat_byte(8), vec![]));
        assert!(matches!(
            cache.logs_bloom_bits(&sixteen),
            BloomBits::Few { len: 16, .. }
        ));
        assert!(matches!(
            cache.logs_bloom_bits(&seventeen),
            BloomBits::Full(_)
        ));
        for logs in [&sixteen[..], &seventeen[..], &[][..]] {
            assert_eq!(cache.logs_bloom_bits(logs).to_bloom(), expected(logs));
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
                    // Up to 25 inputs: the bits inline and the whole bloom.
                    0..6,
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
                let bits = cache.logs_bloom_bits(&logs);
                let got = cache.with_bloom(receipt.clone());
                prop_assert_eq!(bits.to_bloom(), receipt.bloom_slow());
                prop_assert_eq!(got, receipt.with_bloom());
            }
        }
    }
}
