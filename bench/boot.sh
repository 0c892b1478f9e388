#!/usr/bin/env bash
# Time to a usable VM on the real-VM layer, separate from the tests: each
# template given (default: the one the real-VM stage builds and caches) is
# created from with blockhost-vm-create --apply on a private libvirtd
# (tests/e2e/libvirtd.sh, guests on its isolated bridge), one VM at a time,
# templates in turn; prints the phases' medians and writes every run as JSON.
# Needs root. Everything it starts is stopped and removed on exit.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
. bench/lib.sh

usage() {
    cat <<'USAGE'
usage: bench/boot.sh [--template LABEL=DIR]... [--reps N] [--bin-dir DIR] [--bins LABEL=DIR]... [--json PATH]
  --template LABEL=DIR  a template version directory (disk.qcow2, template.json); repeat to compare
                        (default: current=<the real-VM stage's cached template, built when missing or out of date>)
  --reps N              VMs created from each template (default 3)
  --bin-dir DIR         the blockhost-vm-* executables (default: a release build of this checkout)
  --bins LABEL=DIR      other executables for the VMs of template LABEL (e.g. an older release's, to
                        compare two versions of the product rather than two templates)
  --json PATH           where the results go (default target/bench/boot-<UTC time>.json)
USAGE
}

templates=()
bins=()
reps=3
bin_dir=""
json=""
while [ $# -gt 0 ]; do
    case "$1" in
        --template) templates+=("${2:?--template needs LABEL=DIR}"); shift 2 ;;
        --reps) reps=${2:?--reps needs a number}; shift 2 ;;
        --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
        --bins) bins+=("${2:?--bins needs LABEL=DIR}"); shift 2 ;;
        --json) json=${2:?--json needs a path}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[[ "$reps" =~ ^[1-9][0-9]*$ && "$reps" -le 50 ]] || { echo "boot: --reps must be 1 to 50" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || missing "the boot benchmark needs root (a private libvirtd in its own namespaces)"
ensure_libvirt_dev
ensure_rust
ensure_libvirt_e2e
ensure_commands python3:python3

if [ "${#templates[@]}" -eq 0 ]; then
    cache=${BLOCKHOST_E2E_DIR:-$HOME/.cache/blockhost-e2e}/template-host
    mkdir -p "$cache/var/lib/blockhost/template-packages"
    cargo build --quiet -p blockhost-provisioner-bins --bin blockhost-build-template
    bash tests/e2e/probe-deb.sh "$cache/var/lib/blockhost/template-packages"
    BLOCKHOST_ROOT=$cache BLOCKHOST_PROVIDER=libvirt target/debug/blockhost-build-template --allow-without-libpam-web3
    templates=("current=$(readlink -f "$cache/var/lib/blockhost/templates/current")")
fi
args=()
for spec in "${templates[@]}"; do
    label=${spec%%=*}
    dir=${spec#*=}
    [[ "$spec" == *=* && "$label" =~ ^[a-z0-9-]+$ ]] || { echo "boot: --template wants LABEL=DIR with a label of a-z, 0-9 and -" >&2; exit 2; }
    dir=$(cd "$caller" && cd "$dir" && pwd)
    [ -f "$dir/disk.qcow2" ] && [ -f "$dir/template.json" ] || missing "$dir holds no template (disk.qcow2, template.json)"
    args+=(--template "$label=$dir")
done

for spec in ${bins[@]+"${bins[@]}"}; do
    [[ "$spec" == *=* ]] || { echo "boot: --bins wants LABEL=DIR" >&2; exit 2; }
    args+=(--bins "${spec%%=*}=$(bench_bin_dir "${spec#*=}" blockhost-vm-create)")
done
bin_dir=$(bench_bin_dir "$bin_dir" blockhost-vm-create)
json=$(bench_json "$json" boot)
bench_run boot bench/boot.py --bin-dir "$bin_dir" --repo "$PWD" --reps "$reps" --json "$json" "${args[@]}"
