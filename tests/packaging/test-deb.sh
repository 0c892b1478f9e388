#!/usr/bin/env bash
# Packaging test of blockhost-provisioner-libvirt: builds every backend's .deb
# with ./build-deb.sh (or takes the libvirt one as $1 and the Proxmox VE one as
# $2), runs lintian, checks every file at its contract path with its mode,
# installs it with `dpkg --root` into a scratch root (never the
# host) next to stand-in dependency packages, checks what the maintainer
# scripts did, then removes and purges it and checks nothing is left; last,
# runs test-deb-proxmox.sh on the Proxmox VE package.
# Needs root (dpkg --root keeps file ownership) and dpkg; skips otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."

skip() {
    echo "test-deb: SKIPPED: $*"
    exit 0
}
[ "$(id -u)" -eq 0 ] || skip "needs root (run as root to build, lint and install the package in a scratch root)"
command -v dpkg >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || skip "dpkg is not installed"

. scripts/lib/toolchain.sh
ensure_lintian
ensure_commands getfacl:acl
ensure_python_test_deps

PKG=blockhost-provisioner-libvirt
PROGS=(blockhost-vm-create blockhost-vm-destroy blockhost-vm-start blockhost-vm-stop blockhost-vm-kill
    blockhost-vm-status blockhost-vm-list blockhost-vm-metrics blockhost-vm-throttle blockhost-vm-gc
    blockhost-vm-resume blockhost-vm-update-gecos blockhost-vm-guest-exec blockhost-build-template
    blockhost-provisioner-detect)
BH_UID=4242
QEMU_UID=4343
QEMU_GID=4343

. tests/packaging/deb-lib.sh

deb=${1:-}
proxmox_deb=${2:-}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
if [ -z "$deb" ]; then
    built=$(bash build-deb.sh)
    expected_debs="${PKG}_${version}_amd64.deb blockhost-provisioner-proxmox_${version}_amd64.deb"
    [ "$(ls build | tr '\n' ' ')" = "$expected_debs " ] || fail "build/ holds $(ls build | tr '\n' ' '), not the two packages $expected_debs"
    deb=$(grep "/${PKG}_" <<<"$built")
    proxmox_deb=$(grep "/blockhost-provisioner-proxmox_" <<<"$built")
fi
[ -f "$deb" ] || fail "no package at '$deb'"
[ "$(basename "$deb")" = "${PKG}_${version}_amd64.deb" ] || fail "file name $(basename "$deb")"
ok "built $(basename "$deb")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- lintian -------------------------------------------------------------
check_lintian

# --- control fields ------------------------------------------------------
[ "$(field Package)" = "$PKG" ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version $(field Version) is not the workspace version $version"
changelog_version=$(sed -n '1s/^[^ ]* (\([^)]*\)).*/\1/p' packaging/libvirt/debian/changelog)
[ "$changelog_version" = "$version" ] || fail "changelog is at $changelog_version, the workspace at $version"
[ "$(field Architecture)" = amd64 ] || fail "Architecture: $(field Architecture)"
[ "$(field Provides)" = blockhost-provisioner ] || fail "Provides: $(field Provides)"
[ "$(field Conflicts)" = blockhost-provisioner ] || fail "Conflicts: $(field Conflicts)"
depends=$(field Depends)
for dep in 'blockhost-common (>= 0.1.0)' 'python3 (>= 3.10)' 'libc6 '; do
    case ", $depends" in *", $dep"*) ;; *) fail "Depends lacks $dep: $depends" ;; esac
