"""packaging/libvirt/hooks/first-boot.sh in a scratch root, with apt-get, systemctl, usermod,
chown, setfacl and getent replaced by recording stubs on PATH (nothing runs on the host); the
package's host-access.sh, which the hook runs, is installed into the root at its package path."""

import os
import shutil
import subprocess

import pytest

from conftest import REPO

HOOK = REPO / "packaging" / "libvirt" / "hooks" / "first-boot.sh"
HOST_ACCESS = REPO / "packaging" / "libvirt" / "hooks" / "host-access.sh"
PHASES = ("packages", "libvirtd", "groups", "host-access", "kvm-check")
STATE_DIRS = ("templates", "vms", "cloud-init", "template-packages")

# Each stub appends its argv to $CALLS; apt-get fails with $APT_STATUS when set,
# and, while another apt holds the dpkg lock for $LOCK_HELD_FOR seconds, fails
# as apt does unless told to wait at least that long (-o DPkg::Lock::Timeout=N);
# getent answers from the scratch root's etc/passwd and etc/group.
APT_GET = r'''echo "apt-get $*" >>"$CALLS"
if [ -n "${LOCK_HELD_FOR:-}" ]; then
    wait=0
    while [ $# -gt 0 ]; do
        if [ "$1" = -o ]; then
            case $2 in DPkg::Lock::Timeout=*) wait=${2#*=} ;; esac
        fi
        shift
    done
    if [ "$wait" -lt "$LOCK_HELD_FOR" ]; then
        echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)" >&2
        exit 100
    fi
fi
exit "${APT_STATUS:-0}"
'''
LOCK_OPTION = "-o DPkg::Lock::Timeout=600"
STUBS = {
    "apt-get": APT_GET,
    "systemctl": 'echo "systemctl $*" >>"$CALLS"\n',
    "usermod": 'echo "usermod $*" >>"$CALLS"\n',
    "chown": 'echo "chown $1 ${2#$BLOCKHOST_ROOT}" >>"$CALLS"\n',
    "setfacl": 'echo "setfacl $1 $2 ${3#$BLOCKHOST_ROOT}" >>"$CALLS"\n',
    "getent": 'grep "^$2:" "$BLOCKHOST_ROOT/etc/$1"\n',
}


