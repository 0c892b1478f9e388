"""packaging/proxmox/hooks/first-boot.sh in a scratch root: it installs nothing (the hypervisor
is remote) and only tells BlockHost's first boot that the VM bridge is Proxmox VE's."""

import os
import subprocess

from conftest import PROXMOX_PACKAGING

HOOK = PROXMOX_PACKAGING / "hooks" / "first-boot.sh"


def run_hook(root, tmp_path):
    # an empty PATH but for sh's own needs: the hook may call nothing that installs or configures
    env = {"BLOCKHOST_ROOT": str(root), "STATE_DIR": "/var/lib/blockhost", "LOG_FILE": str(tmp_path / "log"),
           "PATH": "/usr/bin:/bin"}
    return subprocess.run(["sh", str(HOOK)], env=env, capture_output=True, text=True, timeout=30)


def test_writes_the_bridge_marker_and_nothing_else(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    assert os.access(HOOK, os.X_OK)
    proc = run_hook(root, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "proxmox first boot: %s/etc/blockhost/bridge-managed written (the VM bridge is managed by Proxmox VE)\n" % root
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == ["etc", "etc/blockhost", "etc/blockhost/bridge-managed"]
    assert run_hook(root, tmp_path).returncode == 0  # a second first boot is fine


def test_fails_in_one_line_when_it_cannot_write(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "blockhost").write_text("a file where the directory should be")
    proc = run_hook(root, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == "proxmox first boot: error: cannot write %s/etc/blockhost/bridge-managed" % root
