"""Times our executables against baselines measured in the same run, on the
fleet of bench/fleet.py, then prints the table and writes it as JSON.
bench/run.sh prepares the private libvirtd and the executables and runs this."""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import fleet

# The stat groups of `virsh domstats` that stand for the groups the metrics
# code requests: it MUST follow the GROUPS table in lib/src/provider/libvirt/stats.rs
# (check_groups below warns when the two differ).
STAT_GROUPS = ["state", "cpu-total", "balloon", "vcpu", "interface", "block"]
STATS_RS = "lib/src/provider/libvirt/stats.rs"

# BlockHost's watchdog (blockhost-monitor): every 2 s, one
# `blockhost-vm-metrics <name>` per VM, as many at once as the host has
# cores, logged against this budget.
WATCHDOG_PERIOD_S = 2.0
WATCHDOG_BUDGET_MS = 500.0

# Targets of issue 14 ("Acceptance").
TARGETS = {
    "status": ("ratio", 1.1),
    "metrics --all": ("ratio", 1.2),
    "metrics <vm>": ("ratio", 1.3),
    "watchdog cycle": ("ms", WATCHDOG_BUDGET_MS),
}


class Failed(Exception):
    pass


class Runner:
    def __init__(self, bin_dir, root, uri):
        self.bin_dir = bin_dir
        self.uri = uri
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKHOST_")}
        env.update(BLOCKHOST_ROOT=root, BLOCKHOST_PROVIDER="libvirt", LC_ALL="C")
        self.env = env

    def ours(self, verb, *args):
        return [os.path.join(self.bin_dir, f"blockhost-vm-{verb}"), *args]

    def virsh(self, *args):
        return ["virsh", "-q", "-c", self.uri, *args]

    def run(self, argv):
        """Wall time of one run in ms, and its stdout; any failure stops the benchmark."""
        started = time.perf_counter()
        out = subprocess.run(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        elapsed = (time.perf_counter() - started) * 1000
        if out.returncode != 0:
            raise Failed(f"{' '.join(argv)}: exit {out.returncode}: {out.stderr.strip()}")
        return elapsed, out.stdout


def summary(samples, command):
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return {
        "command": command,
        "median_ms": round(statistics.median(samples), 2),
        "q1_ms": round(q1, 2),
        "q3_ms": round(q3, 2),
        "min_ms": round(min(samples), 2),
        "max_ms": round(max(samples), 2),
        "samples_ms": [round(s, 2) for s in samples],
    }


def compare(runner, reps, ours, baseline, check_ours, check_baseline):
    """Alternates the two commands (one untimed warm-up each, whose output is
    checked), so a change of the host's load touches both alike."""
    for argv, check in ((ours, check_ours), (baseline, check_baseline)):
        _, stdout = runner.run(argv)
        problem = check(stdout)
        if problem:
            raise Failed(f"{' '.join(argv)}: {problem}")
    ours_ms, base_ms = [], []
    for _ in range(reps):
        ours_ms.append(runner.run(ours)[0])
        base_ms.append(runner.run(baseline)[0])
    return summary(ours_ms, " ".join(ours)), summary(base_ms, " ".join(baseline))


def expect(predicate, what):
    return lambda stdout: None if predicate(stdout) else f"expected {what}, got {stdout[:200]!r}"


def metrics_of(stdout):
    try:
        return json.loads(stdout)
    except ValueError:
        return None


def watchdog(runner, vm_names, cycles):
    """The watchdog's cycle: one metrics process per VM, as many at once as
    cores; cycles start WATCHDOG_PERIOD_S apart as the watchdog's do."""
    cores = os.cpu_count() or 1
    durations = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=cores) as pool:
        for _ in range(cycles + 1):
            started = time.perf_counter()
            outputs = list(pool.map(lambda name: runner.run(runner.ours("metrics", name))[1], vm_names))
            elapsed = (time.perf_counter() - started) * 1000
            for name, stdout in zip(vm_names, outputs):
                if (metrics_of(stdout) or {}).get("state") != "running":
                    raise Failed(f"blockhost-vm-metrics {name}: expected a running VM's metrics, got {stdout[:200]!r}")
            durations.append(elapsed)
            time.sleep(max(0.0, WATCHDOG_PERIOD_S - elapsed / 1000))
    # The first cycle is the warm-up: no shared sample exists yet, so each
    # call asks libvirt and the first ones start the bulk sample; it is
    # reported beside the table's median.
    result = summary(durations[1:], f"{len(vm_names)} x blockhost-vm-metrics <name>, {cores} at once")
    result["first_cycle_ms"] = round(durations[0], 2)
    return result, cores