@pytest.fixture
def hook(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(
        "blockhost:x:990:990::/var/lib/blockhost:/usr/sbin/nologin\n"
        "libvirt-qemu:x:64055:993::/var/lib/libvirt:/usr/sbin/nologin\n"
    )
    (root / "etc" / "group").write_text("blockhost:x:990:\nlibvirt:x:991:\nlibvirt-qemu:x:64055:\n")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, body in STUBS.items():
        path = stubs / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    installed = root / "usr" / "lib" / "blockhost-provisioner-libvirt"
    installed.mkdir(parents=True)
    shutil.copy2(HOST_ACCESS, installed / "host-access.sh")
    calls = tmp_path / "calls"

    def run(**env):
        calls.write_text("")
        full = {
            "PATH": "%s:/usr/bin:/bin" % stubs,
            "BLOCKHOST_ROOT": str(root),
            "STATE_DIR": "/var/lib/blockhost",
            "CALLS": str(calls),
        }
        full.update(env)
        proc = subprocess.run(["sh", str(HOOK)], env=full, capture_output=True, text=True, timeout=60)
        return proc, calls.read_text().splitlines()

    run.root = root
    run.markers = root / "var" / "lib" / "blockhost"
    return run


def markers(hook):
    return sorted(p.name for p in hook.markers.glob(".step-libvirt-*"))


def test_first_run_does_every_phase(hook):
    proc, calls = hook()
    assert proc.returncode == 0, proc.stderr
    assert calls[0] == "apt-get %s update -q" % LOCK_OPTION
    install = calls[1].split()
    assert install[:7] == ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", "--no-install-recommends"]
    assert set(install[7:]) == {"qemu-system-x86", "qemu-utils", "libvirt-daemon-system", "libvirt-clients", "debootstrap", "acl"}
    assert calls[2:] == [
        "systemctl enable libvirtd.service",
        "usermod -aG libvirt,libvirt-qemu blockhost",
        *("chown 990:64055 /var/lib/blockhost/%s" % d for d in STATE_DIRS),
        "setfacl -m u:64055:--x /var/lib/blockhost",
    ]
    for d in STATE_DIRS:
        assert oct((hook.markers / d).stat().st_mode & 0o7777) == "0o2750", d
    assert markers(hook) == sorted(".step-libvirt-" + p for p in PHASES)
    assert "/dev/kvm is missing" in proc.stderr
    assert "not started" in proc.stderr


def test_second_run_does_nothing(hook):
    assert hook()[0].returncode == 0
    proc, calls = hook()
    assert proc.returncode == 0, proc.stderr
    assert calls == []
    assert proc.stdout.count("already done") == len(PHASES)
    assert proc.stderr == ""


def test_apt_failure_fails_and_leaves_the_marker_unset(hook):
    proc, calls = hook(APT_STATUS="100")
    assert proc.returncode != 0
    assert "packages failed" in proc.stderr
    assert markers(hook) == []
    assert not any(c.startswith(("systemctl", "usermod", "chown", "setfacl")) for c in calls)
    # the retry does the work once apt works again
    proc, calls = hook()
    assert proc.returncode == 0, proc.stderr
    assert any(c.startswith("apt-get %s install" % LOCK_OPTION) for c in calls)


def test_a_held_dpkg_lock_is_waited_for(hook):
    # apt-daily/unattended-upgrades holds the lock for two minutes: within the wait.
    proc, calls = hook(LOCK_HELD_FOR="120")
    assert proc.returncode == 0, proc.stderr
    assert "Could not get lock" not in proc.stderr
    assert ".step-libvirt-packages" in markers(hook)


def test_the_wait_for_the_dpkg_lock_is_bounded(hook):
    proc, calls = hook(LOCK_HELD_FOR="120", DPKG_LOCK_TIMEOUT="30")
    assert proc.returncode != 0
    assert "Could not get lock" in proc.stderr
    assert "packages failed" in proc.stderr
    assert markers(hook) == []
    assert any(c.startswith("apt-get -o DPkg::Lock::Timeout=30 install") for c in calls), calls


def test_a_bad_lock_timeout_falls_back_to_the_default(hook):
    proc, calls = hook(DPKG_LOCK_TIMEOUT="soon")
    assert proc.returncode == 0, proc.stderr
    assert "DPKG_LOCK_TIMEOUT=soon is not a number of seconds" in proc.stderr
    assert calls[0] == "apt-get %s update -q" % LOCK_OPTION


def test_failed_update_alone_is_not_fatal(hook, tmp_path):
    stub = tmp_path / "stubs" / "apt-get"
    stub.write_text('#!/bin/sh\necho "apt-get $*" >>"$CALLS"\ncase " $* " in *" update "*) exit 100 ;; esac\n')
    proc, calls = hook()
    assert proc.returncode == 0, proc.stderr
    assert "apt-get update failed" in proc.stderr
    assert ".step-libvirt-packages" in markers(hook)


def test_running_systemd_starts_libvirtd_and_kvm_is_seen(hook):
    (hook.root / "run" / "systemd" / "system").mkdir(parents=True)
    (hook.root / "dev").mkdir()
    (hook.root / "dev" / "kvm").write_text("")
    proc, calls = hook()
    assert proc.returncode == 0, proc.stderr
    assert "systemctl enable --now libvirtd.service" in calls
    assert proc.stderr == ""
    assert "/dev/kvm present" in proc.stdout


def test_only_existing_groups_are_added(hook):
    (hook.root / "etc" / "group").write_text("blockhost:x:990:\nlibvirt:x:991:\n")
    proc, calls = hook()
    assert proc.returncode == 0, proc.stderr
    assert "usermod -aG libvirt blockhost" in calls
    # no libvirt-qemu group: the directories keep blockhost's group and QEMU gets no ACL
    assert "chown 990:990 /var/lib/blockhost/vms" in calls
    assert not any(c.startswith("setfacl") for c in calls)
    assert "libvirt-qemu:libvirt-qemu does not exist" in proc.stderr


@pytest.mark.parametrize(
    "passwd, group, message",
    [
        ("", "libvirt:x:991:\n", "user blockhost does not exist"),
        ("blockhost:x:990:990::/:/bin/false\n", "libvirt-qemu:x:64055:\n", "group libvirt does not exist"),
    ],
)
def test_groups_phase_fails_without_user_or_libvirt_group(hook, passwd, group, message):
    (hook.root / "etc" / "passwd").write_text(passwd)
    (hook.root / "etc" / "group").write_text(group)
    proc, calls = hook()
    assert proc.returncode != 0
    assert message in proc.stderr
    assert markers(hook) == [".step-libvirt-libvirtd", ".step-libvirt-packages"]
    assert not any(c.startswith(("usermod", "chown", "setfacl")) for c in calls)


def test_state_dir_is_honoured(hook):
    proc, _ = hook(STATE_DIR="/srv/state")
    assert proc.returncode == 0, proc.stderr
    assert len(list((hook.root / "srv" / "state").glob(".step-libvirt-*"))) == len(PHASES)
    assert markers(hook) == []


def test_hook_is_executable():
    assert os.access(HOOK, os.X_OK)
