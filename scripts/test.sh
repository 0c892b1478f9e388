#!/usr/bin/env bash
# Every test of the project: Rust unit, in-process provider and CLI contract
# tests, lints, the Python plugin tests (pytest with a real Flask), and the
# Debian package (built, linted, installed into a scratch root; as root only),
# and the real-VM tests on a private libvirtd (skipped, saying why, where they cannot run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
ensure_build_tools
ensure_libvirt_dev
ensure_rust
ensure_python_test_deps

log "cargo clippy"
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --quiet --workspace --all-targets -- -D warnings
else
    log "clippy is not installed: lint skipped"
fi
log "cargo test"
cargo test --workspace 2>&1 | tee /tmp/blockhost-cargo-test.log \
    | grep -E '^(test result|running|error|test .* FAILED|failures:)' | grep -vE 'running 0 tests| 0 passed; 0 failed; 0 ignored' || true
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || { tail -n 80 /tmp/blockhost-cargo-test.log; exit "$status"; }

log "pytest"
python3 -m pytest -q tests/python

log "packaging"
bash tests/packaging/test-deb.sh

log "real-VM tests (libvirt)"
bash scripts/e2e-libvirt.sh

passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' /tmp/blockhost-cargo-test.log | awk '{s+=$4} END {print s+0}')
echo "Rust: $passed passed, 0 failed"
