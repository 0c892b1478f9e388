"""The libvirt manifest agrees with the Python plugin it names."""

import importlib
import json
import os

from conftest import ACTIONS_FILE, REPO
from blockhost.provisioner_libvirt import wizard

MANIFEST = REPO / "packaging" / "libvirt" / "provisioner.json"


def load():
    with open(MANIFEST, encoding="utf-8") as fh:
        return json.load(fh)


def test_finalization_steps_match_the_wizard():
    ids = [step[0] for step in wizard.get_finalization_steps()]
    assert load()["setup"]["finalization_steps"] == ids


def test_wizard_module_and_session_key(make_app):
    manifest = load()
    module = importlib.import_module(manifest["setup"]["wizard_module"])
    assert module is wizard
    assert manifest["config_keys"]["session_key"] == wizard.SESSION_KEY
    # the installer links to the endpoint provisioner_<name>.wizard_<name>
    name = manifest["name"]
    endpoint = "provisioner_%s.wizard_%s" % (name, name)
    assert endpoint in make_app().view_functions


def test_root_agent_actions_file_is_ours():
    path = load()["root_agent_actions"]
    assert os.path.basename(path) == ACTIONS_FILE.name
    assert path == "/usr/share/blockhost/root-agent-actions/" + ACTIONS_FILE.name
