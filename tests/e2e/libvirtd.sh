#!/usr/bin/env bash
# A private libvirtd for the end-to-end tests, isolated from the host:
#  - its own mount namespace: /etc/libvirt, /var/lib/libvirt, /run/libvirt,
#    /var/log/libvirt and /var/cache/libvirt are bind mounts of directories
#    under $STATE, so nothing of the host's libvirt is read or written;
#  - its own network namespace holding only `lo` and the bridge `e2ebr0`,
#    which has no address, IPv4 or IPv6 (no link-local either: addrgenmode
#    none), yet carries IPv6 routes, so the root-agent actions can add the
#    VMs' /128 host routes for real: guest NICs reach each other and nothing else
#    (with a sysfs of its own, where libvirt sets bridge port flags, and
#    the host's cgroups carried over into it).
# Configured as Debian's libvirt-daemon-system configures it: QEMU runs as
# libvirt-qemu (uid and gid 64055, in the private /etc/passwd and /etc/group)
# with DAC dynamic ownership, and the socket is for the group libvirt (its
# gid, once started: `libvirtd.sh gid`). So that an unprivileged client can reach the
# socket, STATE must be traversable by everyone (not under /root).
# `reboot` is a host restart as libvirt and the guests see it: libvirtd and
# every QEMU killed, /run/libvirt emptied (a tmpfs on a host) and libvirtd
# started again in a new network namespace (a new bridge, no routes).
# Usage: libvirtd.sh start|stop|reboot|uri|gid   (STATE defaults to ~/.cache/blockhost-e2e/libvirtd)
set -euo pipefail
STATE=${STATE:-${BLOCKHOST_E2E_DIR:-$HOME/.cache/blockhost-e2e}/libvirtd}
SOCKET=$STATE/run/libvirt-sock
URI="qemu:///system?socket=$SOCKET"
MOUNTS="etc:/etc/libvirt lib:/var/lib/libvirt run:/run/libvirt log:/var/log/libvirt cache:/var/cache/libvirt"

say() { printf 'libvirtd.sh: %s\n' "$*" >&2; }

write_config() {
    # Debian's QEMU user and DAC relabelling; no AppArmor (the DAC driver
    # stays: libvirt always stacks it), and the console goes to plain files
    # (no virtlogd).
    cat > "$STATE/etc/qemu.conf" <<'CONF'
user = "libvirt-qemu"
group = "libvirt-qemu"
dynamic_ownership = 1
remember_owner = 1
security_driver = "none"
stdio_handler = "file"
CONF
    cat > "$STATE/etc/libvirtd.conf" <<'CONF'
unix_sock_group = "libvirt"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_level = 3
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
    # libvirtd looks up its compiled-in QEMU user before reading qemu.conf.
    cp /etc/passwd "$STATE/passwd"
    cp /etc/group "$STATE/group"
    # As Debian's: libvirt-qemu's primary group is kvm, which may use /dev/kvm.
    grep -q '^kvm:' "$STATE/group" || echo 'kvm:x:64057:' >> "$STATE/group"
    grep -q '^libvirt-qemu:' "$STATE/passwd" || echo "libvirt-qemu:x:64055:$(kvm_gid)::/var/lib/libvirt:/usr/sbin/nologin" >> "$STATE/passwd"
    grep -q '^libvirt-qemu:' "$STATE/group" || echo 'libvirt-qemu:x:64055:libvirt-qemu' >> "$STATE/group"
    grep -q '^libvirt:' "$STATE/group" || echo 'libvirt:x:64056:' >> "$STATE/group"
    # The tests' unprivileged client (BLOCKHOST_ID in bins/tests/libvirt_e2e.rs):
    # libvirtd looks up the user of every connection.
    grep -q '^blockhost:' "$STATE/passwd" || echo 'blockhost:x:64070:64070::/var/lib/blockhost:/usr/sbin/nologin' >> "$STATE/passwd"
    grep -q '^blockhost:' "$STATE/group" || echo 'blockhost:x:64070:' >> "$STATE/group"
}

kvm_gid() { sed -n 's/^kvm:x:\([0-9]*\):.*/\1/p' "$STATE/group"; }

running() { virsh -q -c "$URI" version >/dev/null 2>&1; }

