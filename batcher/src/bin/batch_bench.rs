//! `batch-bench`: batch compression on a realistic L2 block mix, for choosing the default
//! codec and level.
//!
//! Builds signed transactions like a busy rollup's (by default 50% ETH transfers, 35% ERC-20
//! transfers, 15% Uniswap-V2-style swaps; 2,000 senders, realistic fees and nonces), packs them
//! into 250 ms blocks of varying size, and encodes one batch of about `--raw-kib` KiB of
//! uncompressed RLP with every codec and level. Prints raw and compressed bytes, the ratio,
//! compression and decompression throughput (median of `--reps` runs), and the L1 gas per L2
//! transaction when the batch is posted as calldata (EIP-7623 floor, 40 gas per non-zero byte,
//! 10 per zero byte) or as blobs (131,072 blob gas per blob; the fixed ~21k + ~60k execution
//! gas of the submit call is added per batch in both cases).
//!
//! Run: `cargo run --release -p lanes-batcher --bin batch-bench -- --raw-kib 512 --reps 5`.

use std::time::{Duration, Instant};

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use lanes_batcher::format::{BatchBlock, BatchData, Codec, Compression, decompress};
use lanes_batcher::txmgr::BLOB_PAYLOAD_BYTES;

struct Args {
    raw_kib: usize,
    reps: usize,
    transfers: u32,
    erc20: u32,
    swaps: u32,
}

