//! The batch format: what the batcher posts to L1 and derivation reads back.
//!
//! A batch is a contiguous range of L2 blocks with everything needed to re-execute them on top
//! of the previous batch's state and to check the result:
//!
//! - per block, the execution environment the sequencer chose (timestamp, fee recipient, gas
//!   limit, base fee, prevrandao, parent beacon block root, excess blob gas; the number and
//!   parent hash follow from the position in the chain), the transactions as EIP-2718 bytes in
//!   block order, and the resulting state root and block hash;
//! - per batch, the chain id, the first block number, the parent hash of the first block and
//!   the number of L1 -> L2 messages executed by the last block (the rollup's
//!   `l1MessagesIncluded`).
//!
//! Wire form (version 1): `[version = 0x01][codec][payload]`, where `codec` is 0 (none),
//! 1 (zstd) or 2 (brotli) and `payload` is the compressed RLP of [`BatchData`]. The same bytes
//! go into calldata (`submitBatch(header, data)`) or into blobs (alloy's `SimpleCoder`
//! framing). Decoding caps the decompressed size, so a small posted batch cannot make a
//! deriving node allocate gigabytes.

use std::io::{Read, Write};

use alloy_primitives::{Address, B256, Bytes};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};
use lanes_executor::{BlockEnvInput, SealedBlock};

/// Version byte of the batches this code writes.
pub const FORMAT_VERSION: u8 = 1;

/// Decoding refuses batches whose uncompressed form is larger than this by default (16 MiB,
/// about 100 times the largest batch one L1 transaction carries).
pub const DEFAULT_MAX_DECOMPRESSED: usize = 16 << 20;

/// Why a batch could not be encoded or decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// Fewer bytes than the two-byte prefix.
    #[error("batch of {0} bytes is too short")]
    TooShort(usize),
    /// The version byte is not one this code reads.
    #[error("unsupported batch version {0}")]
    UnsupportedVersion(u8),
    /// The codec byte is unknown.
    #[error("unknown batch codec {0}")]
    UnknownCodec(u8),
    /// The decompressed batch would exceed the cap.
    #[error("batch decompresses to more than {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// The compressed stream is corrupt.
    #[error("cannot decompress batch: {0}")]
    Decompress(String),
    /// Compression failed (invalid level).
    #[error("cannot compress batch: {0}")]
    Compress(String),
    /// The decompressed bytes are not a batch.
    #[error("malformed batch: {0}")]
    Malformed(String),
}

/// Compression codec of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Stored as is.
    None,
    /// Zstandard (levels 1 to 22).
    Zstd,
    /// Brotli (levels 0 to 11), window 2^22.
    Brotli,
}

impl Codec {
    /// The byte that names the codec on the wire.
    pub fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Zstd => 1,
            Self::Brotli => 2,
        }
    }

    /// The codec named by `id`.
    pub fn from_id(id: u8) -> Result<Self, FormatError> {
        match id {
            0 => Ok(Self::None),
            1 => Ok(Self::Zstd),
            2 => Ok(Self::Brotli),
            other => Err(FormatError::UnknownCodec(other)),
        }
    }

    /// Lowercase name, as in the config.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Zstd => "zstd",
            Self::Brotli => "brotli",
        }
    }
}

/// A codec and its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Compression {
    /// The codec.
    pub codec: Codec,
    /// Its level (ignored for [`Codec::None`]).
    pub level: i32,
}

impl Compression {
    /// The compression `[batcher]` configures.
    pub fn from_config(config: &lanes_config::BatcherConfig) -> Self {
        let codec = match config.compression {
            lanes_config::Compression::Zstd => Codec::Zstd,
            lanes_config::Compression::Brotli => Codec::Brotli,
            lanes_config::Compression::None => Codec::None,
        };
        Self {
            codec,
            level: config.compression_level,
        }
    }

    /// Compresses `raw`.
    pub fn compress(&self, raw: &[u8]) -> Result<Vec<u8>, FormatError> {
        match self.codec {
            Codec::None => Ok(raw.to_vec()),
            Codec::Zstd => zstd::bulk::compress(raw, self.level)
                .map_err(|e| FormatError::Compress(e.to_string())),
            Codec::Brotli => {
                let mut out = Vec::with_capacity(raw.len() / 2);
                {
                    let quality = self.level.clamp(0, 11) as u32;
                    let mut writer = brotli::CompressorWriter::new(&mut out, 1 << 16, quality, 22);
                    writer
                        .write_all(raw)
                        .map_err(|e| FormatError::Compress(e.to_string()))?;
                    writer
                        .flush()
                        .map_err(|e| FormatError::Compress(e.to_string()))?;
                }
                Ok(out)
            }
        }
    }
}

