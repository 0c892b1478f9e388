#!/usr/bin/env bash
# Mutation testing with cargo-mutants over the code whose mistakes cost users
# their VMs or records: the host state (address pools, the VM database and
# its journal, locks, config), the verbs, and the provider's ambiguous-write
# recovery. Each mutant is tested by the whole workspace's tests (the CLI
# tests in bins/ catch much of what lib/ gets wrong). Too slow for CI on two
# cores: run it by hand; FILE arguments narrow it (e.g. lib/src/host/pools.rs).
# The caught/missed/timeout/unviable counts are printed last; the details
# are in target/mutants/mutants.out/ (missed.txt, caught.txt, …).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
ensure_libvirt_dev
ensure_rust
cargo mutants --version >/dev/null 2>&1 || {
    log "installing cargo-mutants"
    cargo install cargo-mutants --locked >&2 || missing "cargo-mutants could not be installed: cargo install cargo-mutants"
}

files=("$@")
if [ "${#files[@]}" -eq 0 ]; then
    files=('lib/src/host/**/*.rs' 'lib/src/verbs/**/*.rs' lib/src/provider/recovery.rs)
fi
file_args=()
for f in "${files[@]}"; do file_args+=(--file "$f"); done

status=0
cargo mutants --package blockhost-provisioner --test-workspace=true --no-shuffle \
    "${file_args[@]}" --output target/mutants -- --no-fail-fast || status=$?
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts: a report, not a failure of this script.
case $status in 0 | 2 | 3) ;; *) exit "$status" ;; esac
out=target/mutants/mutants.out
for outcome in caught missed timeout unviable; do
    printf '%s: %s\n' "$outcome" "$(wc -l <"$out/$outcome.txt")"
done
