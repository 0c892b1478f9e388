#!/usr/bin/env bash
# The benchmark (separate from the tests): our executables against baselines
# measured in the same run, on a private libvirtd (tests/e2e/libvirtd.sh)
# running N tiny TCG domains (no disk, no NIC) that a scratch BlockHost root
# records as active VMs. Prints a table and writes it as JSON. Needs root.
# Everything it starts (libvirtd, the domains' QEMUs, its run directory) is
# stopped and removed on exit, also when interrupted. No network traffic.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
. bench/lib.sh

usage() {
    cat <<'USAGE'
usage: bench/run.sh [--domains N] [--reps N] [--bin-dir DIR] [--json PATH]
  --domains N    tiny running domains, one active VM each (default 100)
  --reps N       timed repetitions of each operation and of its baseline (default 20)
  --bin-dir DIR  the blockhost-vm-* executables to measure (default: a release build of this checkout)
  --json PATH    where the results go (default target/bench/bench-<UTC time>.json)
USAGE
}

domains=100
reps=20
bin_dir=""
json=""
while [ $# -gt 0 ]; do
    case "$1" in
        --domains) domains=${2:?--domains needs a number}; shift 2 ;;
        --reps) reps=${2:?--reps needs a number}; shift 2 ;;
        --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
        --json) json=${2:?--json needs a path}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[[ "$domains" =~ ^[1-9][0-9]*$ && "$domains" -le 500 ]] || { echo "bench: --domains must be 1 to 500" >&2; exit 2; }
[[ "$reps" =~ ^[1-9][0-9]*$ && "$reps" -ge 4 && "$reps" -le 1000 ]] || { echo "bench: --reps must be 4 to 1000" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || missing "the benchmark needs root (a private libvirtd in its own namespaces)"
ensure_libvirt_e2e
ensure_commands python3:python3

bin_dir=$(bench_bin_dir "$bin_dir" blockhost-vm-metrics)
json=$(bench_json "$json" bench)
bench_run bench bench/bench.py --bin-dir "$bin_dir" --repo "$PWD" --domains "$domains" --reps "$reps" --json "$json"
