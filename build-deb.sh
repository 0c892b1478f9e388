#!/usr/bin/env bash
# Builds the Debian package of every backend of this checkout into build/, as
# BlockHost's ISO builder expects (it runs this script and takes
# build/blockhost-provisioner-<backend>_*.deb), and checks it with lintian.
# Installs what it needs, like the other scripts. Prints each package's path.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/lib/toolchain.sh
ensure_lintian

rm -rf build
mkdir -p build
for manifest in packaging/*/Cargo.toml; do
    backend=$(basename "$(dirname "$manifest")")
    deb=$(bash scripts/package.sh "$backend" | tail -n 1)
    cp "$deb" build/
done
for package in build/*.deb; do
    lintian --fail-on error,warning "$package" >&2 || missing "lintian finds errors or warnings in $package (see above)"
    echo "$PWD/$package"
done