start() {
    if running; then say "already running ($URI)"; echo "$URI"; return; fi
    for m in $MOUNTS; do mkdir -p "$STATE/${m%%:*}" "${m#*:}"; done
    mkdir -p "$STATE/cgroup"
    write_config
    local binds=""
    for m in $MOUNTS; do binds+="mount --bind $STATE/${m%%:*} ${m#*:} && "; done
    # /dev/kvm as Debian's udev rule leaves it, 0660 root:kvm: a node of our
    # own over the host's, which stays as it is. (libvirt probes QEMU's
    # capabilities as libvirt-qemu and checks /dev/kvm as that user: when the
    # two disagree it probes again on every call.)
    if [ -c /dev/kvm ]; then
        rm -f "$STATE/kvm"
        mknod -m 0660 "$STATE/kvm" c "$((0x$(stat -c %t /dev/kvm)))" "$((0x$(stat -c %T /dev/kvm)))"
        chgrp "$(kvm_gid)" "$STATE/kvm"
        binds+="mount --bind $STATE/kvm /dev/kvm && "
    fi
    setsid unshare --mount --net --propagation private -- /bin/sh -c "
        ${binds}mount --bind $STATE/passwd /etc/passwd && mount --bind $STATE/group /etc/group &&
        mount --rbind /sys/fs/cgroup $STATE/cgroup && mount -t sysfs sysfs /sys && mount --rbind $STATE/cgroup /sys/fs/cgroup &&
        sysctl -qw net.ipv6.conf.default.addr_gen_mode=1 net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 &&
        ip link set lo up && ip link add e2ebr0 type bridge stp_state 0 forward_delay 0 &&
        ip link set e2ebr0 addrgenmode none && ip link set e2ebr0 up &&
        exec libvirtd --config /etc/libvirt/libvirtd.conf --pid-file /run/libvirt/libvirtd.pid
    " > "$STATE/libvirtd.out" 2>&1 < /dev/null &
    echo $! > "$STATE/libvirtd.pid"
    for _ in $(seq 1 300); do running && break; sleep 0.1; done
    if ! running; then
        say "libvirtd did not come up"; cat "$STATE/libvirtd.out" >&2; tail -n 20 "$STATE/log/libvirtd.log" >&2 || true
        stop; exit 1
    fi
    say "started (pid $(cat "$STATE/libvirtd.pid"))"
    echo "$URI"
}

stop() {
    if running; then
        for d in $(virsh -q -c "$URI" list --all --name); do
            virsh -q -c "$URI" destroy "$d" >/dev/null 2>&1 || true
            virsh -q -c "$URI" undefine --nvram "$d" >/dev/null 2>&1 || true
        done
    fi
    local pid
    pid=$(cat "$STATE/libvirtd.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ]; then
        kill -TERM "$pid"
        for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
        [ -d "/proc/$pid" ] && kill -KILL "$pid"
    fi
    rm -f "$STATE/libvirtd.pid"
    say "stopped"
}

reboot() {
    local pid ns p
    pid=$(cat "$STATE/libvirtd.pid" 2>/dev/null || true)
    if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != libvirtd ]; then
        say "libvirtd is not running"; exit 1
    fi
    ns=$(readlink "/proc/$pid/ns/net")
    [ "$ns" != "$(readlink /proc/$$/ns/net)" ] || { say "libvirtd is in our network namespace: nothing killed"; exit 1; }
    # Everything in the private network namespace: libvirtd, the QEMUs
    # (daemonized, not its children) and any root-agent action running there.
    local victims=()
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ] && victims+=("${p#/proc/}")
    done
    kill -KILL "${victims[@]}" 2>/dev/null || true
    for _ in $(seq 1 100); do
        local alive=""
        for p in "${victims[@]}"; do [ -d "/proc/$p" ] && alive=1; done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    [ -z "$alive" ] || { say "processes of the old namespace still alive after 10 s"; exit 1; }
    # With the run state goes libvirt's once-per-boot autostart marker
    # (qemu/autostarted), so the new libvirtd autostarts domains again.
    find "$STATE/run" -mindepth 1 -delete
    rm -f "$STATE/libvirtd.pid"
    say "killed ${#victims[@]} processes, /run/libvirt emptied"
    start
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    reboot) reboot ;;
    uri) echo "$URI" ;;
    gid) sed -n 's/^libvirt:x:\([0-9]*\):.*/\1/p' "$STATE/group" ;;
    *) echo "usage: $0 start|stop|reboot|uri|gid" >&2; exit 2 ;;
esac
