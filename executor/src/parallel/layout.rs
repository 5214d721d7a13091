//! Where a token keeps a holder's balance, for predicting hot credits.
//!
//! A prediction is only a guess, checked value by value before anything is committed, so a
//! wrong layout costs time, never correctness. The guesses are the mapping layouts of the
//! common compilers (Solidity: `keccak(holder . index)`, Vyper: `keccak(index . holder)`) for
//! the first few declaration slots; the one a token turns out to use is remembered, and a
//! token whose credits do not add up (fees on transfer, rebasing) is left alone for a while.

use alloy_primitives::{Address, U256, keccak256, map::HashMap};
use parking_lot::Mutex;

/// A mapping layout guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Layout {
    /// Declaration slot of the balances mapping.
    pub index: u8,
    /// Vyper's key order.
    pub vyper: bool,
}

impl Layout {
    /// Declaration slots tried for a token whose layout is not known yet.
    const GUESSED_SLOTS: u8 = 8;

    /// The storage slot of `holder`'s entry.
    pub(super) fn slot(self, holder: Address) -> U256 {
        let mut buf = [0u8; 64];
        let (key, index) = if self.vyper { (32, 0) } else { (0, 32) };
        buf[key + 12..key + 32].copy_from_slice(holder.as_slice());
        buf[index + 31] = self.index;
        U256::from_be_bytes(keccak256(buf).0)
    }

    fn all() -> impl Iterator<Item = Layout> {
        (0..Self::GUESSED_SLOTS)
            .flat_map(|index| [false, true].map(|vyper| Layout { index, vyper }))
    }
}

#[derive(Clone, Copy, Debug)]
enum Knowledge {
    Known(Layout),
    /// Predictions failed; try again after this many windows.
    Unpredictable {
        until: u64,
    },
}

/// What the executor learned about tokens, across blocks.
#[derive(Debug, Default)]
pub(super) struct Layouts {
    tokens: Mutex<HashMap<Address, Knowledge>>,
    windows: std::sync::atomic::AtomicU64,
}

impl Layouts {
    /// Windows a token is left alone after its predictions failed.
    const BACKOFF_WINDOWS: u64 = 64;
    /// Bound on remembered tokens; past it the memory is dropped wholesale.
    const MAX_TOKENS: usize = 4096;

    /// Counts a window (the clock of the back-off).
    pub(super) fn tick(&self) {
        self.windows
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn now(&self) -> u64 {
        self.windows.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether credits to holders of `token` are worth predicting now.
    pub(super) fn predictable(&self, token: Address) -> bool {
        match self.tokens.lock().get(&token) {
            Some(Knowledge::Unpredictable { until }) => *until <= self.now(),
            _ => true,
        }
    }

    /// The layouts to try for `token`.
    pub(super) fn candidates(&self, token: Address) -> Vec<Layout> {
        match self.tokens.lock().get(&token) {
            Some(Knowledge::Known(layout)) => vec![*layout],
            _ => Layout::all().collect(),
        }
    }

    /// `token` was seen crediting the slot `layout` points to.
    pub(super) fn confirm(&self, token: Address, layout: Layout) {
        let mut tokens = self.tokens.lock();
        if tokens.len() >= Self::MAX_TOKENS {
            tokens.clear();
        }
        tokens.insert(token, Knowledge::Known(layout));
    }

    /// Predictions for `token` did not hold.
    pub(super) fn reject(&self, token: Address) {
        let until = self.now() + Self::BACKOFF_WINDOWS;
        let mut tokens = self.tokens.lock();
        if tokens.len() >= Self::MAX_TOKENS {
            tokens.clear();
        }
        tokens.insert(token, Knowledge::Unpredictable { until });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solidity_layout_matches_the_compiler() {
        // keccak256(abi.encode(holder, 0)), as solc lays out `mapping(address => uint) balanceOf`
        // declared first.
        let holder = Address::repeat_byte(0x11);
        let mut buf = [0u8; 64];
        buf[12..32].copy_from_slice(holder.as_slice());
        let expected = U256::from_be_bytes(keccak256(buf).0);
        assert_eq!(
            Layout {
                index: 0,
                vyper: false
            }
            .slot(holder),
            expected
        );
        assert_ne!(
            Layout {
                index: 0,
                vyper: true
            }
            .slot(holder),
            expected
        );
    }
}
