#!/usr/bin/env bash
# Builds the Debian package of the libvirt backend from a clean checkout: man
# pages and shell completions generated from the executables' clap
# definitions, then cargo-deb with bins/Cargo.toml's [package.metadata.deb].
# The last line printed is the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/toolchain.sh
ensure_libvirt_dev
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

log "cargo deb"
cargo deb -p blockhost-provisioner-bins --output "$target_dir/debian/" >&2

debs=("$target_dir"/debian/blockhost-provisioner-libvirt_*_amd64.deb)
[ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || { log "expected one .deb in $target_dir/debian"; exit 1; }
echo "${debs[0]}"
