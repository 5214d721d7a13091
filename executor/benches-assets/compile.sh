#!/usr/bin/env bash
# Regenerates the runtime bytecode (*.hex, and Child's creation code) of Contracts.sol with the repository's pinned solc.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
solc="$here/../../.tools/bin/solc"
input=$(python3 - "$here/Contracts.sol" <<'PY'
import json, sys
print(json.dumps({
    "language": "Solidity",
    "sources": {"Contracts.sol": {"content": open(sys.argv[1]).read()}},
    "settings": {
        "optimizer": {"enabled": True, "runs": 200},
        "evmVersion": "cancun",
        "outputSelection": {"*": {"*": ["evm.deployedBytecode.object", "evm.bytecode.object"]}},
    },
}))
PY
)
echo "$input" | "$solc" --standard-json | python3 -c '
import json, sys
out = json.load(sys.stdin)
errors = [e for e in out.get("errors", []) if e["severity"] == "error"]
if errors:
    sys.exit("\n".join(e["formattedMessage"] for e in errors))
for name, c in out["contracts"]["Contracts.sol"].items():
    code = c["evm"]["deployedBytecode"]["object"]
    if code:
        open(sys.argv[1] + "/" + name + ".hex", "w").write(code + "\n")
        if name == "Child":
            init = c["evm"]["bytecode"]["object"]
            open(sys.argv[1] + "/" + name + ".init.hex", "w").write(init + "\n")
        print(name, len(code) // 2, "bytes")
' "$here"
