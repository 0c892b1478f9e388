"""Times what a paying user waits for on the real-VM layer: `blockhost-vm-create
--apply` of a VM from each given template, through its phases (domain
defined, started, guest agent answering, cloud-init done), with the guest's
own view of its boot (systemd-analyze, cloud-init analyze). Templates are
measured in turn, one VM at a time, so that they share the host's conditions.
bench/boot.sh prepares the private libvirtd and the executables and runs this."""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

from bench import STAT_GROUPS, Failed, Runner, aligned, compare, metrics_of, set_metrics_max_age

# As the real-VM tests' root (bins/tests/libvirt_e2e.rs): the blockhost user,
# libvirt-qemu, and the group of the private libvirtd's socket.
BLOCKHOST_ID = 64070
QEMU_ID = 64055
WALLET = "0x00000000000000000000000000000000000000a1"
CLOUD_INIT_BOUND_S = 900
# Calls of `blockhost-vm-metrics <vm>` timed on each booted VM (issue 14:
# <= 40 ms with a live guest agent), against the floor of that call.
LIVE_METRICS_REPS = 10
LIVE_METRICS_TARGET_MS = 40.0
# The progress lines of blockhost-vm-create (stderr) that end each phase.
PHASE_LINES = [
    ("defined", re.compile(r"^VM \S+ defined$")),
    ("started", re.compile(r"^VM \S+ started$")),
    ("agent", re.compile(r"^Guest agent answered after ")),
]
# Units whose activation time inside the guest is reported.
GUEST_UNITS = [
    "cloud-init-local.service",
    "cloud-init.service",
    "qemu-guest-agent.service",
    "cloud-config.service",
    "cloud-final.service",
]


def log(message):
    print(f"boot: {message}", file=sys.stderr, flush=True)


