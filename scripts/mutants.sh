#!/usr/bin/env bash
# Mutation testing with cargo-mutants over the code whose mistakes cost users
# their VMs or records: the host state (address pools, the VM database and
# its journal, locks, config), the verbs, and the provider's ambiguous-write
# recovery. Each mutant is tested by the whole workspace's tests (the CLI
# tests in bins/ catch much of what lib/ gets wrong). Too slow for CI on two
# cores: run it by hand; FILE arguments narrow it (e.g. lib/src/host/pools.rs).
# The caught/missed/timeout/unviable counts are printed last; the details
# are in target/mutants/mutants.out/ (missed.txt, caught.txt, …).
#
# On a shared or small machine, four environment variables make each mutant
# cheaper (unset, the script behaves as described above):
#   MUTANTS_TESTS   cargo test target options, e.g. "--lib --test verbs": only
#                   the library's own test targets run for each mutant (the
#                   workspace's CLI tests do not), so figures can be lower
#   MUTANTS_JOBS    parallel cargo-mutants jobs (-j), e.g. 1
#   MUTANTS_OUTPUT  output directory instead of target/mutants
#   MUTANTS_TIMEOUT test timeout per mutant in seconds (default: cargo-mutants'
#                   own, from the baseline's time)
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

output=${MUTANTS_OUTPUT:-target/mutants}
run_args=(--test-workspace=true)
test_args=()
if [ -n "${MUTANTS_TESTS:-}" ]; then
    run_args=(--test-workspace=false)
    read -r -a test_args <<<"$MUTANTS_TESTS"
fi
[ -n "${MUTANTS_JOBS:-}" ] && run_args+=(--jobs "$MUTANTS_JOBS")
[ -n "${MUTANTS_TIMEOUT:-}" ] && run_args+=(--timeout "$MUTANTS_TIMEOUT")

status=0
cargo mutants --package blockhost-provisioner "${run_args[@]}" --no-shuffle \
    "${file_args[@]}" --output "$output" -- --no-fail-fast "${test_args[@]}" || status=$?
# cargo-mutants exits 2 when mutants were missed, 3 on timeouts: a report, not a failure of this script.
case $status in 0 | 2 | 3) ;; *) exit "$status" ;; esac
out=$output/mutants.out
for outcome in caught missed timeout unviable; do
    printf '%s: %s\n' "$outcome" "$(wc -l <"$out/$outcome.txt")"
done
