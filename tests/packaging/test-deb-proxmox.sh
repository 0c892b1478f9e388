#!/usr/bin/env bash
# Packaging test of blockhost-provisioner-proxmox ($1: the .deb, as
# test-deb.sh passes it): lintian, the control fields (no libvirt0), every
# file at its contract path with its mode, no executable linking libvirt, the
# units, then installs it with `dpkg --root` into a scratch root (never the
# host) next to stand-in dependency packages, runs the installed wizard and
# blockhost-provisioner-detect there, removes and purges it and checks
# nothing is left.
# Needs root (dpkg --root keeps file ownership) and dpkg; test-deb.sh checked both.
set -euo pipefail
cd "$(dirname "$0")/../.."

PKG=blockhost-provisioner-proxmox
PROGS=(blockhost-vm-create blockhost-vm-destroy blockhost-vm-start blockhost-vm-stop blockhost-vm-kill
    blockhost-vm-status blockhost-vm-list blockhost-vm-metrics blockhost-vm-throttle blockhost-vm-gc
    blockhost-vm-resume blockhost-vm-update-gecos blockhost-vm-guest-exec blockhost-build-template
    blockhost-provisioner-detect)
PLUGIN=packaging/proxmox/python/blockhost/provisioner_proxmox
BH_UID=4242

. tests/packaging/deb-lib.sh

deb=${1:-}
[ -f "$deb" ] || fail "no package at '$deb'"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ "$(basename "$deb")" = "${PKG}_${version}_amd64.deb" ] || fail "file name $(basename "$deb")"
ok "built $(basename "$deb")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

check_lintian

# --- control fields ------------------------------------------------------
[ "$(field Package)" = "$PKG" ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version $(field Version) is not the workspace version $version"
changelog_version=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' packaging/proxmox/debian/changelog)
[ "$changelog_version" = "$version" ] || fail "changelog is at $changelog_version, the workspace at $version"
[ "$(field Architecture)" = amd64 ] || fail "Architecture: $(field Architecture)"
[ "$(field Provides)" = blockhost-provisioner ] || fail "Provides: $(field Provides)"
[ "$(field Conflicts)" = blockhost-provisioner ] || fail "Conflicts: $(field Conflicts)"
depends=$(field Depends)
for dep in 'blockhost-common (>= 0.1.0)' 'python3 (>= 3.10)' 'libc6 '; do
    case ", $depends" in *", $dep"*) ;; *) fail "Depends lacks $dep: $depends" ;; esac
done
case "$depends" in *libvirt*) fail "Depends names libvirt: $depends" ;; esac
[ -z "$(field Recommends)" ] || fail "Recommends: $(field Recommends)"
[ "$(field Suggests)" = "debootstrap, qemu-utils, qemu-system-x86" ] || fail "Suggests: $(field Suggests)"
ok "control: name, version, Provides/Conflicts, Depends without libvirt ($depends), no Recommends, Suggests what build-template runs"

