//! Workloads: which accounts and contracts a run needs, and the transactions it sends, all
//! signed before the timed phase.
//!
//! Contracts are the executor benchmark's `Token` (ERC-20) and `Pair` (Uniswap-V2-style
//! constant-product pair), embedded as runtime bytecode. They have no constructors, so
//! deployment wraps the runtime code in a small init code that seeds storage (the funder's
//! token supply, a pair's tokens and reserves) and returns the runtime code.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_signer_local::PrivateKeySigner;
use rayon::prelude::*;

/// ERC-20 runtime code (storage: balanceOf slot 0, allowance slot 1, totalSupply slot 2).
const TOKEN_RUNTIME: &str = include_str!("../../../executor/benches-assets/Token.hex");
/// Pair runtime code (storage: token0, token1, reserve0, reserve1 in slots 0..3).
const PAIR_RUNTIME: &str = include_str!("../../../executor/benches-assets/Pair.hex");

/// Gas limits per call kind (measured gas plus headroom; a fresh recipient costs a new slot).
pub const TRANSFER_GAS: u64 = 21_000;
/// ERC-20 `transfer` to a fresh recipient.
pub const ERC20_GAS: u64 = 70_000;
/// `Pair.swap` (a `transferFrom` in, a `transfer` out, two reserve writes).
pub const SWAP_GAS: u64 = 150_000;
/// ERC-20 `approve`.
pub const APPROVE_GAS: u64 = 60_000;
/// Deploying a contract (init code + code deposit).
pub const DEPLOY_GAS: u64 = 1_500_000;

/// Token supply minted to the funder at deployment.
const SUPPLY: u128 = 1_000_000_000_000_000_000_000_000_000_000; // 1e30
/// Each pair's reserve of each token.
const RESERVE: u128 = 1_000_000_000_000_000_000_000_000; // 1e24
/// Tokens handed to each sender of each token it uses.
const SENDER_TOKENS: u128 = 1_000_000_000_000_000_000_000; // 1e21
/// Swap input per swap.
const SWAP_IN: u128 = 1_000_000_000_000_000; // 1e15

/// What the timed phase sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Plain ETH transfers to fresh addresses.
    Transfers,
    /// ERC-20 `transfer`s to fresh addresses.
    Erc20,
    /// Swaps over many Uniswap-V2-style pairs.
    Swap,
    /// A third of the senders each of the above.
    Mixed,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Transfers => "transfers",
            Self::Erc20 => "erc20",
            Self::Swap => "swap",
            Self::Mixed => "mixed",
        })
    }
}

/// What one sender does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ETH transfers.
    Transfer,
    /// ERC-20 transfers.
    Erc20,
    /// Swaps on one pair, alternating direction.
    Swap,
}

impl Workload {
    /// The kind of sender `i`.
    pub fn kind(self, i: usize) -> Kind {
        match self {
            Self::Transfers => Kind::Transfer,
            Self::Erc20 => Kind::Erc20,
            Self::Swap => Kind::Swap,
            Self::Mixed => [Kind::Transfer, Kind::Erc20, Kind::Swap][i % 3],
        }
    }
}

/// Fee settings shared by every transaction of a run.
#[derive(Debug, Clone, Copy)]
pub struct Fees {
    /// Chain id.
    pub chain_id: u64,
    /// EIP-1559 fee cap, wei.
    pub max_fee: u128,
    /// EIP-1559 tip, wei.
    pub tip: u128,
}

/// A signed transaction ready to send.
#[derive(Debug, Clone)]
pub struct SignedTx {
    /// Transaction hash.
    pub hash: B256,
    /// `0x`-prefixed EIP-2718 encoding, as `eth_sendRawTransaction` takes it.
    pub raw: String,
}

/// A transaction before signing.
#[derive(Debug, Clone)]
pub struct Call {
    /// Recipient, or `None` to create a contract.
    pub to: Option<Address>,
    /// Wei sent.
    pub value: U256,
    /// Calldata (or init code).
    pub input: Bytes,
    /// Gas limit.
    pub gas: u64,
}

