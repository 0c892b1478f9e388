#!/usr/bin/env bash
# Every test of the project, each stage run even when an earlier one failed:
# clippy; each backend feature alone; the Rust unit, provider and CLI contract tests (also on the
# Proxmox VE stand-in); the Python plugin
# tests (pytest with a real Flask); the Debian package (built, linted,
# installed into a scratch root); the real-VM tests on a private libvirtd;
# last, a check that a failing test turns this script red. The closing
# summary counts what the runners reported, lists every failed and skipped
# test, and the script exits non-zero naming each stage that failed.
#
# Everything the tests need is installed first. Under CI=true a test whose
# condition the scripts could provide fails instead of skipping.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
. scripts/lib/stages.sh

REPORT=${BLOCKHOST_TEST_REPORT:-$PWD/target/test-report}
rm -rf "$REPORT"
mkdir -p "$REPORT"
export BLOCKHOST_TEST_SKIPS=$REPORT/skips.tsv BLOCKHOST_TEST_REPORT=$REPORT

# Setup failures stop here, with one line saying what is missing; the Rust
# toolchain first, as the one thing Debian cannot provide.
set -e
ensure_rust
ensure_libvirt_dev
ensure_python_test_deps
if [ "$(id -u)" -eq 0 ]; then
    ensure_rust_test_tools
    ensure_libvirt_e2e
fi
set +e

stages=()
# stage NAME COMMAND…: runs the command and records whether it passed.
stage() {
    local name=$1
    shift
    log "$name"
    "$@"
    local status=$?
    if [ "$status" -eq 0 ]; then
        stages+=("$name=ok")
    else
        log "stage '$name' failed (exit $status)"
        stages+=("$name=failed")
    fi
}

stage clippy cargo clippy --quiet --workspace --all-targets -- -D warnings
stage backends bash scripts/check-backends.sh
stage rust run_rust_tests "$REPORT/rust-main.log" --workspace
# The CLI on the Proxmox VE stand-in needs the executables built with the
# proxmox backend, which the workspace build leaves out.
stage proxmox-cli run_rust_tests "$REPORT/rust-proxmox-cli.log" -p blockhost-provisioner-bins --features proxmox --test proxmox_cli
stage pytest run_pytest "$REPORT/pytest.xml"
if [ "$(id -u)" -eq 0 ]; then
    stage packaging bash tests/packaging/test-deb.sh
    stage real-VM bash scripts/e2e-libvirt.sh
elif [ "${CI:-}" = true ]; then
    log "CI=true but not root: the packaging and real-VM stages need root"
    stages+=("packaging=failed:not root" "real-VM=failed:not root")
else
    stages+=("packaging=skipped:needs root" "real-VM=skipped:needs root")
fi
stage checker bash scripts/check-the-checker.sh

summary_args=()
for s in "${stages[@]}"; do summary_args+=(--stage "$s"); done
for log in "$REPORT"/rust-*.log; do summary_args+=(--rust "$log"); done
python3 scripts/lib/test_summary.py --skips "$BLOCKHOST_TEST_SKIPS" --pytest "$REPORT/pytest.xml" "${summary_args[@]}"