# --- contents at the contract paths --------------------------------------
{
    for p in "${PROGS[@]}"; do
        echo "-rwxr-xr-x usr/bin/$p"
        echo "-rw-r--r-- usr/share/man/man1/$p.1.gz"
        echo "-rw-r--r-- usr/share/bash-completion/completions/$p"
        echo "-rw-r--r-- usr/share/zsh/vendor-completions/_$p"
        echo "-rw-r--r-- usr/share/fish/vendor_completions.d/$p.fish"
    done
    echo "-rw-r--r-- usr/share/blockhost/provisioner.json"
    echo "-rwxr-xr-x usr/share/blockhost/provisioner-hooks/first-boot.sh"
    echo "-rw-r--r-- usr/lib/blockhost-provisioner/libblockhost_cli.so"
    for f in "$PLUGIN"/*.py "$PLUGIN"/templates/provisioner_proxmox/*.html; do
        echo "-rw-r--r-- usr/lib/python3/dist-packages/${f#packaging/proxmox/python/}"
    done
    for unit in blockhost-gc.service blockhost-gc.timer blockhost-reconcile.service; do
        echo "-rw-r--r-- usr/lib/systemd/system/$unit"
    done
    for f in copyright changelog.gz README.md PROVISIONER_INTERFACE.md; do
        echo "-rw-r--r-- usr/share/doc/$PKG/$f"
    done
} | sort >"$work/expected"
packaged_files >"$work/files"
if ! diff -u "$work/expected" "$work/files"; then
    fail "package contents differ from the contract (- expected, + packaged)"
fi
dpkg-deb -c "$deb" | awk '$2 != "root/root" && $2 != "0/0" { print; bad = 1 } END { exit bad }' || fail "files not owned by root"
ok "contents: $(wc -l <"$work/files") regular files at their contract paths with their modes, owned by root; no root-agent action"

dpkg-deb -x "$deb" "$work/extract"
site=usr/lib/python3/dist-packages/blockhost/provisioner_proxmox
for shared in yamlio.py ipv4pool.py hostio.py dbyaml.py wizardstep.py \
        templates/provisioner_proxmox/_form_tail.html templates/provisioner_proxmox/_summary_section.html; do
    origin=packaging/libvirt/python/blockhost/provisioner_libvirt/${shared/provisioner_proxmox/provisioner_libvirt}
    cmp -s "$work/extract/$site/$shared" "$origin" || fail "$site/$shared is not a copy of $origin"
done
ok "yamlio.py, ipv4pool.py, hostio.py, dbyaml.py, wizardstep.py, _form_tail.html and _summary_section.html are copies of the libvirt plugin's (one source)"

# --- executables: fifteen, neither they nor their library linking libvirt ---
exes=$(find "$work/extract/usr/bin" -type f -links 1 | wc -l)
sums=$(cd "$work/extract/usr/bin" && sha256sum -- * | cut -d' ' -f1 | sort -u | wc -l)
[ "$exes" -eq 15 ] && [ "$sums" -eq 15 ] || fail "usr/bin holds $exes files, $sums distinct, not fifteen"
installed_size=$(field Installed-Size)
[ "$installed_size" -le 25600 ] || fail "Installed-Size $installed_size KiB exceeds 25600"
library=$work/extract/usr/lib/blockhost-provisioner/libblockhost_cli.so
needed=$(for f in "${PROGS[@]/#/$work/extract/usr/bin/}" "$library"; do readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; done | sort -u)
[ -n "$needed" ] || fail "readelf finds no NEEDED entries"
case "$needed" in *libvirt*) fail "an executable or libblockhost_cli.so links libvirt: $(echo $needed)" ;; esac
ok "fifteen distinct executables, Installed-Size $installed_size KiB (at most 25600); they and their library link only $(echo $needed)"

# --- systemd units -------------------------------------------------------
units=$work/extract/usr/lib/systemd/system
grep -qx 'ExecStart=/usr/bin/blockhost-vm-gc --execute' "$units/blockhost-gc.service" || fail "ExecStart of blockhost-gc.service"
grep -qx 'ExecStart=/usr/bin/blockhost-vm-gc --reconcile --vm-timeout 60 --timeout 300' "$units/blockhost-reconcile.service" \
    || fail "ExecStart of blockhost-reconcile.service"
for unit in blockhost-gc.service blockhost-reconcile.service; do
    ! grep -q libvirt "$units/$unit" || fail "$unit names libvirt"
    grep -qx 'After=network-online.target pveproxy.service' "$units/$unit" || fail "$unit is not ordered after the network and a local API"
done
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir "$work/units"
    for unit in blockhost-gc.service blockhost-gc.timer blockhost-reconcile.service; do
        # the units name /usr/bin/blockhost-vm-gc, which exists only in the scratch tree
        sed "s#/usr/bin/blockhost-vm-gc#$work/extract/usr/bin/blockhost-vm-gc#" "$units/$unit" >"$work/units/$unit"
    done
    systemd-analyze verify --man=no "$work/units/"* || fail "systemd-analyze verify"
    ok "units: ExecStart as libvirt's, after the network (no libvirtd); systemd-analyze verify passes"
else
    ok "units: ExecStart as libvirt's, after the network (no libvirtd); systemd-analyze not installed"
fi

# --- install into the scratch root ---------------------------------------
make_standins
apt_simulation
! grep -q libvirt "$work/pulled" || fail "installing the package pulls libvirt: $(grep libvirt "$work/pulled")"
ok "apt with recommends installs $(wc -l <"$work/pulled") packages, nothing of libvirt"

root=$work/root
make_root "blockhost:$BH_UID:$BH_UID"
dpkg_root -i "$work/blockhost-common.deb" "$work/blockhost-test-base.deb" >/dev/null || fail "stand-in packages do not install"
dpkg_root -i "$deb" || fail "dpkg --root -i"
installed || fail "$PKG is not installed"
while read -r mode path; do
    [ -f "$root/$path" ] || fail "$path missing after installation"
    [ "$(stat -c %A "$root/$path")" = "$mode" ] || fail "$path has mode $(stat -c %A "$root/$path")"
done <"$work/expected"
[ ! -e "$root/usr/lib/python3/dist-packages/blockhost/__init__.py" ] || fail "blockhost/__init__.py is shipped"
[ ! -e "$root/usr/share/blockhost/root-agent-actions" ] || fail "root-agent actions are shipped"
ok "installed into the scratch root with dpkg --root; every file landed with its mode"

check_manifest_resolves no-actions
python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["name"] == "proxmox"' "$root/usr/share/blockhost/provisioner.json" \
    || fail "the installed manifest is not named proxmox"
ok "manifest named proxmox: the 15 executables, the hook and the wizard module resolve; no root-agent actions"

if python3 -c 'import flask' 2>/dev/null; then
    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$root/usr/lib/python3/dist-packages" python3 -c '
import blockhost.provisioner_proxmox.wizard as w
assert [s[0] for s in w.get_finalization_steps()] == ["token", "tls", "db_config", "api", "template"]
' || fail "the installed wizard does not import"
    ok "the installed wizard imports as blockhost.provisioner_proxmox.wizard on its own (no libvirt plugin)"
fi

# --- the executables in the root: the Proxmox VE backend, and only it -----
[ "$("$root/usr/bin/blockhost-vm-status" --version)" = "blockhost-vm-status $version" ] || fail "installed executable does not run"
detect() {
    local status=0
    env -u BLOCKHOST_PROVIDER BLOCKHOST_ROOT="$root" "$@" "$root/usr/bin/blockhost-provisioner-detect" \
        >"$work/detect.out" 2>"$work/detect.err" || status=$?
    echo "$status"
}
[ "$(detect)" = 1 ] && [ ! -s "$work/detect.out" ] && [ "$(wc -l <"$work/detect.err")" -eq 1 ] \
    || fail "detect without db.yaml: $(cat "$work/detect.out" "$work/detect.err")"
ok "detect without a configuration: exit 1, one line: $(cat "$work/detect.err")"
[ "$(detect BLOCKHOST_PROVIDER=libvirt)" = 1 ] && grep -q 'unknown provider "libvirt"' "$work/detect.err" \
    || fail "the libvirt backend answers in the Proxmox VE package: $(cat "$work/detect.err")"
ok "the libvirt backend is not compiled in: $(cat "$work/detect.err")"
# An API where nothing listens on loopback: the configuration is read and the client tries it.
mkdir -p "$root/etc/blockhost"
printf 'ip_pool:\n  network: 10.30.0.0/24\n  start: 10.30.0.100\n  end: 10.30.0.199\n  gateway: 10.30.0.1\nproxmox:\n  url: https://127.0.0.1:9\n  node: pve1\n  tls_fingerprint: "%s"\n' \
    "$(printf 'AB:%.0s' $(seq 31))AB" >"$root/etc/blockhost/db.yaml"
printf 'root@pam!blockhost=secret' >"$root/etc/blockhost/pve-token"
chmod 0640 "$root/etc/blockhost/pve-token"
[ "$(detect)" = 1 ] && grep -q '^.*Proxmox VE API at https://127.0.0.1:9' "$work/detect.err" \
    || fail "detect against a closed loopback port: $(cat "$work/detect.out" "$work/detect.err")"
ok "detect against a closed loopback port: exit 1, $(cat "$work/detect.err")"
rm -r "$root/etc/blockhost"

# --- maintainer scripts --------------------------------------------------
timer_enabled || fail "blockhost-gc.timer not enabled"
reconcile_enabled || fail "blockhost-reconcile.service not enabled"
ok "postinst: blockhost-gc.timer and blockhost-reconcile.service enabled"
dpkg_root -i "$deb" >/dev/null
timer_enabled && reconcile_enabled || fail "reinstalling disabled a unit"
rm "$root/$WANTS"
dpkg_root -i "$deb" >/dev/null
! timer_enabled || fail "an upgrade re-enabled a timer the administrator disabled"
ok "reinstall keeps the units enabled; an administrator's disable survives an upgrade"

dpkg_root -r "$PKG" >/dev/null
! installed || fail "still installed after remove"
[ ! -L "$root/$WANTS" ] && [ ! -L "$root/$RECONCILE_WANTS" ] || fail "a unit is still enabled after remove"
[ ! -e "$root/usr/bin/blockhost-vm-create" ] || fail "files left after remove"
ok "remove: files gone, units disabled"

dpkg_root -i "$deb" >/dev/null
timer_enabled && reconcile_enabled || fail "units not enabled after reinstall following a remove"
python3 -m compileall -q "$root/$site" >/dev/null || fail "compileall"
[ -n "$(find "$root/$site" -name '*.pyc')" ] || fail "no wizard bytecode to purge"
mkdir -p "$root/var/lib/blockhost/metrics"
echo '{}' >"$root/var/lib/blockhost/metrics/vm1.json"
echo '[]' >"$root/var/lib/blockhost/vms.json"
dpkg_root -P "$PKG" >/dev/null
[ -z "$(dpkg-query --root="$root" -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null)" ] || fail "package still known after purge"
while read -r _ path; do
    [ ! -e "$root/$path" ] || fail "$path left after purge"
done <"$work/expected"
leftovers=$(cd "$root" && find etc/systemd var/lib/systemd var/lib/dpkg/info -name "*blockhost-gc*" -o -name "*blockhost-reconcile*" -o -name "$PKG.*" 2>/dev/null || true)
[ -z "$leftovers" ] || fail "left after purge: $leftovers"
[ ! -e "$root/var/lib/blockhost/metrics" ] || fail "purge left the metrics cache"
[ ! -e "$root/usr/lib/python3/dist-packages/blockhost" ] || fail "purge left $(cd "$root" && find usr/lib/python3/dist-packages/blockhost | tr '\n' ' ')"
[ -f "$root/var/lib/blockhost/vms.json" ] || fail "purge deleted the VM database"
ok "purge: nothing of the package left, no __pycache__; the VM database kept"

echo "test-deb-proxmox: $checks checks passed"
