#!/usr/bin/env bash
# Installs the pinned developer tools for lanes. Idempotent: re-running it does only what is missing.
#
#   npm (into the git-ignored .tools/ at the repo root; versions pinned in scripts/tools/package.json
#        and its package-lock.json, nowhere else):
#     anvil, forge, cast (Foundry's npm binaries) and solc-js, exposed as .tools/bin/{anvil,forge,cast,solc}
#     (.tools/bin/solc is a wrapper around solc-js that behaves like native solc for forge's `--use`)
#   apt (only if missing): libclang-dev (librocksdb-sys bindgen), prometheus (monitoring tests)
#   cargo-nextest (only if missing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${LANES_TOOLS_DIR:-$ROOT/.tools}"
SPEC="$ROOT/scripts/tools"
STAMP="$TOOLS/.installed-stamp"

log() { printf '[install-tools] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# apt packages
# ---------------------------------------------------------------------------------------------
APT_PACKAGES=(libclang-dev prometheus)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then missing+=("$pkg"); fi
done
if ((${#missing[@]})); then
  log "apt: installing ${missing[*]}"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------------------------------------
# cargo-nextest
# ---------------------------------------------------------------------------------------------
if ! cargo nextest --version >/dev/null 2>&1; then
  log "cargo-nextest missing: cargo install cargo-nextest --locked"
  cargo install cargo-nextest --locked
fi

# ---------------------------------------------------------------------------------------------
# npm tools into .tools/
# ---------------------------------------------------------------------------------------------
command -v npm >/dev/null || { log "npm not found (install Node.js >= 20)"; exit 1; }
command -v node >/dev/null || { log "node not found (install Node.js >= 20)"; exit 1; }

want_stamp="$(cat "$SPEC/package.json" "$SPEC/package-lock.json" "$ROOT/scripts/solc-wrapper.cjs" "$0" | sha256sum | cut -d' ' -f1)"
have_stamp="$(cat "$STAMP" 2>/dev/null || true)"
bins_ok=1
for b in anvil forge cast solc; do [[ -x "$TOOLS/bin/$b" ]] || bins_ok=0; done

if [[ "$want_stamp" == "$have_stamp" && $bins_ok == 1 ]]; then
  log "tools up to date in $TOOLS"
  exit 0
fi

log "npm: installing pinned tools into $TOOLS"
mkdir -p "$TOOLS"
rm -f "$STAMP"
cp "$SPEC/package.json" "$SPEC/package-lock.json" "$TOOLS/"
# `npm ci` installs exactly what the lock file says (and removes anything else in node_modules).
(cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error)

mkdir -p "$TOOLS/bin" "$TOOLS/lib"
for b in anvil forge cast; do
  target="$TOOLS/node_modules/@foundry-rs/$b-linux-amd64/bin/$b"
  [[ -x "$target" ]] || { log "expected executable $target is missing"; exit 1; }
  ln -sfn "../node_modules/@foundry-rs/$b-linux-amd64/bin/$b" "$TOOLS/bin/$b"
done

install -m 0755 "$ROOT/scripts/solc-wrapper.cjs" "$TOOLS/lib/solc-wrapper.cjs"
rm -f "$TOOLS/lib/solc-version.txt"
cat > "$TOOLS/bin/solc" <<'LAUNCHER'
#!/usr/bin/env bash
# Native-solc-style front end for solc-js (see scripts/solc-wrapper.cjs).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec node "$here/../lib/solc-wrapper.cjs" "$@"
LAUNCHER
chmod 0755 "$TOOLS/bin/solc"

# Smoke-test everything (this also caches solc's version string so `solc --version` is instant).
for b in anvil forge cast; do "$TOOLS/bin/$b" --version | head -n1 >&2; done
"$TOOLS/bin/solc" --version | tail -n1 >&2

echo "$want_stamp" > "$STAMP"
log "done"
