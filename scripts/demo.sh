#!/usr/bin/env bash
# The main job on the embedded default backend: a full VM lifecycle on the
# deterministic mock backend, in a scratch root (nothing on the host is touched),
# printing every contract output.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
ensure_rust
ensure_libvirt_dev
log "building the executables"
cargo build --quiet -p blockhost-provisioner-bins

ROOT=$(mktemp -d /tmp/blockhost-demo.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
export BLOCKHOST_ROOT="$ROOT" BLOCKHOST_PROVIDER=mock PATH="$PWD/target/debug:$PATH"
mkdir -p "$ROOT/etc/blockhost/network-modes.enabled"
cat > "$ROOT/etc/blockhost/db.yaml" <<'YAML'
db_file: /var/lib/blockhost/vms.json
bridge: br0
ip_pool:
  network: 10.20.0.0/24
  start: 10.20.0.100
  end: 10.20.0.199
  gateway: 10.20.0.1
gc_grace_days: 7
default_expiry_days: 30
YAML
echo '{"prefix": "2001:db8:42::/120", "dns_zone": "vm.example.net"}' > "$ROOT/etc/blockhost/broker-allocation.json"
: > "$ROOT/etc/blockhost/network-modes.enabled/broker.json"
WALLET=0x9f2c4b8e1d7a3c5e6f8091a2b3c4d5e6f7081920
VM=blockhost-001

step() { printf '\n$ %s\n' "$*"; "$@"; }
echo "Scratch root: $ROOT (mock backend)"
step blockhost-provisioner-detect && echo "(detect: exit 0)"
step blockhost-build-template
step blockhost-vm-create "$VM" --owner-wallet "$WALLET" --expiry-days 30 --apply
step blockhost-vm-list
step blockhost-vm-status "$VM"
step blockhost-vm-metrics "$VM"
step blockhost-vm-update-gecos "$VM" "$WALLET" --nft-id 42
step blockhost-vm-guest-exec "$VM" getent passwd admin
step blockhost-vm-throttle "$VM" --cpu-quota 50 --bandwidth-out 20000
step blockhost-vm-stop "$VM"
step blockhost-vm-status "$VM"
printf '\n# 31 days later: the subscription has run out\n'
sed -i 's/"expires_at": "[^"]*"/"expires_at": "2020-01-01T00:00:00+00:00"/' "$ROOT/var/lib/blockhost/mock/vms.json"
step blockhost-vm-gc
step blockhost-vm-gc --execute
step blockhost-vm-status "$VM"
printf '\n# the subscriber renews\n'
step blockhost-vm-resume "$VM" --extend-days 30
step blockhost-vm-status "$VM"
step blockhost-vm-list --format json
step blockhost-vm-destroy "$VM"
step blockhost-vm-destroy "$VM"
step blockhost-vm-status "$VM"
step blockhost-vm-list
echo
echo "Demo complete."
