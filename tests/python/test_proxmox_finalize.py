"""Finalization steps of the Proxmox VE plugin against a scratch BLOCKHOST_ROOT: the files they
write (content, mode, group), and the commands they run through a recording ``run``."""

import grp
import os
import stat

import pytest
import yaml

from conftest import FakeRunner
from proxmox_common import FINGERPRINT, SESSION, TOKEN, ca_pem  # noqa: F401 (fixture)
from blockhost.provisioner_proxmox import hostio, wizard, yamlio

# As root the steps really change the group; otherwise they cannot, and say so.
GID = 4242 if os.geteuid() == 0 else os.getgid()


@pytest.fixture
def root(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("BLOCKHOST_ROOT", str(root))
    monkeypatch.setattr(hostio.grp, "getgrnam", lambda name: grp.struct_group(("blockhost", "x", GID, [])))
    return root


@pytest.fixture
def fake_run(monkeypatch):
    runner = FakeRunner()
    monkeypatch.setattr(wizard, "run", runner)
    return runner


def cfg(**overrides):
    return {"provisioner": dict(SESSION, **overrides), "ipv6": {}, "admin_wallet": "0xabc"}


def mode_and_group(path):
    st = path.stat()
    return stat.S_IMODE(st.st_mode), st.st_gid


def test_steps_are_the_manifest_order():
    assert [s[0] for s in wizard.get_finalization_steps()] == ["token", "tls", "db_config", "api", "template"]


def test_token_is_written_as_the_backend_reads_it(root):
    path = root / "etc/blockhost/pve-token"
    path.parent.mkdir(parents=True)
    path.write_text("old")
    path.chmod(0o644)
    assert wizard.finalize_token(cfg()) == (True, None)
    assert path.read_text() == TOKEN  # one line, no newline, as upstream
    assert mode_and_group(path) == (0o640, GID)
    assert [p.name for p in path.parent.iterdir()] == ["pve-token"]  # no temporary file left


def test_invalid_settings_write_nothing(root):
    ok, message = wizard.finalize_token(cfg(token="no-token"))
    assert not ok and message.startswith("Invalid provisioner settings: token: ")
    assert not (root / "etc").exists()
    assert wizard.finalize_db_config({"provisioner": None})[0] is False
    assert not (root / "etc").exists()


def test_tls_writes_the_ca_only_when_it_verifies_the_api(root, ca_pem):  # noqa: F811
    path = root / "etc/blockhost/pve-root-ca.pem"
    assert wizard.finalize_tls(cfg()) == (True, None)
    assert not path.exists()
    assert wizard.finalize_tls(cfg(tls_fingerprint="", ca_pem=ca_pem)) == (True, None)
    assert path.read_text() == ca_pem and mode_and_group(path)[0] == 0o644


def test_db_config_has_the_common_keys_and_the_proxmox_section(root, ca_pem):  # noqa: F811
    assert wizard.finalize_db_config(cfg(ip_start="100", ip_end="199")) == (True, None)
    path = root / "etc/blockhost/db.yaml"
    assert mode_and_group(path) == (0o640, GID)
    assert yaml.safe_load(path.read_text()) == {
        "db_file": "/var/lib/blockhost/vms.json",
        "bridge": "vmbr0",
        "gc_grace_days": 7,
        "default_expiry_days": 30,
        "vmid_range": {"start": 100, "end": 999},
        "ip_pool": {"network": "10.30.0.0/24", "start": "10.30.0.100", "end": "10.30.0.199", "gateway": "10.30.0.1"},
        "proxmox": {
            "url": "https://pve1.example.net:8006",
            "node": "pve1",
            "storage": "local-lvm",
            "iso_storage": "local",
            "template_vmid": 9001,
            "token_file": "/etc/blockhost/pve-token",
            "tls_fingerprint": FINGERPRINT,
        },
    }
    assert wizard.finalize_db_config(cfg(tls_fingerprint="", ca_pem=ca_pem)) == (True, None)
    section = yaml.safe_load(path.read_text())["proxmox"]
    assert section["ca_file"] == "/etc/blockhost/pve-root-ca.pem" and "tls_fingerprint" not in section


@pytest.mark.parametrize("with_pyyaml", [True, False])
def test_db_config_keeps_the_installers_ipv6_pool(root, monkeypatch, with_pyyaml):
    path = root / "etc/blockhost/db.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("bridge: old\nipv6_pool:\n  prefix: 2001:db8:1::/64\n  start: 2\n  end: 254\n")
    if not with_pyyaml:
        monkeypatch.setattr(yamlio, "yaml", None)
    assert wizard.finalize_db_config(cfg()) == (True, None)
    doc = yaml.safe_load(path.read_text())
    assert doc["ipv6_pool"] == {"prefix": "2001:db8:1::/64", "start": 2, "end": 254}
    assert doc["bridge"] == "vmbr0"


def test_api_runs_detect_and_reports_its_reason(root, fake_run, monkeypatch):
    monkeypatch.setenv("BLOCKHOST_PROVISIONER_DETECT", "/usr/bin/blockhost-provisioner-detect")
    assert wizard.finalize_api(cfg()) == (True, None)
    assert fake_run.calls == [["/usr/bin/blockhost-provisioner-detect"]]
    fake_run.default = (1, "", "Proxmox VE API at https://pve1.example.net:8006: the token is not accepted (401)")
    ok, message = wizard.finalize_api(cfg())
    assert not ok and message == (
        "The Proxmox VE API cannot be used: Proxmox VE API at https://pve1.example.net:8006: the token is not accepted (401)")


def test_api_without_detect(root, monkeypatch):
    monkeypatch.delenv("BLOCKHOST_PROVISIONER_DETECT", raising=False)
    monkeypatch.setenv("PATH", str(root))
    assert wizard.finalize_api(cfg()) == (False, "blockhost-provisioner-detect not found in PATH.")


def test_api_with_the_real_run(root, tmp_path, monkeypatch):
    detect = tmp_path / "detect"
    detect.write_text('#!/bin/sh\necho "root is $BLOCKHOST_ROOT" >&2\nexit 1\n')
    detect.chmod(0o755)
    monkeypatch.setenv("BLOCKHOST_PROVISIONER_DETECT", str(detect))
    assert wizard.finalize_api(cfg()) == (False, "The Proxmox VE API cannot be used: root is %s" % root)


def test_template_runs_build_template(root, tmp_path, monkeypatch):
    script = tmp_path / "bt"
    script.write_text("#!/bin/sh\necho building\necho 'template 9001 ready'\n")
    script.chmod(0o755)
    monkeypatch.setenv("BLOCKHOST_BUILD_TEMPLATE", str(script))
    assert wizard.finalize_template(cfg()) == (True, None)
    script.write_text("#!/bin/sh\necho 'no storage local-lvm on pve1' >&2\nexit 3\n")
    assert wizard.finalize_template(cfg()) == (False, "Template build failed: no storage local-lvm on pve1")


def test_a_step_never_raises(root, monkeypatch):
    def boom(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(wizard.hostio, "write_atomic", boom)
    monkeypatch.setattr(wizard, "run", boom)
    monkeypatch.setenv("BLOCKHOST_PROVISIONER_DETECT", "/bin/true")
    monkeypatch.setenv("BLOCKHOST_BUILD_TEMPLATE", "/bin/true")
    for step_id, _label, func, *_hint in wizard.get_finalization_steps():
        if step_id == "tls":
            continue  # writes nothing with a fingerprint
        assert func(cfg()) == (False, "%s step failed: disk on fire" % step_id)