/// Signs `call` from `key` with `nonce`.
pub fn sign(key: &B256, nonce: u64, call: &Call, fees: &Fees) -> SignedTx {
    let tx = TxEip1559 {
        chain_id: fees.chain_id,
        nonce,
        gas_limit: call.gas,
        max_fee_per_gas: fees.max_fee,
        max_priority_fee_per_gas: fees.tip,
        to: call.to.map_or(TxKind::Create, TxKind::Call),
        value: call.value,
        input: call.input.clone(),
        access_list: Default::default(),
    };
    let signature = alloy_consensus::crypto::secp256k1::sign_message(*key, tx.signature_hash())
        .expect("keys are validated when derived");
    let signed = tx.into_signed(signature);
    let hash = *signed.hash();
    let raw = TxEnvelope::from(signed).encoded_2718();
    SignedTx {
        hash,
        raw: format!("0x{}", hex::encode(raw)),
    }
}

/// A funded account the run sends from.
#[derive(Debug, Clone)]
pub struct Account {
    /// Private key.
    pub key: B256,
    /// Address.
    pub address: Address,
}

impl Account {
    /// The account of `key`, if `key` is a valid secp256k1 secret.
    pub fn from_key(key: B256) -> Option<Self> {
        let signer = PrivateKeySigner::from_bytes(&key).ok()?;
        Some(Self {
            key,
            address: signer.address(),
        })
    }
}

/// `n` fresh accounts derived from `seed` (a new seed per run keeps runs against the same
/// node apart).
pub fn derive_accounts(seed: B256, n: usize) -> Vec<Account> {
    (0..n as u64)
        .into_par_iter()
        .map(|i| {
            let mut attempt = 0u64;
            loop {
                let mut buf = [0u8; 48];
                buf[..32].copy_from_slice(seed.as_slice());
                buf[32..40].copy_from_slice(&i.to_be_bytes());
                buf[40..].copy_from_slice(&attempt.to_be_bytes());
                if let Some(account) = Account::from_key(keccak256(buf)) {
                    return account;
                }
                attempt += 1;
            }
        })
        .collect()
}

/// A fresh recipient address for timed transaction `k`.
fn recipient(seed: B256, k: u64) -> Address {
    let mut buf = [0u8; 41];
    buf[..32].copy_from_slice(seed.as_slice());
    buf[32] = 0xee;
    buf[33..].copy_from_slice(&k.to_be_bytes());
    Address::from_slice(&keccak256(buf)[12..])
}

fn word(a: Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}

/// Calldata: a selector and 32-byte words.
pub fn calldata(signature: &str, words: &[[u8; 32]]) -> Bytes {
    let mut input = keccak256(signature.as_bytes())[..4].to_vec();
    for w in words {
        input.extend_from_slice(w);
    }
    Bytes::from(input)
}

/// Solidity's slot of `mapping(address => _)[key]` declared at `slot`.
fn mapping_slot(key: Address, slot: u64) -> U256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&word(key));
    buf[32..].copy_from_slice(&U256::from(slot).to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(buf).0)
}

/// Init code that stores `stores` (slot, value) and returns `runtime` as the contract code.
pub fn init_code(runtime: &[u8], stores: &[(U256, U256)]) -> Bytes {
    const PUSH32: u8 = 0x7f;
    const SSTORE: u8 = 0x55;
    let mut code = Vec::with_capacity(stores.len() * 67 + 13 + runtime.len());
    for (slot, value) in stores {
        code.push(PUSH32);
        code.extend_from_slice(&value.to_be_bytes::<32>());
        code.push(PUSH32);
        code.extend_from_slice(&slot.to_be_bytes::<32>());
        code.push(SSTORE);
    }
    // PUSH2 len, DUP1, PUSH2 offset, PUSH1 0, CODECOPY, PUSH1 0, RETURN: 13 bytes.
    let offset = code.len() + 13;
    let len = u16::try_from(runtime.len()).expect("runtime code fits in 64 KiB");
    code.push(0x61);
    code.extend_from_slice(&len.to_be_bytes());
    code.push(0x80);
    code.push(0x61);
    code.extend_from_slice(
        &u16::try_from(offset)
            .expect("init prefix fits in 64 KiB")
            .to_be_bytes(),
    );
    code.extend_from_slice(&[0x60, 0x00, 0x39, 0x60, 0x00, 0xf3]);
    code.extend_from_slice(runtime);
    Bytes::from(code)
}

fn runtime(hex_code: &str) -> Vec<u8> {
    hex::decode(hex_code.trim()).expect("embedded bytecode is hex")
}

