#!/usr/bin/env bash
# Refreshes the committed ABI + bytecode copies in this folder from forge's artifacts, which the
# `sol!` bindings in ../src/bindings.rs are generated from. Run after changing contracts/src:
#
#   make contracts && l1-bridge/abi/update.sh
#
# Only `abi`, `bytecode.object` and `deployedBytecode.object` are kept: the rest of an artifact
# (metadata, source maps, ids) changes with unrelated edits and would make the copies noisy.
# tests/abi_sync.rs fails when these copies and contracts/out disagree.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="${LANES_CONTRACTS_DIR:-$here/../../contracts}/out"

for contract in LanesRollup LanesPortal L2WithdrawalQueue; do
    artifact="$out/$contract.sol/$contract.json"
    if [[ ! -f "$artifact" ]]; then
        echo "missing $artifact: run \`make contracts\` first" >&2
        exit 1
    fi
    python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))
copy = {"abi": a["abi"], "bytecode": {"object": a["bytecode"]["object"]}, "deployedBytecode": {"object": a["deployedBytecode"]["object"]}}
open(sys.argv[2], "w").write(json.dumps(copy, indent=2) + "\n")
' "$artifact" "$here/$contract.json"
    echo "updated l1-bridge/abi/$contract.json"
done
