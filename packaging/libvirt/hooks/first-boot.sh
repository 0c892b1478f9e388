#!/bin/sh
# First-boot hook of blockhost-provisioner-libvirt (manifest setup.first_boot_hook).
#
# Run as root by BlockHost's first-boot script, which exports STATE_DIR and
# LOG_FILE and keeps our output in its log. Prepares the host for the
# libvirt/KVM backend:
#   packages   apt-get install the hypervisor, libvirt and the template builder,
#              waiting up to $DPKG_LOCK_TIMEOUT s (default 600) for the dpkg lock
#              that apt-daily/unattended-upgrades may hold on a fresh host
#   libvirtd   enable (and, under systemd, start) libvirtd
#   groups     add the blockhost user to libvirt and libvirt-qemu (those that exist)
#   host-access  open the VM state directories to QEMU's user libvirt-qemu, which
#              exists only now (the package's host-access.sh, also run by the postinst)
#   kvm-check  warn when /dev/kvm is missing (VMs would run emulated, slowly)
# Each phase runs once: its marker $STATE_DIR/.step-libvirt-<phase> is written
# only after it succeeded, so a failed first boot resumes where it stopped.
# Exits non-zero when a phase fails; the phases after it are not run.
#
# BLOCKHOST_ROOT (tests) prefixes every host path read or written here.

set -u

ROOT=${BLOCKHOST_ROOT:-}
ROOT=${ROOT%/}
STATE_DIR=${STATE_DIR:-/var/lib/blockhost}
MARKER_DIR=$ROOT$STATE_DIR
BLOCKHOST_USER=blockhost
# qemu-utils: qemu-img for VM disks; debootstrap: blockhost-build-template;
# acl: setfacl for host-access.sh.
PACKAGES="qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients debootstrap acl"
HOST_ACCESS=/usr/lib/blockhost-provisioner-libvirt/host-access.sh
DPKG_LOCK_TIMEOUT=${DPKG_LOCK_TIMEOUT:-600}

say() { printf 'libvirt first boot: %s\n' "$*"; }
warn() { printf 'libvirt first boot: warning: %s\n' "$*" >&2; }
error() { printf 'libvirt first boot: error: %s\n' "$*" >&2; }

phase_packages() {
    case $DPKG_LOCK_TIMEOUT in
        '' | *[!0-9]*)
            warn "DPKG_LOCK_TIMEOUT=$DPKG_LOCK_TIMEOUT is not a number of seconds: waiting up to 600 s for the dpkg lock"
            DPKG_LOCK_TIMEOUT=600
            ;;
    esac
    # A failed index update is not fatal: the install decides.
    DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$DPKG_LOCK_TIMEOUT" update -q || warn "apt-get update failed; installing from the current package lists"
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$DPKG_LOCK_TIMEOUT" install -y -q --no-install-recommends $PACKAGES
}

phase_libvirtd() {
    if [ -d "$ROOT/run/systemd/system" ]; then
        systemctl enable --now libvirtd.service
    else
        warn "systemd is not running: libvirtd enabled for the next boot, not started"
        systemctl enable libvirtd.service
    fi
}

phase_groups() {
    if ! getent passwd "$BLOCKHOST_USER" >/dev/null; then
        error "user $BLOCKHOST_USER does not exist (blockhost-common creates it)"
        return 1
    fi
    groups=
    for group in libvirt libvirt-qemu; do
        if getent group "$group" >/dev/null; then
            groups=${groups:+$groups,}$group
        fi
    done
    case ",$groups," in
        *,libvirt,*) ;;
        *)
            error "group libvirt does not exist: is libvirt-daemon-system installed?"
            return 1
            ;;
    esac
    usermod -aG "$groups" "$BLOCKHOST_USER"
}

phase_host_access() {
    BLOCKHOST_ROOT=$ROOT "$ROOT$HOST_ACCESS" "$BLOCKHOST_USER"
}

phase_kvm_check() {
    if [ -e "$ROOT/dev/kvm" ]; then
        say "/dev/kvm present: VMs use KVM acceleration"
    else
        warn "/dev/kvm is missing: VMs will be emulated (TCG) and slow; enable hardware virtualization (VT-x/AMD-V) in the firmware, or nested virtualization"
    fi
}

# run_phase NAME FUNCTION: runs FUNCTION unless NAME's marker exists.
run_phase() {
    marker=$MARKER_DIR/.step-libvirt-$1
    if [ -e "$marker" ]; then
        say "$1: already done"
        return 0
    fi
    say "$1: running"
    if ! "$2"; then
        error "$1 failed"
        return 1
    fi
    if ! { mkdir -p "$MARKER_DIR" && : >"$marker"; }; then
        error "$1: cannot write $marker"
        return 1
    fi
    say "$1: done"
}

run_phase packages phase_packages &&
    run_phase libvirtd phase_libvirtd &&
    run_phase groups phase_groups &&
    run_phase host-access phase_host_access &&
    run_phase kvm-check phase_kvm_check