/// The contracts a workload needs, at the addresses the funder's nonces give them.
#[derive(Debug, Clone, Default)]
pub struct Contracts {
    /// The ERC-20 of the `erc20` workload.
    pub token: Option<Address>,
    /// The two tokens every pair trades.
    pub pair_tokens: Option<(Address, Address)>,
    /// The pairs.
    pub pairs: Vec<Address>,
}

/// The set-up the funder does, in nonce order: deployments, then funding.
#[derive(Debug)]
pub struct SetupPlan {
    /// Funder calls, in nonce order.
    pub funder_calls: Vec<Call>,
    /// Per-sender calls before its timed transactions (approvals), in nonce order.
    pub sender_calls: Vec<Vec<Call>>,
    /// Where the contracts will be.
    pub contracts: Contracts,
}

/// Everything the run needs the funder and the senders to do before the timed phase.
///
/// `timed_per_sender[i]` is how many timed transactions sender `i` will send: it is funded
/// for their gas at the fee cap.
pub fn plan_setup(
    workload: Workload,
    funder: Address,
    funder_nonce: u64,
    senders: &[Account],
    timed_per_sender: &[u64],
    pairs: usize,
    fees: &Fees,
) -> SetupPlan {
    let kinds: Vec<Kind> = (0..senders.len()).map(|i| workload.kind(i)).collect();
    let needs_token = kinds.contains(&Kind::Erc20);
    let needs_pairs = kinds.contains(&Kind::Swap);
    let mut calls = Vec::new();
    let mut next = funder_nonce;
    let mut deploy = |calls: &mut Vec<Call>, input: Bytes| {
        let address = funder.create(next);
        next += 1;
        calls.push(Call {
            to: None,
            value: U256::ZERO,
            input,
            gas: DEPLOY_GAS,
        });
        address
    };
    let supply = U256::from(SUPPLY);
    let token_init = init_code(
        &runtime(TOKEN_RUNTIME),
        &[(mapping_slot(funder, 0), supply), (U256::from(2), supply)],
    );
    let mut contracts = Contracts::default();
    if needs_token {
        contracts.token = Some(deploy(&mut calls, token_init.clone()));
    }
    if needs_pairs {
        let a = deploy(&mut calls, token_init.clone());
        let b = deploy(&mut calls, token_init);
        let pair_code = runtime(PAIR_RUNTIME);
        for _ in 0..pairs.max(1) {
            let init = init_code(
                &pair_code,
                &[
                    (U256::ZERO, U256::from_be_bytes(word(a))),
                    (U256::from(1), U256::from_be_bytes(word(b))),
                    (U256::from(2), U256::from(RESERVE)),
                    (U256::from(3), U256::from(RESERVE)),
                ],
            );
            contracts.pairs.push(deploy(&mut calls, init));
        }
        contracts.pair_tokens = Some((a, b));
        for pair in contracts.pairs.clone() {
            for token in [a, b] {
                calls.push(token_transfer(token, pair, U256::from(RESERVE)));
            }
        }
    }
    let mut sender_calls = Vec::with_capacity(senders.len());
    for (i, sender) in senders.iter().enumerate() {
        let kind = kinds[i];
        let timed = timed_per_sender[i];
        let (gas, value) = match kind {
            Kind::Transfer => (TRANSFER_GAS, U256::from(timed)),
            Kind::Erc20 => (ERC20_GAS, U256::ZERO),
            Kind::Swap => (SWAP_GAS, U256::ZERO),
        };
        let own: Vec<Call> = match kind {
            Kind::Swap => {
                let (a, b) = contracts.pair_tokens.expect("pairs planned");
                let pair = contracts.pairs[i % contracts.pairs.len()];
                [a, b]
                    .into_iter()
                    .map(|token| Call {
                        to: Some(token),
                        value: U256::ZERO,
                        input: calldata(
                            "approve(address,uint256)",
                            &[word(pair), U256::MAX.to_be_bytes()],
                        ),
                        gas: APPROVE_GAS,
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        let own_gas: u64 = own.iter().map(|c| c.gas).sum();
        // Every transaction must be affordable at the fee cap; a fifth more for safety.
        let need = U256::from(fees.max_fee) * U256::from(gas * timed + own_gas) + value;
        let ether = need + need / U256::from(5) + U256::from(1_000_000_000_000_000u64);
        calls.push(Call {
            to: Some(sender.address),
            value: ether,
            input: Bytes::new(),
            gas: TRANSFER_GAS,
        });
        match kind {
            Kind::Erc20 => calls.push(token_transfer(
                contracts.token.expect("token planned"),
                sender.address,
                U256::from(SENDER_TOKENS),
            )),
            Kind::Swap => {
                let (a, b) = contracts.pair_tokens.expect("pairs planned");
                for token in [a, b] {
                    calls.push(token_transfer(
                        token,
                        sender.address,
                        U256::from(SENDER_TOKENS),
                    ));
                }
            }
            Kind::Transfer => {}
        }
        sender_calls.push(own);
    }
    SetupPlan {
        funder_calls: calls,
        sender_calls,
        contracts,
    }
}

fn token_transfer(token: Address, to: Address, amount: U256) -> Call {
    Call {
        to: Some(token),
        value: U256::ZERO,
        input: calldata(
            "transfer(address,uint256)",
            &[word(to), amount.to_be_bytes()],
        ),
        gas: ERC20_GAS,
    }
}

/// The timed transactions, in send order: transaction `k` is sender `k % n`'s
/// `k / n`-th, so consecutive sends come from different senders and each sender's
/// transactions go out in nonce order.
pub fn sign_timed(
    workload: Workload,
    senders: &[Account],
    first_nonces: &[u64],
    contracts: &Contracts,
    seed: B256,
    total: usize,
    fees: &Fees,
) -> Vec<SignedTx> {
    let n = senders.len();
    (0..total)
        .into_par_iter()
        .map(|k| {
            let i = k % n;
            let round = (k / n) as u64;
            let nonce = first_nonces[i] + round;
            let call = match workload.kind(i) {
                Kind::Transfer => Call {
                    to: Some(recipient(seed, k as u64)),
                    value: U256::from(1),
                    input: Bytes::new(),
                    gas: TRANSFER_GAS,
                },
                Kind::Erc20 => token_transfer(
                    contracts.token.expect("token deployed"),
                    recipient(seed, k as u64),
                    U256::from(1),
                ),
                Kind::Swap => {
                    let pair = contracts.pairs[i % contracts.pairs.len()];
                    let mut zero_for_one = [0u8; 32];
                    zero_for_one[31] = round.is_multiple_of(2) as u8;
                    Call {
                        to: Some(pair),
                        value: U256::ZERO,
                        input: calldata(
                            "swap(uint256,bool,address)",
                            &[
                                U256::from(SWAP_IN).to_be_bytes(),
                                zero_for_one,
                                word(senders[i].address),
                            ],
                        ),
                        gas: SWAP_GAS,
                    }
                }
            };
            sign(&senders[i].key, nonce, &call, fees)
        })
        .collect()
}

/// How many of `total` timed transactions sender `i` of `n` sends.
pub fn per_sender(total: usize, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| (total / n + usize::from(i < total % n)) as u64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_code_returns_the_runtime_after_the_stores() {
        let runtime = [0xaa, 0xbb, 0xcc];
        let code = init_code(&runtime, &[(U256::from(1), U256::from(2))]);
        assert_eq!(code.len(), 67 + 13 + 3);
        assert_eq!(&code[code.len() - 3..], &runtime);
        // PUSH2 3, DUP1, PUSH2 80 (offset of the runtime), PUSH1 0, CODECOPY, PUSH1 0, RETURN.
        assert_eq!(
            &code[67..80],
            &[0x61, 0, 3, 0x80, 0x61, 0, 80, 0x60, 0, 0x39, 0x60, 0, 0xf3]
        );
    }

    #[test]
    fn senders_split_the_transactions_evenly() {
        assert_eq!(per_sender(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(per_sender(3, 5), vec![1, 1, 1, 0, 0]);
    }

    #[test]
    fn signed_transactions_recover_to_their_sender() {
        let accounts = derive_accounts(B256::repeat_byte(7), 3);
        let fees = Fees {
            chain_id: 42069,
            max_fee: 10,
            tip: 1,
        };
        let txs = sign_timed(
            Workload::Transfers,
            &accounts,
            &[0, 5, 0],
            &Contracts::default(),
            B256::ZERO,
            6,
            &fees,
        );
        for (k, tx) in txs.iter().enumerate() {
            let raw = hex::decode(&tx.raw[2..]).unwrap();
            let decoded = crate::validation::decode_and_recover(&raw).unwrap();
            assert_eq!(decoded.sender, accounts[k % 3].address);
            assert_eq!(decoded.hash, tx.hash);
        }
    }
}
