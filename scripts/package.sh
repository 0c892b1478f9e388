#!/usr/bin/env bash
# Builds the Debian package of one backend (default: libvirt) from a clean
# checkout: man pages and shell completions generated from the executables'
# clap definitions, the executables with only that backend's cargo feature,
# then cargo-deb with packaging/<backend>/Cargo.toml's [package.metadata.deb].
# The last line printed is the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
backend=${1:-libvirt}
[ -f "packaging/$backend/Cargo.toml" ] || missing "no backend '$backend': packaging/$backend/Cargo.toml does not exist"
[ "$backend" != libvirt ] || ensure_libvirt_dev
ensure_rust
ensure_dpkg_dev
ensure_cargo_deb

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || { log "cannot find cargo's target directory"; exit 1; }
generated=$target_dir/release/generated
rm -rf "$generated" "$target_dir/debian"

log "man pages and shell completions"
cargo run --quiet --release -p xtask -- assets "$generated"
gzip -9n "$generated"/man/*.1

log "executables and their library with only the $backend backend"
cargo build --release -p blockhost-provisioner-bins --no-default-features --features "$backend" --lib --bins >&2

log "cargo deb"
cargo deb -p "blockhost-provisioner-$backend" --no-build --output "$target_dir/debian/" >&2

debs=("$target_dir"/debian/"blockhost-provisioner-${backend}"_*_amd64.deb)
[ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || { log "expected one .deb in $target_dir/debian"; exit 1; }
echo "${debs[0]}"