fn parse_args() -> Args {
    let mut args = Args {
        raw_kib: 512,
        reps: 5,
        transfers: 50,
        erc20: 35,
        swaps: 15,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--raw-kib" => args.raw_kib = value(),
            "--reps" => args.reps = value().max(1),
            "--transfers" => args.transfers = value() as u32,
            "--erc20" => args.erc20 = value() as u32,
            "--swaps" => args.swaps = value() as u32,
            "--help" | "-h" => {
                println!(
                    "batch-bench [--raw-kib N] [--reps N] [--transfers PCT] [--erc20 PCT] [--swaps PCT]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// A small deterministic generator (splitmix64): the same mix on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn word(address: Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(address.as_slice());
    w
}

fn call(signature: &str, words: &[[u8; 32]]) -> Bytes {
    let mut data = keccak256(signature.as_bytes())[..4].to_vec();
    for w in words {
        data.extend_from_slice(w);
    }
    data.into()
}

fn amount(rng: &mut Rng, max_eth_milli: u64) -> U256 {
    // Amounts people actually send: a few significant digits, then zeros.
    let milli = 1 + rng.below(max_eth_milli);
    U256::from(milli) * U256::from(10u64).pow(U256::from(15))
}

struct World {
    senders: Vec<(PrivateKeySigner, u64)>,
    recipients: Vec<Address>,
    tokens: Vec<Address>,
    router: Address,
}

fn world(rng: &mut Rng) -> World {
    let senders = (0..2_000u64)
        .map(|i| {
            let key = keccak256([b"bench-sender".as_slice(), &i.to_be_bytes()].concat());
            (
                PrivateKeySigner::from_bytes(&key).expect("valid key"),
                rng.below(500),
            )
        })
        .collect();
    let recipients = (0..5_000u64)
        .map(|i| Address::from_word(keccak256(i.to_be_bytes())))
        .collect();
    let tokens = (0..20u64)
        .map(|i| Address::from_word(keccak256([b"token".as_slice(), &i.to_be_bytes()].concat())))
        .collect();
    World {
        senders,
        recipients,
        tokens,
        router: Address::from_word(keccak256(b"router")),
    }
}

fn transaction(world: &mut World, rng: &mut Rng, mix: (u32, u32, u32)) -> TxEnvelope {
    let sender = rng.below(world.senders.len() as u64) as usize;
    let recipient = world.recipients[rng.below(world.recipients.len() as u64) as usize];
    let roll = rng.below(u64::from(mix.0 + mix.1 + mix.2)) as u32;
    let (to, value, input, gas_limit) = if roll < mix.0 {
        (recipient, amount(rng, 5_000), Bytes::new(), 21_000)
    } else if roll < mix.0 + mix.1 {
        let token = world.tokens[rng.below(world.tokens.len() as u64) as usize];
        let data = call(
            "transfer(address,uint256)",
            &[word(recipient), amount(rng, 1_000_000).to_be_bytes()],
        );
        (token, U256::ZERO, data, 65_000)
    } else {
        let a = world.tokens[rng.below(world.tokens.len() as u64) as usize];
        let b = world.tokens[rng.below(world.tokens.len() as u64) as usize];
        let deadline = U256::from(1_750_000_000 + rng.below(3_600));
        // swapExactTokensForTokens(amountIn, amountOutMin, address[] path, to, deadline)
        let data = call(
            "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
            &[
                amount(rng, 100_000).to_be_bytes(),
                (U256::from(rng.next()) * U256::from(1_000_000_000u64)).to_be_bytes(),
                U256::from(160).to_be_bytes(),
                word(world.senders[sender].0.address()),
                deadline.to_be_bytes(),
                U256::from(2).to_be_bytes(),
                word(a),
                word(b),
            ],
        );
        (world.router, U256::ZERO, data, 180_000)
    };
    let (signer, nonce) = &mut world.senders[sender];
    let tx = TxEip1559 {
        chain_id: 42069,
        nonce: *nonce,
        gas_limit,
        max_fee_per_gas: 2_000_000_000 + u128::from(rng.below(4)) * 500_000_000,
        max_priority_fee_per_gas: 1_000_000 * u128::from(1 + rng.below(3)),
        to: TxKind::Call(to),
        value,
        access_list: Default::default(),
        input,
    };
    *nonce += 1;
    let signature = signer.sign_hash_sync(&tx.signature_hash()).expect("signs");
    tx.into_signed(signature).into()
}

fn batch(args: &Args) -> BatchData {
    let mut rng = Rng(7);
    let mut world = world(&mut rng);
    let mix = (args.transfers, args.erc20, args.swaps);
    let mut blocks = Vec::new();
    let mut raw = 0usize;
    let mut number = 1_000u64;
    let mut parent = keccak256(b"parent");
    let mut prevrandao = keccak256(b"randao");
    while raw < args.raw_kib << 10 {
        // Busy but uneven load: 0 to 120 transactions per 250 ms block.
        let count = rng.below(121) as usize;
        let transactions: Vec<Bytes> = (0..count)
            .map(|_| transaction(&mut world, &mut rng, mix).encoded_2718().into())
            .collect();
        prevrandao = keccak256([prevrandao.as_slice(), &number.to_be_bytes()].concat());
        let block = BatchBlock {
            timestamp: 1_750_000_000 + number / 4,
            beneficiary: Address::repeat_byte(0xfe),
            gas_limit: 30_000_000,
            base_fee: 7 + rng.below(3),
            prevrandao,
            parent_beacon_block_root: B256::ZERO,
            excess_blob_gas: 0,
            transactions,
            state_root: keccak256(parent),
            hash: keccak256(prevrandao),
        };
        parent = block.hash;
        raw += block.encoded_len();
        blocks.push(block);
        number += 1;
    }
    BatchData {
        chain_id: 42069,
        first_block: 1_000,
        parent_hash: keccak256(b"parent"),
        l1_messages_included: 0,
        blocks,
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn mib_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / time.as_secs_f64()
}

fn main() {
    let args = parse_args();
    let started = Instant::now();
    let data = batch(&args);
    let raw = data.to_rlp();
    let txs = data.transaction_count();
    println!(
        "block mix: {}% transfers, {}% ERC-20 transfers, {}% swaps; {} blocks, {} transactions, {} raw bytes ({:.1} bytes/tx); generated in {:.1?}",
        args.transfers,
        args.erc20,
        args.swaps,
        data.blocks.len(),
        txs,
        raw.len(),
        raw.len() as f64 / txs as f64,
        started.elapsed()
    );
    println!(
        "{:<8} {:>5} {:>10} {:>11} {:>6} {:>12} {:>12} {:>14} {:>14}",
        "codec",
        "level",
        "raw",
        "compressed",
        "ratio",
        "comp MiB/s",
        "decomp MiB/s",
        "calldata gas/tx",
        "blob gas/tx"
    );
    let mut runs: Vec<(Codec, i32)> = vec![(Codec::None, 0)];
    runs.extend([1, 3, 6, 9, 12, 15, 19, 22].map(|l| (Codec::Zstd, l)));
    runs.extend([1, 4, 6, 9, 10, 11].map(|l| (Codec::Brotli, l)));
    for (codec, level) in runs {
        let compression = Compression { codec, level };
        let mut compress_times = Vec::new();
        let mut compressed = Vec::new();
        for _ in 0..args.reps {
            let t = Instant::now();
            compressed = compression.compress(&raw).expect("compresses");
            compress_times.push(t.elapsed());
        }
        let mut decompress_times = Vec::new();
        for _ in 0..args.reps {
            let t = Instant::now();
            let back = decompress(codec, &compressed, raw.len()).expect("decompresses");
            decompress_times.push(t.elapsed());
            assert_eq!(back.len(), raw.len());
        }
        let framed = compressed.len() + 2;
        let nonzero = compressed.iter().filter(|b| **b != 0).count() as u64 + 2;
        let zero = framed as u64 - nonzero;
        // submitBatch: 21k base + ~60k execution + the EIP-7623 floor on the data.
        let calldata_gas = 21_000 + 60_000 + 40 * nonzero + 10 * zero;
        let blobs = framed.div_ceil(BLOB_PAYLOAD_BYTES) as u64;
        let blob_gas = blobs * 131_072;
        println!(
            "{:<8} {:>5} {:>10} {:>11} {:>6.2} {:>12.1} {:>12.1} {:>14.1} {:>14.1}",
            codec.name(),
            level,
            raw.len(),
            framed,
            raw.len() as f64 / framed as f64,
            mib_per_s(raw.len(), median(compress_times)),
            mib_per_s(raw.len(), median(decompress_times)),
            calldata_gas as f64 / txs as f64,
            // Blob gas only; the ~85k execution gas of submitBatchWithBlobs is per batch.
            blob_gas as f64 / txs as f64,
        );
    }
}
