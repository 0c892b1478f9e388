"""Each backend's manifest agrees with the Python plugin it names, and the two agree with each
other wherever the backend makes no difference."""

import importlib
import json
import os

import pytest

from conftest import ACTIONS_FILE, REPO, build_app
from blockhost.provisioner_libvirt import wizard as libvirt_wizard
from blockhost.provisioner_proxmox import wizard as proxmox_wizard

WIZARDS = {"libvirt": libvirt_wizard, "proxmox": proxmox_wizard}


def load(backend):
    with open(REPO / "packaging" / backend / "provisioner.json", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.mark.parametrize("backend", sorted(WIZARDS))
def test_finalization_steps_match_the_wizard(backend):
    ids = [step[0] for step in WIZARDS[backend].get_finalization_steps()]
    assert load(backend)["setup"]["finalization_steps"] == ids


@pytest.mark.parametrize("backend", sorted(WIZARDS))
def test_wizard_module_and_session_key(backend):
    manifest = load(backend)
    assert manifest["name"] == backend
    module = importlib.import_module(manifest["setup"]["wizard_module"])
    assert module is WIZARDS[backend]
    assert manifest["config_keys"]["session_key"] == module.SESSION_KEY
    # the installer links to the endpoint provisioner_<name>.wizard_<name>
    endpoint = "provisioner_%s.wizard_%s" % (backend, backend)
    assert endpoint in build_app(module.blueprint, "wizard_prev").view_functions


def test_root_agent_actions_file_is_ours():
    path = load("libvirt")["root_agent_actions"]
    assert os.path.basename(path) == ACTIONS_FILE.name
    assert path == "/usr/share/blockhost/root-agent-actions/" + ACTIONS_FILE.name


def test_proxmox_needs_no_root_agent_action():
    assert "root_agent_actions" not in load("proxmox")
    assert not (REPO / "packaging" / "proxmox" / "root-agent-actions").exists()


def test_what_no_backend_changes_is_the_same():
    libvirt, proxmox = load("libvirt"), load("proxmox")
    assert libvirt["commands"] == proxmox["commands"]
    assert libvirt["version"] == proxmox["version"]
    for key in ("first_boot_hook", "detect"):
        assert libvirt["setup"][key] == proxmox["setup"][key]