/// Decompresses `payload` written with `codec`, refusing to produce more than `limit` bytes.
pub fn decompress(codec: Codec, payload: &[u8], limit: usize) -> Result<Vec<u8>, FormatError> {
    let reader: Box<dyn Read + '_> = match codec {
        Codec::None => Box::new(payload),
        Codec::Zstd => Box::new(
            zstd::stream::read::Decoder::new(payload)
                .map_err(|e| FormatError::Decompress(e.to_string()))?,
        ),
        Codec::Brotli => Box::new(brotli::Decompressor::new(payload, 1 << 16)),
    };
    // Read one byte past the cap: getting it means the stream is over the limit, and the
    // allocation never grows beyond limit + 1 whatever the stream claims.
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| FormatError::Decompress(e.to_string()))?;
    if out.len() > limit {
        return Err(FormatError::TooLarge { limit });
    }
    Ok(out)
}

/// One L2 block in a batch.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct BatchBlock {
    /// Unix timestamp (seconds).
    pub timestamp: u64,
    /// Fee recipient.
    pub beneficiary: Address,
    /// Gas limit.
    pub gas_limit: u64,
    /// EIP-1559 base fee.
    pub base_fee: u64,
    /// PREVRANDAO (header `mix_hash`).
    pub prevrandao: B256,
    /// EIP-4788 parent beacon block root.
    pub parent_beacon_block_root: B256,
    /// EIP-4844 excess blob gas.
    pub excess_blob_gas: u64,
    /// The transactions, EIP-2718 encoded, in block order.
    pub transactions: Vec<Bytes>,
    /// State root after the block.
    pub state_root: B256,
    /// Hash of the block's header.
    pub hash: B256,
}

impl BatchBlock {
    /// The batch entry of a sealed block.
    pub fn from_sealed(block: &SealedBlock) -> Self {
        use alloy_eips::eip2718::Encodable2718;
        let header = &block.header;
        Self {
            timestamp: header.timestamp,
            beneficiary: header.beneficiary,
            gas_limit: header.gas_limit,
            base_fee: header.base_fee_per_gas.unwrap_or_default(),
            prevrandao: header.mix_hash,
            parent_beacon_block_root: header.parent_beacon_block_root.unwrap_or_default(),
            excess_blob_gas: header.excess_blob_gas.unwrap_or_default(),
            transactions: block
                .transactions
                .iter()
                .map(|tx| Bytes::from(tx.tx.inner().encoded_2718()))
                .collect(),
            state_root: header.state_root,
            hash: block.hash,
        }
    }

    /// The environment to re-execute this block as block `number` on top of `parent_hash`.
    pub fn env(&self, number: u64, parent_hash: B256) -> BlockEnvInput {
        BlockEnvInput {
            number,
            parent_hash,
            timestamp: self.timestamp,
            beneficiary: self.beneficiary,
            gas_limit: self.gas_limit,
            base_fee: self.base_fee,
            prevrandao: self.prevrandao,
            parent_beacon_block_root: self.parent_beacon_block_root,
            // Replay must include every transaction and nothing else.
            max_txs: self.transactions.len(),
            excess_blob_gas: self.excess_blob_gas,
        }
    }

    /// Size of this entry in the uncompressed batch.
    pub fn encoded_len(&self) -> usize {
        self.length()
    }
}

/// The uncompressed content of a batch.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct BatchData {
    /// L2 chain id (a batch of another chain fails derivation instead of corrupting it).
    pub chain_id: u64,
    /// Number of the first block.
    pub first_block: u64,
    /// Hash of the block before the first one.
    pub parent_hash: B256,
    /// L1 -> L2 messages (portal deposit nonces `0..n`) executed by the last block.
    pub l1_messages_included: u64,
    /// The blocks, `first_block` onwards.
    pub blocks: Vec<BatchBlock>,
}

impl BatchData {
    /// Number of the last block.
    pub fn last_block(&self) -> u64 {
        self.first_block + self.blocks.len() as u64 - 1
    }

    /// State root after the last block.
    pub fn new_state_root(&self) -> B256 {
        self.blocks.last().map(|b| b.state_root).unwrap_or_default()
    }

    /// Number of transactions in the batch.
    pub fn transaction_count(&self) -> usize {
        self.blocks.iter().map(|b| b.transactions.len()).sum()
    }