def check_groups(repo):
    """The groups of the GROUPS table in stats.rs (METRICS_GROUPS is their union), when they differ from STAT_GROUPS."""
    try:
        with open(os.path.join(repo, STATS_RS)) as f:
            source = f.read()
    except OSError:
        return None
    const = re.search(r"const GROUPS: \[\(u32, &str\); \d+\] = \[(.*?)\];", source, re.S)
    if not const:
        return f"the GROUPS table not found in {STATS_RS}"
    in_code = sorted(g.lower().replace("_", "-") for g in re.findall(r"VIR_DOMAIN_STATS_(\w+)", const.group(1)))
    if in_code != sorted(STAT_GROUPS):
        return f"{STATS_RS} requests {in_code}, the benchmark's baseline uses {sorted(STAT_GROUPS)}: update STAT_GROUPS"
    return None


def set_metrics_max_age(runner, seconds):
    """Sets db.yaml's metrics_max_age_seconds (None: the default) in the scratch root."""
    db_yaml = os.path.join(runner.env["BLOCKHOST_ROOT"], "etc/blockhost/db.yaml")
    with open(db_yaml) as f:
        lines = [l for l in f.read().splitlines() if not l.startswith("metrics_max_age_seconds:")]
    if seconds is not None:
        lines.append(f"metrics_max_age_seconds: {seconds}")
    with open(db_yaml, "w") as f:
        f.write("\n".join(lines) + "\n")


