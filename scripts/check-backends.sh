#!/usr/bin/env bash
# A backend is a cargo feature: the library and the executables pass clippy
# with no backend compiled in (the mock alone) and with each backend alone
# (every folder of lib/src/provider/ but the mock is a backend and names its
# feature), and neither the executables nor the library they load
# (libblockhost_cli.so) link libvirt0 unless built with the libvirt backend.
# Uses its own target directory so the main build's executables are left as
# they are.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/backends"

lint() {
    log "clippy, no default features${1:+, --features $1}"
    cargo clippy --quiet -p blockhost-provisioner -p blockhost-provisioner-bins --all-targets \
        --no-default-features ${1:+--features "$1"} -- -D warnings
}

backends=()
for dir in lib/src/provider/*/; do
    name=$(basename "$dir")
    [ "$name" = mock ] || backends+=("$name")
done

lint ""
for backend in "${backends[@]}"; do
    lint "$backend"
done

# $1: the backend feature to build with, empty for none.
links_no_libvirt() {
    local what="without a backend"
    [ -z "$1" ] || what="with only $1"
    cargo build --quiet -p blockhost-provisioner-bins --no-default-features ${1:+--features "$1"} --lib --bins
    for exe in "$CARGO_TARGET_DIR"/debug/blockhost-* "$CARGO_TARGET_DIR"/debug/libblockhost_cli.so; do
        [ -x "$exe" ] && [ -f "$exe" ] || continue
        linked=$(ldd "$exe")
        if grep -q libvirt <<<"$linked"; then
            printf '%s\n' "$linked" >&2
            missing "$(basename "$exe") built $what still links libvirt"
        fi
    done
    log "$what, no executable links libvirt"
}

links_no_libvirt ""
for backend in "${backends[@]}"; do
    [ "$backend" = libvirt ] || links_no_libvirt "$backend"
done
