#!/bin/sh
# Host access of blockhost-provisioner-libvirt: where the unprivileged USER
# (blockhost: engine, gc, reconcile) makes VM disks, seeds and templates, and
# QEMU, running as QEMU_USER:QEMU_GROUP (libvirt-qemu on a Debian host, with
# libvirt's dynamic ownership), reads them. Run by the postinst and by the
# first-boot hook (again once libvirt-daemon-system has made libvirt-qemu),
# and by the real-VM tests on their root: one setup for all three.
#   - templates vms cloud-init template-packages under /var/lib/blockhost:
#     owner USER, group QEMU_GROUP, mode 2750. Setgid: what root or USER
#     makes inside later (template versions, seed directories, console logs)
#     takes the group QEMU reads through without every writer changing it.
#   - /var/lib/blockhost itself (blockhost-common's, USER:USER 0750) gets one
#     ACL entry, u:QEMU_USER:--x: search, no listing, and nothing else of
#     blockhost-common's changes (needs setfacl, package acl).
# When QEMU_USER or QEMU_GROUP does not exist yet (libvirt-daemon-system not
# installed), the directories get USER's group and no ACL is set.
# Usage: host-access.sh [USER [QEMU_USER [QEMU_GROUP]]]
#        (defaults: blockhost libvirt-qemu libvirt-qemu)
# BLOCKHOST_ROOT prefixes every path, and names are then looked up in its
# etc/passwd and etc/group (dpkg --root, tests); otherwise through getent.

set -eu

ROOT=${BLOCKHOST_ROOT:-}
ROOT=${ROOT%/}
USER_NAME=${1:-blockhost}
QEMU_USER=${2:-libvirt-qemu}
QEMU_GROUP=${3:-libvirt-qemu}
STATE=$ROOT/var/lib/blockhost
STATE_DIRS="templates vms cloud-init template-packages"

say() { printf 'host-access: %s\n' "$*" >&2; }

# field DATABASE NAME N: field N of NAME's passwd or group line, empty when NAME does not exist.
field() {
    if [ -n "$ROOT" ]; then
        line=$(grep "^$2:" "$ROOT/etc/$1" 2>/dev/null | head -n 1) || true
    else
        line=$(getent "$1" "$2") || true
    fi
    printf '%s\n' "$line" | cut -d: -f"$3"
}

uid=$(field passwd "$USER_NAME" 3)
if [ -z "$uid" ]; then
    say "user $USER_NAME does not exist (blockhost-common creates it)"
    exit 1
fi
gid=$(field group "$QEMU_GROUP" 3)
qemu_uid=$(field passwd "$QEMU_USER" 3)
if [ -z "$gid" ] || [ -z "$qemu_uid" ]; then
    say "$QEMU_USER:$QEMU_GROUP does not exist (yet): $STATE not opened to QEMU"
    gid=$(field passwd "$USER_NAME" 4)
    qemu_uid=
fi

for dir in $STATE_DIRS; do
    mkdir -p "$STATE/$dir"
    chown "$uid:$gid" "$STATE/$dir"
    chmod 2750 "$STATE/$dir"
done
if [ -n "$qemu_uid" ]; then
    if ! command -v setfacl >/dev/null 2>&1; then
        say "setfacl is not installed (package acl): $QEMU_USER cannot reach $STATE"
        exit 1
    fi
    setfacl -m "u:$qemu_uid:--x" "$STATE"
fi