def measure(runner, db_path, vm_names, reps):
    count = len(vm_names)
    vm = vm_names[count // 2]
    groups = [f"--{g}" for g in STAT_GROUPS]
    rows = []

    def row(operation, baseline_name, pair):
        rows.append({"operation": operation, "baseline_name": baseline_name, "ours": pair[0], "baseline": pair[1]})

    row("status", "virsh domstate", compare(
        runner, reps, runner.ours("status", vm), runner.virsh("domstate", vm),
        expect(lambda o: o == "active\n", "active"), expect(lambda o: o.strip() == "running", "running")))
    row("metrics --all", "virsh domstats (all)", compare(
        runner, reps, runner.ours("metrics", "--all"), runner.virsh("domstats", *groups, "--nowait"),
        expect(lambda o: len(metrics_of(o) or {}) == count, f"metrics of {count} VMs"), expect(lambda o: o.count("Domain:") == count, f"{count} domains")))
    # Each call asks libvirt: the shared sample is switched off for this row.
    set_metrics_max_age(runner, 0)
    row("metrics <vm>", "virsh domstats <vm>", compare(
        runner, reps, runner.ours("metrics", vm), runner.virsh("domstats", *groups, "--nowait", vm),
        expect(lambda o: (metrics_of(o) or {}).get("state") == "running", "a running VM's metrics"),
        expect(lambda o: o.count("Domain:") == 1, "one domain")))
    set_metrics_max_age(runner, None)
    cycle, cores = watchdog(runner, vm_names, max(3, reps // 4))
    rows.append({"operation": "watchdog cycle", "baseline_name": f"budget ({cores} cores)", "ours": cycle,
                 "baseline": {"command": "the watchdog's budget", "median_ms": WATCHDOG_BUDGET_MS}})
    read_db = ["cat", db_path]
    row("list", "cat vms.json", compare(
        runner, reps, runner.ours("list"), read_db,
        expect(lambda o: [l.split("\t")[1] for l in o.splitlines()[1:]] == ["active"] * count, f"a header and {count} active rows"), expect(lambda o: '"vms"' in o, "the database")))
    row("gc (dry run)", "cat vms.json", compare(
        runner, reps, runner.ours("gc"), read_db, expect(lambda o: "Would process: 0" in o, "nothing to do"), expect(lambda o: '"vms"' in o, "the database")))

    for r in rows:
        r["ratio"] = round(r["ours"]["median_ms"] / r["baseline"]["median_ms"], 2)
        kind, limit = TARGETS.get(r["operation"], (None, None))
        if kind == "ratio":
            r["target"], r["within_target"] = f"<= {limit}x", r["ratio"] <= limit
        elif kind == "ms":
            r["target"], r["within_target"] = f"<= {limit:g} ms", r["ours"]["median_ms"] <= limit
        else:
            r["target"], r["within_target"] = None, None
    return rows


def table(rows):
    head = ("operation", "ours ms (q1-q3)", "baseline", "base ms", "ratio", "target", "within")
    lines = []
    for r in rows:
        o, b = r["ours"], r["baseline"]
        within = {True: "yes", False: "NO", None: "-"}[r["within_target"]]
        lines.append((r["operation"], f"{o['median_ms']:.1f} ({o['q1_ms']:.1f}-{o['q3_ms']:.1f})", r["baseline_name"],
                      f"{b['median_ms']:.1f}", f"{r['ratio']:.2f}", r["target"] or "-", within))
    return aligned(head, lines)


def aligned(head, rows):
    """`head` and `rows` as left-aligned columns, one line each."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*row) for row in [head, *rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--libvirtd-state", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--domains", type=int, required=True)
    parser.add_argument("--reps", type=int, required=True)
    parser.add_argument("--json", required=True)
    a = parser.parse_args()

    vm_names = fleet.names(a.domains)
    root = os.path.join(a.run_dir, "root")
    db_path = fleet.write_root(root, a.uri, vm_names)
    log(f"starting {a.domains} domains")
    started = time.monotonic()
    fleet.start_domains(a.uri, a.run_dir, vm_names)
    started_s = time.monotonic() - started
    settled_s, guest_load = fleet.settle(a.libvirtd_state, max_seconds=120)
    log(f"domains started in {started_s:.1f} s, quiet after {settled_s:.1f} s more (guests' load {guest_load:.2f} cores)")
    groups_warning = check_groups(a.repo)
    if groups_warning:
        log(f"WARNING: {groups_warning}")

    log(f"measuring ({a.reps} repetitions each)")
    runner = Runner(a.bin_dir, root, a.uri)
    try:
        rows = measure(runner, db_path, vm_names, a.reps)
    except Failed as e:
        log(f"failed: {e}")
        return 1

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "domains": a.domains,
        "repetitions": a.reps,
        "host": {"cores": os.cpu_count(), "kernel": platform.release(), "loadavg_1min": os.getloadavg()[0]},
        "bin_dir": a.bin_dir,
        "stat_groups": STAT_GROUPS,
        "stat_groups_warning": groups_warning,
        "domains_start_s": round(started_s, 1),
        "settle_s": round(settled_s, 1),
        "guests_load_cores": round(guest_load, 3),
        "skipped": [{"operation": "create-to-defined, create-to-agent",
                     "reason": "needs a template and a booting guest: measured by bench/boot.sh, not on this fleet"}],
        "results": rows,
    }
    print(table(rows))
    for r in rows:
        if "first_cycle_ms" in r["ours"]:
            print(f"{r['operation']}: the first cycle, before any shared sample existed, took {r['ours']['first_cycle_ms']:.0f} ms")
    for s in report["skipped"]:
        print(f"skipped {s['operation']}: {s['reason']}")
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(report, f, indent=2)
    print(f"JSON: {a.json}")
    return 0


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
