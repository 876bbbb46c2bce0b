#!/usr/bin/env bash
# The whole test suite. Store tests run real redis-servers (single, AOF, TLS, a 3-node cluster)
# and use redis-cli, redis-benchmark and openssl; the metrics tests pipe the live endpoints to
# promtool (Debian package prometheus); the contract tests (tests/tests/contract_*.rs)
# run GitHub's own tools (prism with GitHub's OpenAPI description, octokit's webhook signer) with
# node. This installs what is missing (Debian/Ubuntu packages; as root, or with sudo), installs
# the pinned npm packages of tests/contract (npm ci, skipped when the lock file is unchanged),
# then runs every test. A test that needs one of these fails, never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=(redis-server redis-cli redis-benchmark openssl promtool node npm)
missing=()
packages=()
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 && continue
  missing+=("$tool")
  case "$tool" in
    redis-server) packages+=(redis-server) ;;
    redis-cli | redis-benchmark) packages+=(redis-tools) ;;
    openssl) packages+=(openssl) ;;
    promtool) packages+=(prometheus) ;;
    node) packages+=(nodejs) ;;
    npm) packages+=(npm) ;;
  esac
done
if [ "${#missing[@]}" -gt 0 ]; then
  # Each package once, in order.
  mapfile -t packages < <(printf '%s\n' "${packages[@]}" | awk '!seen[$0]++')
  echo "installing test tools (missing: ${missing[*]}; packages: ${packages[*]})"
  as_root=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install ${packages[*]}" >&2; exit 1; }
    as_root=(sudo)
  fi
  node_packages=()
  other_packages=()
  for p in "${packages[@]}"; do
    case "$p" in nodejs | npm) node_packages+=("$p") ;; *) other_packages+=("$p") ;; esac
  done
  "${as_root[@]}" apt-get update
  if [ "${#other_packages[@]}" -gt 0 ]; then
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${other_packages[@]}"
  fi
  if [ "${#node_packages[@]}" -gt 0 ]; then
    # npm's recommends (build-essential, node-gyp, docs) are not needed: nothing is compiled.
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${node_packages[@]}"
  fi
fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing $tool after install" >&2; exit 1; }
done
redis-server --version
promtool --version 2>&1 | sed -n 1p

# prism 5.14.2 (pinned in tests/contract/package.json) needs node >= 18.20.1; Debian 12 has 18.20.
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
  if (a < 18 || (a === 18 && b < 20)) { console.error(`node ${process.version} is too old: the contract tests need >= 18.20.1`); process.exit(1); }'
echo "node $(node --version), npm $(npm --version)"

# npm ci wipes and reinstalls node_modules (about 20 s); a stamp of the lock file skips it when
# nothing changed since the last successful install.
contract=tests/contract
stamp="$contract/node_modules/.installed-from-lock"
lock_sum="$(cat "$contract/package.json" "$contract/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  echo "installing the contract tools (npm ci --prefix $contract)"
  npm ci --prefix "$contract" --ignore-scripts --no-audit --no-fund
  echo "$lock_sum" >"$stamp"
else
  echo "contract tools up to date ($contract/node_modules)"
fi

cargo test --workspace
