//! Genesis: geth-style genesis JSON and the built-in dev genesis.

use crate::{
    error::{ExecutorError, ExecutorResult},
    root,
    state::{AccountChange, StateChanges, StoredAccount},
};
use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header, constants::EMPTY_WITHDRAWALS};
use alloy_genesis::{Genesis, GenesisAccount};
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, U256, address, keccak256};
use alloy_trie::EMPTY_ROOT_HASH;

/// Base fee of the genesis block when the genesis file names none (EIP-1559's initial value).
pub const INITIAL_BASE_FEE: u64 = 1_000_000_000;

/// The ten accounts of the standard test mnemonic ("test test ... junk") that anvil and
/// hardhat prefund, in derivation order (m/44'/60'/0'/0/i).
pub const DEV_ACCOUNTS: [Address; 10] = [
    address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
    address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
    address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
    address!("90F79bf6EB2c4f870365E785982E1f101E93b906"),
    address!("15d34AAf54267DB7D7c367839AAf71A00a2C6A65"),
    address!("9965507D1a55bcC2695C58ba16FB37d819B0A4dc"),
    address!("976EA74026E726554dB657fA54763abd0C3a0aa9"),
    address!("14dC79964da2C08b23698B3D3cc7Ca32193d9955"),
    address!("23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"),
    address!("a0Ee7A142d267C1f36714E4a8F75612F20a79720"),
];

/// The standard test mnemonic the dev accounts derive from.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// A chain's genesis: what the state starts as and the header of block 0.
#[derive(Clone, Debug)]
pub struct GenesisSpec {
    /// Chain id (EIP-155).
    pub chain_id: u64,
    /// The genesis block header (state root filled in).
    pub header: Header,
    /// The initial state.
    pub alloc: StateChanges,
}

impl GenesisSpec {
    /// Builds the spec from a geth-style genesis (`alloc`, `config.chainId`, `gasLimit`,
    /// `baseFeePerGas`, `timestamp`, ...).
    pub fn from_genesis(genesis: &Genesis) -> ExecutorResult<Self> {
        let chain_id = genesis.config.chain_id;
        if chain_id == 0 {
            return Err(ExecutorError::Genesis("config.chainId must be set".into()));
        }
        if genesis.gas_limit < 21_000 {
            return Err(ExecutorError::Genesis(format!(
                "gasLimit {} is below 21000",
                genesis.gas_limit
            )));
        }
        let mut alloc = StateChanges::default();
        for (address, account) in &genesis.alloc {
            let has_storage = account
                .storage
                .iter()
                .flatten()
                .any(|(_, value)| !value.is_zero());
            let has_code = account.code.as_ref().is_some_and(|code| !code.is_empty());
            check_alloc_account(
                *address,
                has_storage,
                has_code,
                account.nonce.unwrap_or_default(),
            )?;
            alloc
                .accounts
                .insert(*address, account_change(account, &mut alloc.codes));
        }
        let base_fee = match genesis.base_fee_per_gas {
            Some(fee) => u64::try_from(fee)
                .map_err(|_| ExecutorError::Genesis("baseFeePerGas does not fit u64".into()))?,
            None => INITIAL_BASE_FEE,
        };
        let header = Header {
            parent_hash: B256::ZERO,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: genesis.coinbase,
            state_root: root::state_root_of_changes(&alloc),
            transactions_root: EMPTY_ROOT_HASH,
            receipts_root: EMPTY_ROOT_HASH,
            logs_bloom: Default::default(),
            difficulty: genesis.difficulty,
            number: 0,
            gas_limit: genesis.gas_limit,
            gas_used: 0,
            timestamp: genesis.timestamp,
            extra_data: genesis.extra_data.clone(),
            mix_hash: genesis.mix_hash,
            nonce: genesis.nonce.into(),
            base_fee_per_gas: Some(base_fee),
            withdrawals_root: Some(EMPTY_WITHDRAWALS),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
            parent_beacon_block_root: Some(B256::ZERO),
            ..Default::default()
        };
        Ok(Self {
            chain_id,
            header,
            alloc,
        })
    }

    /// Reads a geth-style genesis JSON file.
    pub fn from_file(path: &std::path::Path) -> ExecutorResult<Self> {
        Self::from_genesis(&read_genesis_file(path)?)
    }

    /// The dev genesis: the ten test-mnemonic accounts with 10,000 ETH each.
    pub fn dev(chain_id: u64, gas_limit: u64) -> ExecutorResult<Self> {
        Self::from_genesis(&dev_genesis(chain_id, gas_limit))
    }
}

/// Reads a geth-style genesis JSON file without building the spec, so callers can install
/// system contracts first.
pub fn read_genesis_file(path: &std::path::Path) -> ExecutorResult<Genesis> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ExecutorError::Genesis(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| ExecutorError::Genesis(format!("{}: {e}", path.display())))
}

/// Installs the runtime `code` of system contract `name` at `address`: nonce 1 (as every
/// contract since EIP-161), no balance, empty storage.
///
/// A genesis that already holds exactly this code there is left alone, so a genesis file
/// written with the system contracts in it gives the same chain as one without. Anything
/// else at a reserved address is refused: the L1 contracts trust that code.
pub fn install_system_contract(
    genesis: &mut Genesis,
    name: &str,
    address: Address,
    code: &Bytes,
) -> ExecutorResult<()> {
    match genesis.alloc.get(&address) {
        None => {
            genesis.alloc.insert(
                address,
                GenesisAccount::default()
                    .with_nonce(Some(1))
                    .with_code(Some(code.clone())),
            );
            Ok(())
        }
        Some(account) if account.code.as_ref() == Some(code) => Ok(()),
        Some(_) => Err(ExecutorError::Genesis(format!(
            "alloc account {address} is reserved for the {name} system contract, but the \
             genesis gives it other code; remove it from the alloc (lanes installs it)"
        ))),
    }
}