    /// The uncompressed RLP.
    pub fn to_rlp(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.length());
        self.encode(&mut out);
        out
    }

    /// Parses the uncompressed RLP, checking the structural rules: at least one block, a
    /// first block after genesis, no trailing bytes.
    pub fn from_rlp(mut raw: &[u8]) -> Result<Self, FormatError> {
        let data =
            Self::decode(&mut raw).map_err(|e| FormatError::Malformed(format!("RLP: {e}")))?;
        if !raw.is_empty() {
            return Err(FormatError::Malformed(format!(
                "{} trailing bytes after the batch",
                raw.len()
            )));
        }
        if data.blocks.is_empty() {
            return Err(FormatError::Malformed("batch without blocks".into()));
        }
        if data.first_block == 0 {
            return Err(FormatError::Malformed(
                "batch starts at genesis (block 0)".into(),
            ));
        }
        if data
            .first_block
            .checked_add(data.blocks.len() as u64)
            .is_none()
        {
            return Err(FormatError::Malformed("block numbers overflow".into()));
        }
        Ok(data)
    }

    /// The wire form: version, codec, compressed RLP.
    pub fn encode_batch(&self, compression: Compression) -> Result<Vec<u8>, FormatError> {
        encode_frame(&self.to_rlp(), compression)
    }

    /// Parses the wire form, refusing batches that decompress to more than
    /// `max_decompressed` bytes.
    pub fn decode_batch(bytes: &[u8], max_decompressed: usize) -> Result<Self, FormatError> {
        Self::from_rlp(&decode_frame(bytes, max_decompressed)?)
    }
}

