//! Seeded 64-bit digests of addresses and slots, for tables on the executor's hot paths.
//!
//! Hashing a 20-byte address or a 52-byte storage location byte by byte, and keeping it as
//! the key, is much of what planning and the first-write index spend. A digest folds the
//! words with a few multiplications and keys a table of 8-byte entries. Digests are keyed
//! with a random seed per process, so no one can aim for a collision; one would only put two
//! lanes together (planning) or make a result look stale and be checked again value by value
//! (the first-write index), never change a result.

use alloy_primitives::{Address, B256, U256};
use std::{
    hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState},
    sync::OnceLock,
};

/// A key already mixed well: the table uses it as it is.
#[derive(Default)]
pub(super) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with this; anything else still gets a valid hash.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(K0);
        }
    }
    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// Tables keyed by digests.
pub(super) type Map<V> = std::collections::HashMap<u64, V, BuildHasherDefault<Prehashed>>;

const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;
const K2: u64 = 0xa409_3822_299f_31d0;
const K3: u64 = 0x082e_fa98_ec4e_6c89;

fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| RandomState::new().hash_one(0x006c_616e_6573_u64))
}

/// The 128-bit product folded to 64 bits.
fn mix(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// Digest of an address.
pub(super) fn address(address: &Address) -> u64 {
    let b = address.as_slice();
    let tail = u64::from(u32::from_le_bytes(
        b[16..20].try_into().expect("four bytes"),
    ));
    let s = seed();
    mix(word(b, 0) ^ s, word(b, 8) ^ K1) ^ mix(tail ^ K2, s ^ K3)
}

/// Digest of a pair of digests (a token and a holder; an account and a slot).
pub(super) fn pair(a: u64, b: u64) -> u64 {
    mix(a ^ K0, b ^ K1 ^ seed())
}

/// Digest of a storage key.
pub(super) fn slot(slot: &B256) -> u64 {
    let b = slot.as_slice();
    mix(word(b, 0) ^ K2, word(b, 8) ^ seed()) ^ mix(word(b, 16) ^ K3, word(b, 24) ^ K0)
}

/// Digest of a storage slot as revm names it.
pub(super) fn word256(slot: &U256) -> u64 {
    let [a, b, c, d] = *slot.as_limbs();
    mix(a ^ K2, b ^ seed()) ^ mix(c ^ K3, d ^ K0)
}

/// A table with room for `n` keys.
pub(super) fn map<V>(n: usize) -> Map<V> {
    Map::with_capacity_and_hasher(n, BuildHasherDefault::default())
}