/// Checks one genesis account against the rules lanes' execution relies on.
///
/// EIP-7610 makes creating a contract at an address with storage a collision even without
/// code or nonce. Execution can never produce such an account (a contract is born with nonce
/// 1 and only loses its storage together with the account), only a genesis alloc can, and
/// revm checks code and nonce alone; refusing them here keeps the rule true without a
/// storage probe on every CREATE.
pub fn check_alloc_account(
    address: Address,
    has_storage: bool,
    has_code: bool,
    nonce: u64,
) -> ExecutorResult<()> {
    if has_storage && !has_code && nonce == 0 {
        return Err(ExecutorError::Genesis(format!(
            "account {address} has storage but neither code nor nonce (EIP-7610)"
        )));
    }
    Ok(())
}

/// The geth-style genesis `GenesisSpec::dev` is built from (also what `lanes init` can write).
pub fn dev_genesis(chain_id: u64, gas_limit: u64) -> Genesis {
    let ten_thousand_eth = U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64));
    let mut genesis = Genesis {
        gas_limit,
        base_fee_per_gas: Some(INITIAL_BASE_FEE.into()),
        timestamp: 0,
        ..Default::default()
    };
    genesis.config.chain_id = chain_id;
    for address in DEV_ACCOUNTS {
        genesis.alloc.insert(
            address,
            GenesisAccount::default().with_balance(ten_thousand_eth),
        );
    }
    genesis
}

fn account_change(
    account: &GenesisAccount,
    codes: &mut alloy_primitives::map::HashMap<B256, Bytes>,
) -> AccountChange {
    let code_hash = match &account.code {
        Some(code) if !code.is_empty() => {
            let hash = keccak256(code);
            codes.insert(hash, code.clone());
            hash
        }
        _ => KECCAK256_EMPTY,
    };
    let storage = account
        .storage
        .iter()
        .flatten()
        .map(|(slot, value)| (U256::from_be_bytes(slot.0), U256::from_be_bytes(value.0)))
        .collect();
    AccountChange {
        info: Some(StoredAccount {
            nonce: account.nonce.unwrap_or_default(),
            balance: account.balance,
            code_hash,
        }),
        storage_cleared: true,
        storage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_genesis_is_deterministic_and_funded() {
        let a = GenesisSpec::dev(42069, 30_000_000).unwrap();
        let b = GenesisSpec::dev(42069, 30_000_000).unwrap();
        assert_eq!(a.header.hash_slow(), b.header.hash_slow());
        assert_eq!(a.alloc.accounts.len(), 10);
        assert_ne!(a.header.state_root, EMPTY_ROOT_HASH);
        assert_eq!(a.chain_id, 42069);
    }

    #[test]
    fn dev_accounts_match_the_mnemonic() {
        use alloy_signer_local::{MnemonicBuilder, coins_bip39::English};
        for (index, expected) in DEV_ACCOUNTS.iter().enumerate() {
            let signer = MnemonicBuilder::<English>::default()
                .phrase(DEV_MNEMONIC)
                .index(index as u32)
                .unwrap()
                .build()
                .unwrap();
            assert_eq!(signer.address(), *expected, "account {index}");
        }
    }

    #[test]
    fn rejects_storage_without_code_or_nonce() {
        let mut genesis = dev_genesis(1, 30_000_000);
        let storage = [(B256::with_last_byte(1), B256::with_last_byte(1))]
            .into_iter()
            .collect();
        genesis.alloc.insert(
            Address::repeat_byte(7),
            GenesisAccount::default().with_storage(Some(storage)),
        );
        assert!(matches!(
            GenesisSpec::from_genesis(&genesis),
            Err(ExecutorError::Genesis(_))
        ));
    }

    #[test]
    fn system_contract_is_installed_once_and_guarded() {
        let code = Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xf3]);
        let address = Address::repeat_byte(0x16);
        let mut genesis = dev_genesis(1, 30_000_000);
        install_system_contract(&mut genesis, "Queue", address, &code).unwrap();
        let installed = GenesisSpec::from_genesis(&genesis).unwrap();
        let info = installed.alloc.accounts[&address].info.unwrap();
        assert_eq!((info.nonce, info.code_hash), (1, keccak256(&code)));
        assert_eq!(installed.alloc.codes[&keccak256(&code)], code);

        // Installing again (a genesis file that already carries it) changes nothing.
        install_system_contract(&mut genesis, "Queue", address, &code).unwrap();
        let again = GenesisSpec::from_genesis(&genesis).unwrap();
        assert_eq!(again.header.hash_slow(), installed.header.hash_slow());

        let mut other = dev_genesis(1, 30_000_000);
        other.alloc.insert(
            address,
            GenesisAccount::default().with_balance(U256::from(1)),
        );
        let err = install_system_contract(&mut other, "Queue", address, &code).unwrap_err();
        assert!(err.to_string().contains("reserved for the Queue"), "{err}");
    }

    #[test]
    fn rejects_zero_chain_id() {
        let genesis = Genesis::default();
        assert!(GenesisSpec::from_genesis(&genesis).is_err());
    }
}