done
[ "$(field Recommends)" = "qemu-utils, acl" ] || fail "Recommends: $(field Recommends)"
[ "$(field Suggests)" = "qemu-system-x86, libvirt-daemon-system, libvirt-clients, debootstrap" ] || fail "Suggests: $(field Suggests)"
ok "control: name, version, Provides/Conflicts, Depends, Recommends, Suggests"

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
    echo "-rwxr-xr-x usr/lib/blockhost-provisioner-libvirt/host-access.sh"
    echo "-rw-r--r-- usr/lib/blockhost-provisioner/libblockhost_cli.so"
    echo "-rw-r--r-- usr/share/blockhost/root-agent-actions/libvirt_host.py"
    for f in packaging/libvirt/python/blockhost/provisioner_libvirt/*.py; do
        echo "-rw-r--r-- usr/lib/python3/dist-packages/${f#packaging/libvirt/python/}"
    done
    for f in packaging/libvirt/python/blockhost/provisioner_libvirt/templates/provisioner_libvirt/*.html; do
        echo "-rw-r--r-- usr/lib/python3/dist-packages/${f#packaging/libvirt/python/}"
    done
    echo "-rw-r--r-- usr/lib/systemd/system/blockhost-gc.service"
    echo "-rw-r--r-- usr/lib/systemd/system/blockhost-gc.timer"
    echo "-rw-r--r-- usr/lib/systemd/system/blockhost-reconcile.service"
    for f in copyright changelog.gz README.md PROVISIONER_INTERFACE.md; do
        echo "-rw-r--r-- usr/share/doc/$PKG/$f"
    done
} | sort >"$work/expected"
packaged_files >"$work/files"
if ! diff -u "$work/expected" "$work/files"; then
    fail "package contents differ from the contract (- expected, + packaged)"
fi
dpkg-deb -c "$deb" | awk '$2 != "root/root" && $2 != "0/0" { print; bad = 1 } END { exit bad }' || fail "files not owned by root"
ok "contents: $(wc -l <"$work/files") files at their contract paths with their modes, owned by root"

# --- library dependencies of the executables -----------------------------
dpkg-deb -x "$deb" "$work/extract"

# --- size: fifteen distinct executables, at most 25 MB installed ----------
[ "${#PROGS[@]}" -eq 15 ] || fail "the contract has fifteen executables, the list here has ${#PROGS[@]}"
installed_size=$(field Installed-Size)
[ "$installed_size" -le 25600 ] || fail "Installed-Size $installed_size KiB exceeds 25600"
exes=$(find "$work/extract/usr/bin" -type f -links 1 | wc -l)
[ "$exes" -eq 15 ] || fail "usr/bin holds $exes regular unlinked files, not fifteen"
sums=$(cd "$work/extract/usr/bin" && sha256sum -- * | cut -d' ' -f1 | sort -u | wc -l)
[ "$sums" -eq 15 ] || fail "usr/bin holds $sums distinct executables, not fifteen"
ok "size: Installed-Size $installed_size KiB (at most 25600), fifteen distinct executables in usr/bin"
needed_of() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
for p in "${PROGS[@]}"; do
    case "$(needed_of "$work/extract/usr/bin/$p")" in *libvirt*) fail "$p links libvirt itself; only libblockhost_cli.so may" ;; esac
done
case " $(needed_of "$work/extract/usr/lib/blockhost-provisioner/libblockhost_cli.so" | tr '\n' ' ')" in
    *" libvirt.so.0 "*) ;;
    *) fail "libblockhost_cli.so does not link libvirt.so.0" ;;
esac
case ", $depends" in *", libvirt0 "*) ;; *) fail "libblockhost_cli.so links libvirt.so.0 but Depends lacks libvirt0" ;; esac
ok "no executable links libvirt; the library they load does, and Depends has libvirt0"

# --- systemd units -------------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
    units=$work/units
    mkdir "$units"
    grep -qx 'ExecStart=/usr/bin/blockhost-vm-gc --execute' "$work/extract/usr/lib/systemd/system/blockhost-gc.service" \
        || fail "ExecStart of blockhost-gc.service"
    # the unit names /usr/bin/blockhost-vm-gc, which exists only in the scratch tree
    sed "s#/usr/bin/blockhost-vm-gc#$work/extract/usr/bin/blockhost-vm-gc#" \
        "$work/extract/usr/lib/systemd/system/blockhost-gc.service" >"$units/blockhost-gc.service"
    cp "$work/extract/usr/lib/systemd/system/blockhost-gc.timer" "$units/"
    systemd-analyze verify --man=no "$units/blockhost-gc.timer" "$units/blockhost-gc.service" \
        || fail "systemd-analyze verify"
    ok "systemd-analyze verify: blockhost-gc.service and .timer"
    reconcile_unit=$work/extract/usr/lib/systemd/system/blockhost-reconcile.service
    grep -qx 'ExecStart=/usr/bin/blockhost-vm-gc --reconcile --vm-timeout 60 --timeout 300' "$reconcile_unit" \
        || fail "ExecStart of blockhost-reconcile.service"
    for line in Type=oneshot User=blockhost Group=blockhost WantedBy=multi-user.target \
        'After=libvirtd.service network-online.target blockhost-root-agent.service' \
        'Wants=libvirtd.service network-online.target blockhost-root-agent.service'; do
        grep -qx "$line" "$reconcile_unit" || fail "blockhost-reconcile.service lacks $line"
    done
    sed "s#/usr/bin/blockhost-vm-gc#$work/extract/usr/bin/blockhost-vm-gc#" \
        "$reconcile_unit" >"$units/blockhost-reconcile.service"
    systemd-analyze verify --man=no "$units/blockhost-reconcile.service" \
        || fail "systemd-analyze verify blockhost-reconcile.service"
    ok "systemd-analyze verify: blockhost-reconcile.service (oneshot as blockhost, after libvirtd and the network)"
else
    echo "systemd-analyze not installed: unit verification skipped"
fi

# --- stand-in dependencies -----------------------------------------------
make_standins

# --- what apt installs with it: no desktop stack -------------------------
# apt's own resolver, recommends followed, from an empty system (so what this
# machine happens to have installed hides nothing), in simulation only.
apt_simulation
desktop=$(awk '$2 ~ /^(qemu-system-gui|libgtk|libsdl2|libx11-|x11-common|libwayland|xserver|libgl1|libpulse)/ { print $2 }' "$work/pulled")
[ -z "$desktop" ] || fail "installing the package pulls a desktop stack: $(echo $desktop)"
ok "apt with recommends installs $(wc -l <"$work/pulled") packages, none of a desktop stack"

# --- the scratch root ----------------------------------------------------
root=$work/root
make_root "blockhost:$BH_UID:$BH_UID" "libvirt-qemu:$QEMU_UID:$QEMU_GID"

dpkg_root -i "$work/blockhost-common.deb" "$work/blockhost-test-base.deb" >/dev/null || fail "stand-in packages do not install"
dpkg_root -i "$deb" || fail "dpkg --root -i"
installed || fail "$PKG is not installed"
ok "installed into the scratch root with dpkg --root (dependencies satisfied)"

while read -r mode path; do
    [ -f "$root/$path" ] || fail "$path missing after installation"
    [ "$(stat -c %A "$root/$path")" = "$mode" ] || fail "$path has mode $(stat -c %A "$root/$path")"
done <"$work/expected"
[ ! -e "$root/usr/lib/python3/dist-packages/blockhost/__init__.py" ] || fail "blockhost/__init__.py is shipped"
ok "every file landed with its mode; no blockhost/__init__.py"

check_manifest_resolves actions
ok "manifest: the 15 executables, the hook, the actions and the wizard module resolve in the root"

if python3 -c 'import flask' 2>/dev/null; then
    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$root/usr/lib/python3/dist-packages" python3 -c '
import blockhost.provisioner_libvirt.wizard as w
assert [s[0] for s in w.get_finalization_steps()] == ["storage", "network", "db_config", "template"]
' || fail "the installed wizard does not import"
    ok "the installed wizard imports as blockhost.provisioner_libvirt.wizard (namespace package)"
fi
[ "$("$root/usr/bin/blockhost-vm-status" --version)" = "blockhost-vm-status $version" ] || fail "installed executable does not run"
ok "installed executables run"

for dir in templates vms cloud-init template-packages; do
    [ "$(stat -c '%u:%g %a' "$root/var/lib/blockhost/$dir")" = "$BH_UID:$QEMU_GID 2750" ] \
        || fail "var/lib/blockhost/$dir is $(stat -c '%u:%g %a' "$root/var/lib/blockhost/$dir")"
done
getfacl -np "$root/var/lib/blockhost" | grep -qx "user:$QEMU_UID:--x" || fail "no ACL u:libvirt-qemu:--x on var/lib/blockhost: $(getfacl -np "$root/var/lib/blockhost")"
ok "postinst (host-access.sh): state directories blockhost:libvirt-qemu 2750, libvirt-qemu may search var/lib/blockhost"
timer_enabled || fail "blockhost-gc.timer not enabled"
ok "postinst: blockhost-gc.timer enabled"
reconcile_enabled || fail "blockhost-reconcile.service not enabled"
ok "postinst: blockhost-reconcile.service enabled"

dpkg_root -i "$deb" >/dev/null
timer_enabled || fail "reinstalling disabled the timer"
reconcile_enabled || fail "reinstalling disabled blockhost-reconcile.service"
ok "reinstall keeps the timer and the reconciliation service enabled"

# --- remove, reinstall, purge --------------------------------------------
echo disk >"$root/var/lib/blockhost/vms/vm1.qcow2"
dpkg_root -r "$PKG" >/dev/null
! installed || fail "still installed after remove"
[ ! -e "$root/$WANTS" ] && [ ! -L "$root/$WANTS" ] || fail "timer still enabled after remove"
[ ! -L "$root/$RECONCILE_WANTS" ] || fail "blockhost-reconcile.service still enabled after remove"
[ ! -e "$root/usr/bin/blockhost-vm-create" ] || fail "files left after remove"
ok "remove: files gone, timer and reconciliation service disabled"

dpkg_root -i "$deb" >/dev/null
timer_enabled || fail "timer not enabled after reinstall following a remove"
reconcile_enabled || fail "reconciliation not enabled after reinstall following a remove"
rm "$root/$WANTS" "$root/$RECONCILE_WANTS"
dpkg_root -i "$deb" >/dev/null
! timer_enabled || fail "an upgrade re-enabled a timer the administrator disabled"
! reconcile_enabled || fail "an upgrade re-enabled a reconciliation the administrator disabled"
ok "after a remove the timer is enabled again; an administrator's disable survives an upgrade"

# Bytecode as importing the wizard and the root-agent action leaves it, next
# to another package's action bytecode, which must stay.
site=$root/usr/lib/python3/dist-packages
actions=$root/usr/share/blockhost/root-agent-actions
python3 -m compileall -q "$site/blockhost/provisioner_libvirt" "$actions" >/dev/null || fail "compileall"
[ -n "$(find "$site/blockhost/provisioner_libvirt" -name '*.pyc')" ] || fail "no wizard bytecode to purge"
ls "$actions"/__pycache__/libvirt_host.*.pyc >/dev/null || fail "no action bytecode to purge"
: >"$actions/__pycache__/other_plugin.cpython-311.pyc"
mkdir -p "$root/var/lib/blockhost/metrics"
echo '{}' >"$root/var/lib/blockhost/metrics/vm1.json"
: >"$root/var/lib/blockhost/.step-libvirt-packages"
dpkg_root -P "$PKG" >/dev/null
[ -z "$(dpkg-query --root="$root" -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null)" ] || fail "package still known after purge"
while read -r _ path; do
    [ ! -e "$root/$path" ] || fail "$path left after purge"
done <"$work/expected"
leftovers=$(cd "$root" && find etc/systemd var/lib/systemd var/lib/dpkg/info -name "*blockhost-gc*" -o -name "*blockhost-reconcile*" -o -name "$PKG.*" 2>/dev/null || true)
[ -z "$leftovers" ] || fail "left after purge: $leftovers"
[ ! -e "$root/$WANTS" ] || fail "timer enabled after purge"
[ ! -L "$root/$RECONCILE_WANTS" ] || fail "reconciliation enabled after purge"
[ -f "$root/var/lib/blockhost/vms/vm1.qcow2" ] || fail "purge deleted a VM disk"
[ -z "$(getfacl -cpn --skip-base "$root/var/lib/blockhost")" ] || fail "purge left an ACL on var/lib/blockhost: $(getfacl -cpn "$root/var/lib/blockhost")"
for gone in metrics templates cloud-init template-packages .step-libvirt-packages; do
    [ ! -e "$root/var/lib/blockhost/$gone" ] || fail "purge left var/lib/blockhost/$gone"
done
[ ! -e "$site/blockhost" ] || fail "purge left $(cd "$root" && find usr/lib/python3/dist-packages/blockhost | tr '\n' ' ')"
[ -z "$(ls "$actions"/__pycache__/libvirt_host.* 2>/dev/null)" ] || fail "purge left the action's bytecode"
[ -f "$actions/__pycache__/other_plugin.cpython-311.pyc" ] || fail "purge removed another package's bytecode"
ok "purge: nothing of the package left; VM disks kept; empty state, cache, markers and the QEMU ACL removed; no __pycache__ of ours"

echo "test-deb: $checks checks passed"

[ -n "$proxmox_deb" ] || fail "no Proxmox VE package to test (give its path as \$2)"
bash tests/packaging/test-deb-proxmox.sh "$proxmox_deb"
