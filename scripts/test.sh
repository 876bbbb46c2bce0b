#!/usr/bin/env bash
# The whole test suite. Store tests run real redis-servers (single, AOF, TLS, a 3-node cluster)
# and use redis-cli, redis-benchmark and openssl: this installs them when missing (Debian/Ubuntu;
# as root, or with sudo), then runs every test. A test that needs Redis fails, never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=(redis-server redis-cli redis-benchmark openssl)
missing=()
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing test services (missing: ${missing[*]})"
  as_root=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
    as_root=(sudo)
  fi
  "${as_root[@]}" apt-get update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools openssl
fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "missing $tool after install" >&2; exit 1; }
done
redis-server --version

cargo test --workspace
