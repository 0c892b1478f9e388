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

if [ -z "$bin_dir" ]; then
    ensure_libvirt_dev
    ensure_rust
    log "building the release executables"
    cargo build --quiet --release -p blockhost-provisioner-bins --bins
    target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
    bin_dir=$target_dir/release
fi
bin_dir=$(cd "$caller" && cd "$bin_dir" && pwd)
[ -x "$bin_dir/blockhost-vm-metrics" ] || missing "no blockhost-vm-metrics in $bin_dir"
if [ -z "$json" ]; then
    json=$PWD/target/bench/bench-$(date -u +%Y%m%dT%H%M%SZ).json
elif [[ "$json" != /* ]]; then
    json=$caller/$json
fi

# QEMU runs as libvirt-qemu: the run directory must be traversable by everyone.
RUN=$(mktemp -d /var/tmp/blockhost-bench.XXXXXX)
chmod 0755 "$RUN"
export STATE=$RUN/libvirtd
driver=""
cleanup() {
    # Every step runs, whatever the one before did.
    set +e
    [ -n "$driver" ] && kill "$driver" 2>/dev/null
    bash tests/e2e/libvirtd.sh stop || log "stopping the private libvirtd failed: see $STATE"
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
uri=$(bash tests/e2e/libvirtd.sh start)

# In the background and waited for, so that a signal runs the cleanup at once.
python3 -B bench/bench.py --uri "$uri" --libvirtd-state "$STATE" --run-dir "$RUN" --bin-dir "$bin_dir" \
    --repo "$PWD" --domains "$domains" --reps "$reps" --json "$json" &
driver=$!
status=0
wait "$driver" || status=$?
driver=""
exit "$status"
