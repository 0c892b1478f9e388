"""The benchmark's fleet: N tiny running domains on the private libvirtd and a
scratch BlockHost root whose VM database holds an active record for each, so
the executables see them as their own VMs."""

import datetime
import json
import os
import subprocess
import time

# As our created VMs have them (lib/src/provider/libvirt/domain_xml.rs): a guest
# agent channel and a virtio balloon with stats, so the stat groups cost
# libvirtd what they cost on real VMs. No disk and no NIC; SeaBIOS finds
# nothing to boot and, with rebootTimeout -1, halts instead of rebooting every
# minute.
DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><bootmenu enable='no'/><bios rebootTimeout='-1'/></os>
  <features><acpi/><apic/><tcg><tb-cache unit='MiB'>32</tb-cache></tcg></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='virtio'><stats period='5'/></memballoon>
  </devices>
</domain>
"""

MEMORY_MIB = 32


def names(count):
    return [f"bench-{i:03d}" for i in range(1, count + 1)]


def write_root(root, uri, vm_names):
    """db.yaml as the real-VM tests write it, vms.json with one active record
    per VM in blockhost-common's format, and the provider's per-VM record that
    marks a domain as ours."""
    etc = os.path.join(root, "etc/blockhost")
    state = os.path.join(root, "var/lib/blockhost")
    for d in (etc, os.path.join(state, "vms"), os.path.join(root, "run/blockhost")):
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(etc, "db.yaml"), "w") as f:
        f.write(
            "db_file: /var/lib/blockhost/vms.json\nbridge: e2ebr0\n"
            "ip_pool:\n  network: 10.77.0.0/16\n  start: 10.77.1.1\n  end: 10.77.9.254\n  gateway: 10.77.0.1\n"
            f"gc_grace_days: 7\nlibvirt:\n  uri: '{uri}'\n"
        )
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    expires = now + datetime.timedelta(days=30)
    vms, ips = {}, []
    for i, name in enumerate(vm_names):
        ip = f"10.77.{1 + i // 250}.{1 + i % 250}"
        ips.append(ip)
        vms[name] = {
            "vm_name": name,
            "vmid": 100 + i,
            "ip_address": ip,
            "ipv6_address": "",
            "expires_at": expires.isoformat(),
            "owner": "bench",
            "status": "active",
            "created_at": now.isoformat(),
            "purpose": "bench",
            "wallet_address": "0x" + f"{i:040x}",
            "username": "user",
            "network_mode": "broker",
        }
        with open(os.path.join(state, "vms", f"{name}.json"), "w") as f:
            json.dump({"bridge": None, "ipv6": None, "mac": None, "template": os.path.join(state, "templates/none")}, f)
    db = {"vms": vms, "next_vmid": 100 + len(vm_names), "allocated_ips": ips, "allocated_ipv6": []}
    with open(os.path.join(state, "vms.json"), "w") as f:
        json.dump(db, f, indent=2)
    return os.path.join(state, "vms.json")


def start_domains(uri, run_dir, vm_names):
    """Defines and starts every domain in one virsh session (one connection)."""
    xml_dir = os.path.join(run_dir, "domains")
    os.makedirs(xml_dir, exist_ok=True)
    commands = []
    for name in vm_names:
        path = os.path.join(xml_dir, f"{name}.xml")
        with open(path, "w") as f:
            f.write(DOMAIN_XML.format(name=name, memory_mib=MEMORY_MIB))
        commands += [f"define {path}", f"start {name}"]
    subprocess.run(["virsh", "-q", "-c", uri, "; ".join(commands)], check=True, stdout=subprocess.DEVNULL)


def qemu_pids(libvirtd_state):
    run = os.path.join(libvirtd_state, "run/qemu")
    pids = []
    for entry in os.listdir(run):
        if entry.endswith(".pid"):
            with open(os.path.join(run, entry)) as f:
                pids.append(int(f.read().strip()))
    return pids


def cpu_seconds(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def settle(libvirtd_state, max_seconds, quiet_cores_per_guest=0.02):
    """Waits until the guests' firmware has finished (each idle TCG QEMU
    still uses about 1% of a core: below `quiet_cores_per_guest` on average)
    or `max_seconds` pass; returns the seconds waited and the QEMUs' load in
    cores over the last second."""
    pids = qemu_pids(libvirtd_state)
    started = time.monotonic()
    while True:
        before = cpu_seconds(pids)
        time.sleep(1)
        load = cpu_seconds(pids) - before
        waited = time.monotonic() - started
        if load < quiet_cores_per_guest * len(pids) or waited >= max_seconds:
            return waited, load
