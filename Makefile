# lanes — developer entry points. GNU make.
#
#   make tools           install pinned anvil/forge/cast/solc-js into .tools/ (+ apt deps, cargo-nextest)
#   make build           tools + contracts + cargo build --workspace --all-targets
#   make run             build, then run a dev node: lanes node --dev  (extra flags: make run RUN_ARGS='...')
#   make test            everything CI checks (.ci/run calls this)
#   make contracts       forge build
#   make contracts-test  forge fmt --check + forge test
#   make ef-tests        Ethereum Foundation BlockchainTests (Cancun), sequential and parallel executor
#   make fmt | lint | nextest | doctest   single steps of `make test`

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

# One target dir outside the clone, shared by CI runs and developers' checkouts, so a fresh
# clone doesn't rebuild RocksDB and revm from scratch. Never `cargo clean` it casually.
CARGO_TARGET_DIR ?= $(HOME)/.cache/lanes-target
export CARGO_TARGET_DIR

TOOLS := $(CURDIR)/.tools
export PATH := $(TOOLS)/bin:$(PATH)
# Read by the integration tests (sequencer/tests/common).
export LANES_TOOLS_BIN := $(TOOLS)/bin
export LANES_CONTRACTS_DIR := $(CURDIR)/contracts
# The Ethereum Foundation's BlockchainTests, read in place from shared/ (never copied in).
LANES_EF_TESTS_DIR ?= $(CURDIR)/../shared/ethereum-tests/BlockchainTests
export LANES_EF_TESTS_DIR

CARGO ?= cargo
FORGE := $(TOOLS)/bin/forge
# No network for forge: compile with the pinned solc-js wrapper, never try to download solc.
FORGE_FLAGS := --offline --use $(TOOLS)/bin/solc
NEXTEST_PROFILE ?= ci
LANES := $(CARGO_TARGET_DIR)/debug/lanes
RUN_ARGS ?=

.PHONY: all tools contracts contracts-test build run run-prepare test fmt fmt-fix lint nextest doctest ef-tests check-nextest-config

all: build

tools:
	@scripts/install-tools.sh

contracts: tools
	cd contracts && $(FORGE) build $(FORGE_FLAGS)

contracts-test: contracts
	cd contracts && $(FORGE) fmt --check
	cd contracts && $(FORGE) test $(FORGE_FLAGS)

build: tools contracts
	$(CARGO) build --workspace --all-targets

# Hook for what must exist before the dev node starts. A later step adds here: start anvil
# as the L1 (.tools/bin/anvil) and deploy the L1 contracts from contracts/ (forge create /
# forge script $(FORGE_FLAGS)), then pass their addresses to the node (config file or flags).
run-prepare: build

# `lanes node --dev` starts its own anvil L1 (from .tools/bin), deploys the L1 contracts to it
# and posts batches there, so no separate L1 or `lanes l1 deploy` step is needed.
# The dev profile optimises dependencies (see [profile.dev.package."*"] in Cargo.toml), so a
# debug build of lanes is fast enough to run.
run: run-prepare
	$(LANES) node --dev $(RUN_ARGS)

fmt:
	$(CARGO) fmt --all -- --check

fmt-fix:
	$(CARGO) fmt --all
	cd contracts && $(FORGE) fmt

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

doctest:
	$(CARGO) test --workspace --doc

# Conformance: every Cancun test, with the sequential and with the parallel executor.
ef-tests:
	$(CARGO) build -q -p lanes-executor --bin ef-tests
	$(CARGO_TARGET_DIR)/debug/ef-tests --mode sequential $(LANES_EF_TESTS_DIR)
	$(CARGO_TARGET_DIR)/debug/ef-tests --mode parallel --threads 2 $(LANES_EF_TESTS_DIR)

nextest:
	$(CARGO) nextest run --workspace --no-fail-fast --profile $(NEXTEST_PROFILE)

# Order matters: quick checks first; nextest last so its summary is the run's closing line.
test: tools contracts
	$(MAKE) fmt
	$(MAKE) lint
	$(MAKE) contracts-test
	$(MAKE) doctest
	$(MAKE) ef-tests
	$(MAKE) nextest