/// Wraps an uncompressed batch in the wire form.
pub fn encode_frame(raw: &[u8], compression: Compression) -> Result<Vec<u8>, FormatError> {
    let payload = compression.compress(raw)?;
    let mut out = Vec::with_capacity(payload.len() + 2);
    out.push(FORMAT_VERSION);
    out.push(compression.codec.id());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Unwraps the wire form into the uncompressed batch.
pub fn decode_frame(bytes: &[u8], max_decompressed: usize) -> Result<Vec<u8>, FormatError> {
    let [version, codec, payload @ ..] = bytes else {
        return Err(FormatError::TooShort(bytes.len()));
    };
    if *version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion(*version));
    }
    decompress(Codec::from_id(*codec)?, payload, max_decompressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block_strategy() -> impl Strategy<Value = BatchBlock> {
        (
            any::<u64>(),
            any::<[u8; 20]>(),
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<u64>(),
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..8),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
        )
            .prop_map(
                |(ts, ben, gl, bf, rand, beacon, ebg, txs, root, hash)| BatchBlock {
                    timestamp: ts,
                    beneficiary: Address::from(ben),
                    gas_limit: gl,
                    base_fee: bf,
                    prevrandao: B256::from(rand),
                    parent_beacon_block_root: B256::from(beacon),
                    excess_blob_gas: ebg,
                    transactions: txs.into_iter().map(Bytes::from).collect(),
                    state_root: B256::from(root),
                    hash: B256::from(hash),
                },
            )
    }

    fn data_strategy() -> impl Strategy<Value = BatchData> {
        (
            any::<u64>(),
            1..u64::MAX / 2,
            any::<[u8; 32]>(),
            any::<u64>(),
            prop::collection::vec(block_strategy(), 1..6),
        )
            .prop_map(|(chain_id, first, parent, l1, blocks)| BatchData {
                chain_id,
                first_block: first,
                parent_hash: B256::from(parent),
                l1_messages_included: l1,
                blocks,
            })
    }

    fn all_compressions() -> [Compression; 5] {
        [
            Compression {
                codec: Codec::None,
                level: 0,
            },
            Compression {
                codec: Codec::Zstd,
                level: 1,
            },
            Compression {
                codec: Codec::Zstd,
                level: 19,
            },
            Compression {
                codec: Codec::Brotli,
                level: 0,
            },
            Compression {
                codec: Codec::Brotli,
                level: 11,
            },
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trips_with_every_codec(data in data_strategy()) {
            for compression in all_compressions() {
                let encoded = data.encode_batch(compression).unwrap();
                prop_assert_eq!(encoded[0], FORMAT_VERSION);
                prop_assert_eq!(encoded[1], compression.codec.id());
                let decoded = BatchData::decode_batch(&encoded, DEFAULT_MAX_DECOMPRESSED).unwrap();
                prop_assert_eq!(&decoded, &data);
            }
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            // Whatever L1 holds, decoding returns an error or a batch; it never panics.
            let _ = BatchData::decode_batch(&bytes, 1 << 20);
        }
    }

    fn sample() -> BatchData {
        BatchData {
            chain_id: 42069,
            first_block: 7,
            parent_hash: B256::repeat_byte(1),
            l1_messages_included: 3,
            blocks: vec![BatchBlock {
                timestamp: 1_700_000_000,
                beneficiary: Address::repeat_byte(2),
                gas_limit: 30_000_000,
                base_fee: 7,
                prevrandao: B256::repeat_byte(3),
                parent_beacon_block_root: B256::ZERO,
                excess_blob_gas: 0,
                transactions: vec![Bytes::from_static(&[2, 0xc0])],
                state_root: B256::repeat_byte(4),
                hash: B256::repeat_byte(5),
            }],
        }
    }

    #[test]
    fn zip_bombs_are_refused_without_allocating_them() {
        // 64 MiB of zeros compress to a few KiB.
        let bomb = vec![0u8; 64 << 20];
        for compression in [
            Compression {
                codec: Codec::Zstd,
                level: 3,
            },
            Compression {
                codec: Codec::Brotli,
                level: 5,
            },
        ] {
            let frame = encode_frame(&bomb, compression).unwrap();
            assert!(frame.len() < 64 << 10, "{} bytes", frame.len());
            let err = BatchData::decode_batch(&frame, 1 << 20).unwrap_err();
            assert_eq!(err, FormatError::TooLarge { limit: 1 << 20 });
            let err = decode_frame(&frame, DEFAULT_MAX_DECOMPRESSED).unwrap_err();
            assert_eq!(
                err,
                FormatError::TooLarge {
                    limit: DEFAULT_MAX_DECOMPRESSED
                }
            );
        }
        // At exactly the cap it decodes.
        let frame = encode_frame(
            &[7u8; 1000],
            Compression {
                codec: Codec::Zstd,
                level: 3,
            },
        )
        .unwrap();
        assert_eq!(decode_frame(&frame, 1000).unwrap().len(), 1000);
        assert!(decode_frame(&frame, 999).is_err());
    }

    #[test]
    fn rejects_bad_frames_and_structures() {
        assert_eq!(
            BatchData::decode_batch(&[1], 100),
            Err(FormatError::TooShort(1))
        );
        let mut frame = sample()
            .encode_batch(Compression {
                codec: Codec::Zstd,
                level: 3,
            })
            .unwrap();
        frame[0] = 9;
        assert_eq!(
            BatchData::decode_batch(&frame, 1 << 20),
            Err(FormatError::UnsupportedVersion(9))
        );
        frame[0] = FORMAT_VERSION;
        frame[1] = 7;
        assert_eq!(
            BatchData::decode_batch(&frame, 1 << 20),
            Err(FormatError::UnknownCodec(7))
        );
        // Corrupt compressed stream.
        frame[1] = Codec::Zstd.id();
        let len = frame.len();
        frame.truncate(len - 3);
        assert!(matches!(
            BatchData::decode_batch(&frame, 1 << 20),
            Err(FormatError::Decompress(_))
        ));

        let mut empty = sample();
        empty.blocks.clear();
        let frame = encode_frame(
            &empty.to_rlp(),
            Compression {
                codec: Codec::None,
                level: 0,
            },
        )
        .unwrap();
        assert!(matches!(
            BatchData::decode_batch(&frame, 1 << 20),
            Err(FormatError::Malformed(_))
        ));
        let mut genesis = sample();
        genesis.first_block = 0;
        let frame = encode_frame(
            &genesis.to_rlp(),
            Compression {
                codec: Codec::None,
                level: 0,
            },
        )
        .unwrap();
        assert!(matches!(
            BatchData::decode_batch(&frame, 1 << 20),
            Err(FormatError::Malformed(_))
        ));
        let mut trailing = sample().to_rlp();
        trailing.push(0x80);
        assert!(matches!(
            BatchData::from_rlp(&trailing),
            Err(FormatError::Malformed(_))
        ));
    }

    #[test]
    fn block_env_follows_the_entry() {
        let block = &sample().blocks[0];
        let env = block.env(7, B256::repeat_byte(9));
        assert_eq!(env.number, 7);
        assert_eq!(env.parent_hash, B256::repeat_byte(9));
        assert_eq!(env.timestamp, block.timestamp);
        assert_eq!(env.beneficiary, block.beneficiary);
        assert_eq!(env.base_fee, block.base_fee);
        assert_eq!(env.prevrandao, block.prevrandao);
        assert_eq!(env.max_txs, 1);
        assert_eq!(sample().last_block(), 7);
    }
}
