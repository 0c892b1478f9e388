#!/bin/sh
# First-boot hook of blockhost-provisioner-proxmox (manifest setup.first_boot_hook).
#
# Run as root by BlockHost's first-boot script (which exports STATE_DIR and
# LOG_FILE and keeps our output in its log). The hypervisor is a Proxmox VE
# node or cluster reached through its API, so unlike upstream's hook nothing
# is installed here (no proxmox-ve, no Terraform) and the host name is left
# alone (upstream fixed /etc/hosts for a local proxmox-ve installation).
# What still applies is upstream's first step: the VMs' bridge belongs to
# Proxmox VE (vmbr0 on its nodes), so BlockHost's first boot must not make a
# br0 of its own; /etc/blockhost/bridge-managed tells it so.
#
# BLOCKHOST_ROOT (tests) prefixes every host path written here.

set -eu

ROOT=${BLOCKHOST_ROOT:-}
ROOT=${ROOT%/}
MARKER=$ROOT/etc/blockhost/bridge-managed

if ! mkdir -p "${MARKER%/*}" || ! touch "$MARKER"; then
    echo "proxmox first boot: error: cannot write $MARKER" >&2
    exit 1
fi
echo "proxmox first boot: $MARKER written (the VM bridge is managed by Proxmox VE)"