def write_root(root, uri, repo, template_dir):
    """A BlockHost root as the real-VM tests lay it out, opened to QEMU by the
    package's host-access.sh, holding `template_dir` as its current template."""
    for d in ("etc/blockhost", "var/lib/blockhost", "run/blockhost"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(os.path.join(root, "etc/blockhost/db.yaml"), "w") as f:
        f.write(
            "db_file: /var/lib/blockhost/vms.json\nbridge: e2ebr0\n"
            "ip_pool:\n  network: 10.77.0.0/24\n  start: 10.77.0.10\n  end: 10.77.0.60\n  gateway: 10.77.0.1\n"
            f"gc_grace_days: 7\nagent_timeout_seconds: 600\nlibvirt:\n  uri: '{uri}'\n"
        )
    # The engine's usual mode; IPv6 from the broker's prefix, so that the
    # VM's network config is the one a host under a broker gives.
    os.makedirs(os.path.join(root, "etc/blockhost/network-modes.enabled"))
    with open(os.path.join(root, "etc/blockhost/network-modes.enabled/broker.json"), "w") as f:
        f.write("{}")
    with open(os.path.join(root, "etc/blockhost/broker-allocation.json"), "w") as f:
        f.write('{"prefix": "2001:db8:7::/120", "dns_zone": "vm.example.net"}')
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write(f"blockhost:x:{BLOCKHOST_ID}:{BLOCKHOST_ID}::/var/lib/blockhost:/usr/sbin/nologin\n"
                f"libvirt-qemu:x:{QEMU_ID}:{QEMU_ID}::/var/lib/libvirt:/usr/sbin/nologin\n")
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write(f"blockhost:x:{BLOCKHOST_ID}:\nlibvirt-qemu:x:{QEMU_ID}:blockhost\n")
    subprocess.run(["sh", os.path.join(repo, "packaging/libvirt/hooks/host-access.sh")],
                   env={**os.environ, "BLOCKHOST_ROOT": root}, check=True)
    templates = os.path.join(root, "var/lib/blockhost/templates")
    version = os.path.basename(os.path.normpath(template_dir))
    subprocess.run(["cp", "-a", "--reflink=auto", template_dir, os.path.join(templates, version)], check=True)
    os.symlink(version, os.path.join(templates, "current"))


class Host(Runner):
    """The executables on one BlockHost root: `call` returns their failures,
    the timed runs of bench.Runner raise them."""

    def __init__(self, bin_dir, root, uri, libvirtd_state):
        super().__init__(bin_dir, root, uri)
        self.libvirtd_state = libvirtd_state

    def call(self, verb, *args):
        return subprocess.run(self.ours(verb, *args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def exec(self, name, command):
        out = self.call("guest-exec", name, command)
        return out.returncode, out.stdout

    def create(self, name):
        """Seconds from the start of create to the end of each phase."""
        started = time.monotonic()
        child = subprocess.Popen(self.ours("create", name, "--owner-wallet", WALLET, "--memory", "512", "--disk", "4", "--apply"),
                                 env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        phases, lines = {}, []
        for line in child.stderr:
            line = line.rstrip("\n")
            lines.append(line)
            for phase, pattern in PHASE_LINES:
                if phase not in phases and pattern.search(line):
                    phases[phase] = time.monotonic() - started
        stdout = child.stdout.read()
        if child.wait() != 0 or "BLOCKHOST_RESULT: " not in stdout:
            raise Failed(f"create {name}: exit {child.returncode}: {' | '.join(lines[-3:])}")
        missing = [p for p, _ in PHASE_LINES if p not in phases]
        if missing:
            raise Failed(f"create {name}: no progress line for {missing}")
        return started, phases

    def wait_cloud_init(self, name, started):
        """Seconds since `started` when the guest's cloud-init has finished
        (polled each second with a file test: `cloud-init status` starts
        Python, seconds of the guest's CPU under TCG), once it says done."""
        while time.monotonic() - started < CLOUD_INIT_BOUND_S:
            _, out = self.exec(name, "test -e /var/lib/cloud/instance/boot-finished && echo finished")
            if out == "finished\n":
                finished = time.monotonic() - started
                code, status = self.exec(name, "cloud-init status")
                if code != 0 or "status: done" not in status:
                    raise Failed(f"{name}: cloud-init finished with errors: {status.strip()}")
                return finished
            time.sleep(1)
        raise Failed(f"{name}: cloud-init not done within {CLOUD_INIT_BOUND_S} s")

    def guest_view(self, name):
        """The guest's systemd-analyze figures and the activation time of GUEST_UNITS, in s since the kernel started."""
        code, total = self.exec(name, "systemd-analyze time")
        if code != 0:
            raise Failed(f"{name}: systemd-analyze time failed")
        code, shown = self.exec(name, "systemctl show -p Id -p ActiveEnterTimestampMonotonic " + " ".join(GUEST_UNITS))
        if code != 0:
            raise Failed(f"{name}: systemctl show failed")
        units, unit = {}, None
        for line in shown.splitlines():
            key, _, value = line.partition("=")
            if key == "Id":
                unit = value
            elif key == "ActiveEnterTimestampMonotonic" and unit:
                units[unit] = round(int(value) / 1e6, 2) if value.isdigit() and int(value) > 0 else None
        _, blame = self.exec(name, "systemd-analyze blame --no-pager | head -n 12")
        _, chain = self.exec(name, "systemd-analyze critical-chain --no-pager qemu-guest-agent.service")
        _, stages = self.exec(name, "cloud-init analyze show")
        split = {}
        for part, key in (("kernel", "kernel"), ("initrd", "initrd"), ("userspace", "userspace")):
            m = re.search(r"([\d.]+(?:min|s|ms)(?: [\d.]+(?:s|ms))?) \(" + part + r"\)", total)
            split[key] = seconds(m.group(1)) if m else None
        return {"systemd_analyze": total.strip(), "split_s": split, "units_s": units,
                "blame": blame.strip().splitlines(), "agent_critical_chain": chain.strip().splitlines(),
                "cloud_init_stages": stages.strip().splitlines()}

    def live_metrics(self, name):
        """`blockhost-vm-metrics <vm>` asking libvirt and the guest agent on
        each call (the shared sample off), against its floor: one virsh
        process doing one domstats of the VM's groups and one agent round trip."""
        set_metrics_max_age(self, 0)
        groups = " ".join(f"--{g}" for g in STAT_GROUPS)
        floor = self.virsh(f"domstats {groups} --nowait {name}; qemu-agent-command {name} '{{\"execute\":\"guest-ping\"}}'")
        live = lambda o: None if (metrics_of(o) or {}).get("uptime_seconds", 0) > 0 else f"no in-guest figures in {o[:200]!r}"
        floor_ok = lambda o: None if "Domain:" in o and '"return"' in o else f"expected domstats and a ping reply, got {o[:200]!r}"
        try:
            ours, base = compare(self, LIVE_METRICS_REPS, self.ours("metrics", name), floor, live, floor_ok)
        finally:
            set_metrics_max_age(self, None)
        return {"ours": ours, "floor": base, "ratio": round(ours["median_ms"] / base["median_ms"], 2)}

    def qemu_cpu_seconds(self, name):
        """CPU time the VM's QEMU has used so far: the guest's work, which
        the host's other load does not stretch as it stretches wall time."""
        with open(os.path.join(self.libvirtd_state, "run/qemu", f"{name}.pid")) as f:
            pid = f.read().strip()
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def accelerator(self, name):
        """The domain type libvirt was given: kvm, or qemu (TCG)."""
        xml = subprocess.run(self.virsh("dumpxml", name), stdout=subprocess.PIPE, text=True).stdout
        m = re.search(r"<domain type='(\w+)'", xml)
        return m.group(1) if m else None

    def destroy(self, name):
        out = self.call("destroy", name)
        if out.returncode != 0:
            raise Failed(f"destroy {name}: {out.stderr.strip()}")


def seconds(text):
    """'1min 2.5s', '2.5s' or '250ms' in seconds."""
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)(min|ms|s)", text):
        total += float(number) * {"min": 60, "s": 1, "ms": 0.001}[unit]
    return round(total, 3)


def boot_once(host, name):
    started, phases = host.create(name)
    phases["qemu_cpu_at_agent"] = host.qemu_cpu_seconds(name)
    _, uptime = host.exec(name, "cut -d' ' -f1 /proc/uptime")
    # The guest's uptime when create returned: what the guest itself spent;
    # the rest of "agent" is libvirt, firmware and boot loader.
    answered_after = time.monotonic() - started
    phases["guest_uptime_at_agent"] = round(float(uptime.strip()) - (answered_after - phases["agent"]), 2)
    phases["cloud_init_done"] = host.wait_cloud_init(name, started)
    view = host.guest_view(name)
    view["live_metrics"] = host.live_metrics(name)
    view["domain_type"] = host.accelerator(name)
    host.destroy(name)
    return {k: round(v, 2) for k, v in phases.items()}, view


def median_of(runs, key):
    values = [r["phases_s"][key] for r in runs]
    return round(statistics.median(values), 2)


def table(report):
    keys = ["defined", "started", "agent", "guest_uptime_at_agent", "qemu_cpu_at_agent", "cloud_init_done"]
    head = ("template", *keys)
    rows = [(t["label"], *(f"{t['median_s'][k]:.1f}" for k in keys)) for t in report["templates"]]
    lines = [aligned(head, rows)]
    for t in report["templates"]:
        ours = statistics.median(r["guest"]["live_metrics"]["ours"]["median_ms"] for r in t["runs"])
        floor = statistics.median(r["guest"]["live_metrics"]["floor"]["median_ms"] for r in t["runs"])
        lines.append(f"{t['label']}: metrics <vm> with a live agent {ours:.1f} ms (target <= {LIVE_METRICS_TARGET_MS:g} ms), "
                     f"floor (one domstats + one agent round trip, one virsh) {floor:.1f} ms, ratio {ours / floor:.2f}")
    if len(report["templates"]) == 2:
        a, b = report["templates"]
        for key in ("agent", "qemu_cpu_at_agent"):
            lines.append(f"{key}: {b['label']} / {a['label']} = {b['median_s'][key] / a['median_s'][key]:.2f}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--libvirtd-state", required=True)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--template", action="append", required=True, help="LABEL=DIR (a template version directory)")
    parser.add_argument("--bins", action="append", default=[], help="LABEL=DIR: the executables for template LABEL (default --bin-dir)")
    parser.add_argument("--reps", type=int, required=True)
    parser.add_argument("--json", required=True)
    a = parser.parse_args()

    bins = dict(spec.partition("=")[::2] for spec in a.bins)
    labels = [spec.partition("=")[0] for spec in a.template]
    unknown = sorted(set(bins) - set(labels))
    if unknown:
        log(f"--bins names no template: {', '.join(unknown)}")
        return 2
    templates = []
    for spec in a.template:
        label, _, path = spec.partition("=")
        root = os.path.join(a.run_dir, f"root-{label}")
        write_root(root, a.uri, a.repo, path)
        with open(os.path.join(path, "template.json")) as f:
            version = json.load(f).get("version")
        bin_dir = bins.get(label, a.bin_dir)
        templates.append({"label": label, "dir": path, "version": version, "bin_dir": bin_dir,
                          "host": Host(bin_dir, root, a.uri, a.libvirtd_state), "runs": []})

    try:
        for rep in range(a.reps):
            for t in templates:
                name = f"boot-{t['label']}-{rep}"
                log(f"{name}: creating")
                phases, view = boot_once(t["host"], name)
                log(f"{name}: {phases}")
                t["runs"].append({"vm": name, "phases_s": phases, "guest": view})
    except Failed as e:
        log(f"failed: {e}")
        return 1

    for t in templates:
        del t["host"]
        t["median_s"] = {k: median_of(t["runs"], k) for k in t["runs"][0]["phases_s"]}
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "repetitions": a.reps,
        "host": {"cores": os.cpu_count(), "kernel": platform.release(), "loadavg_1min": os.getloadavg()[0]},
        "templates": templates,
    }
    print(table(report))
    for t in templates:
        print(f"{t['label']}: {t['runs'][-1]['guest']['systemd_analyze'].splitlines()[0]}")
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(report, f, indent=2)
    print(f"JSON: {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
