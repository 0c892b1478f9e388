#!/usr/bin/env bash
# A backend is a cargo feature: the library and the executables pass clippy
# with no backend compiled in (the mock alone) and with each backend of
# packaging/ alone, and without a backend no executable links a backend's
# system library (libvirt0). Uses its own target directory so the main
# build's executables are left as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/backends"

lint() {
    log "clippy, no default features${1:+, --features $1}"
    cargo clippy --quiet -p blockhost-provisioner -p blockhost-provisioner-bins --all-targets \
        --no-default-features ${1:+--features "$1"} -- -D warnings
}

lint ""
for manifest in packaging/*/Cargo.toml; do
    lint "$(basename "$(dirname "$manifest")")"
done

cargo build --quiet -p blockhost-provisioner-bins --no-default-features --bins
for exe in "$CARGO_TARGET_DIR"/debug/blockhost-*; do
    [ -x "$exe" ] && [ -f "$exe" ] || continue
    linked=$(ldd "$exe")
    if grep -q libvirt <<<"$linked"; then
        printf '%s\n' "$linked" >&2
        missing "$(basename "$exe") built without a backend still links libvirt"
    fi
done
log "without a backend, no executable links libvirt"
