#!/usr/bin/env bash
# Builds blockhost-e2e-probe_1.0_all.deb into $1: a package whose only file
# proves, inside a VM, that template-packages/ were installed in the template.
set -euo pipefail
out=$1
deb=$out/blockhost-e2e-probe_1.0_all.deb
# Built once: a new file would change the template inputs and force a rebuild.
[ -f "$deb" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/DEBIAN" "$work/usr/share/blockhost-e2e-probe"
cat > "$work/DEBIAN/control" <<'CONTROL'
Package: blockhost-e2e-probe
Version: 1.0
Architecture: all
Maintainer: BlockHost provisioner tests <tests@localhost>
Depends: jq
Description: end-to-end probe of template-packages
 Installed by blockhost-build-template from template-packages/; pulls in jq
 to prove that dependencies come along.
CONTROL
echo probe > "$work/usr/share/blockhost-e2e-probe/present"
dpkg-deb --root-owner-group -Zgzip --build "$work" "$deb" >/dev/null
