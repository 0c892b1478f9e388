#!/usr/bin/env bash
# The real-VM layer: a private libvirtd, a template built by our own
# blockhost-build-template (cached between runs), and the end-to-end tests
# through the real executables. Needs root; says why and exits 0 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh

skip() { echo "real-VM tests skipped: $*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "they need root (private libvirtd, debootstrap)"
command -v unshare >/dev/null 2>&1 || skip "unshare is missing"
ensure_build_tools
ensure_libvirt_dev
ensure_rust
ensure_libvirt_e2e || skip "the hypervisor packages could not be installed"

E2E_DIR=${BLOCKHOST_E2E_DIR:-$HOME/.cache/blockhost-e2e}
TEMPLATE_ROOT=$E2E_DIR/template-host
mkdir -p "$TEMPLATE_ROOT/var/lib/blockhost/template-packages"

log "building the executables"
cargo build --quiet --workspace

log "a probe package for template-packages/"
bash tests/e2e/probe-deb.sh "$TEMPLATE_ROOT/var/lib/blockhost/template-packages"

log "the VM template (kept when up to date)"
BLOCKHOST_ROOT=$TEMPLATE_ROOT BLOCKHOST_PROVIDER=libvirt target/debug/blockhost-build-template

export STATE=$E2E_DIR/libvirtd
trap 'bash tests/e2e/libvirtd.sh stop' EXIT
BLOCKHOST_E2E_URI=$(bash tests/e2e/libvirtd.sh start)
export BLOCKHOST_E2E_URI BLOCKHOST_E2E_TEMPLATES=$TEMPLATE_ROOT/var/lib/blockhost/templates

log "real-VM tests"
cargo test --quiet -p blockhost-provisioner-bins --test libvirt_e2e -- --test-threads=1 --nocapture
