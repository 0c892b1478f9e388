"""Shared fixtures for the Python pieces of the provisioner packages.

* ``PYTHON_DIR`` (``<repo>/packaging/libvirt/python``) and ``PROXMOX_PYTHON_DIR``
  (``<repo>/packaging/proxmox/python``) are put on ``sys.path`` so the wizard plugins import
  as ``blockhost.provisioner_libvirt.wizard`` and ``blockhost.provisioner_proxmox.wizard``
  (``blockhost`` is a namespace package, as installed).
* ``build_app``: a real Flask app using ``fixtures/`` as its template folder, with stub
  next-step endpoints, a stub previous step and a plugin's blueprint registered.
* ``host_root``: a scratch ``BLOCKHOST_ROOT`` with a fake ``br0`` bridge and
  ``/run/blockhost/bridge``.
* ``fake_run``: a recording stand-in for the wizard's module-level ``run``,
  pre-loaded with ``ip -j`` answers for br0 (10.20.0.5/24, default route via
  10.20.0.1).
* ``make_app``: ``build_app`` with the libvirt plugin's blueprint.
"""

import json
import sys
from pathlib import Path

import pytest

# Never leave bytecode next to the shipped sources (packaging/libvirt/).
sys.dont_write_bytecode = True

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PACKAGING = REPO / "packaging" / "libvirt"
PYTHON_DIR = PACKAGING / "python"
FIXTURES = HERE / "fixtures"
ACTIONS_FILE = PACKAGING / "root-agent-actions" / "libvirt_host.py"
PROXMOX_PACKAGING = REPO / "packaging" / "proxmox"
PROXMOX_PYTHON_DIR = PROXMOX_PACKAGING / "python"

for path in (PYTHON_DIR, PROXMOX_PYTHON_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from blockhost.provisioner_libvirt import wizard  # noqa: E402


def ip_addr_json(dev, *cidrs, scope="global"):
    infos = []
    for cidr in cidrs:
        local, plen = cidr.split("/")
        infos.append({"family": "inet", "local": local, "prefixlen": int(plen),
                      "scope": scope, "label": dev})
    return json.dumps([{"ifindex": 3, "ifname": dev, "flags": ["UP"], "addr_info": infos}])


def route_json(gateway):
    return json.dumps([{"dst": "default", "gateway": gateway, "protocol": "static", "flags": []}])


class FakeRunner:
    """Records argv lists; answers from a table keyed by the argv tuple."""

    def __init__(self):
        self.calls = []
        self.table = {}
        self.handlers = []
        self.default = (0, "", "")

    def set(self, argv, rc=0, out="", err=""):
        self.table[tuple(argv)] = (rc, out, err)

    def __call__(self, cmd, timeout=120):
        assert isinstance(cmd, list), "commands must be argument lists"
        assert all(isinstance(a, str) for a in cmd)
        assert isinstance(timeout, (int, float)) and timeout > 0
        self.calls.append(list(cmd))
        for handler in self.handlers:
            answer = handler(cmd)
            if answer is not None:
                return answer
        return self.table.get(tuple(cmd), self.default)

    def commands(self, prefix=None):
        if prefix is None:
            return list(self.calls)
        n = len(prefix)
        return [c for c in self.calls if c[:n] == list(prefix)]


def addr_argv(dev):
    return ["ip", "-j", "-4", "addr", "show", "dev", dev]


def route_argv(dev):
    return ["ip", "-j", "-4", "route", "show", "default", "dev", dev]


def make_iface(root, name, bridge=False, brport=False):
    d = Path(root) / "sys" / "class" / "net" / name
    d.mkdir(parents=True, exist_ok=True)
    if bridge:
        (d / "bridge").mkdir(exist_ok=True)
    if brport:
        (d / "brport").mkdir(exist_ok=True)
    return d


@pytest.fixture
def host_root(tmp_path, monkeypatch):
    root = tmp_path / "root"
    make_iface(root, "br0", bridge=True)
    make_iface(root, "eth0")
    (root / "run" / "blockhost").mkdir(parents=True)
    (root / "run" / "blockhost" / "bridge").write_text("br0\n")
    monkeypatch.setenv("BLOCKHOST_ROOT", str(root))
    return root


@pytest.fixture
def fake_run(monkeypatch):
    runner = FakeRunner()
    runner.set(addr_argv("br0"), out=ip_addr_json("br0", "10.20.0.5/24"))
    runner.set(route_argv("br0"), out=route_json("10.20.0.1"))
    monkeypatch.setattr(wizard, "run", runner)
    return runner


def build_app(blueprint, prev_endpoint, next_steps=("wizard_connectivity",), wizard_nav=False):
    """A Flask app as the installer makes one, around one plugin's *blueprint*."""
    from flask import Flask

    app = Flask(__name__, template_folder=str(FIXTURES))
    app.secret_key = "test-secret"
    app.config["TESTING"] = True
    for endpoint in next_steps:
        path = "/" + endpoint.split("_", 1)[1]
        app.add_url_rule(path, endpoint, lambda: "next")
    app.add_url_rule("/" + prev_endpoint.split("_", 1)[1], prev_endpoint, lambda: "prev")
    if wizard_nav:
        class Nav:
            prev = prev_endpoint

        @app.context_processor
        def _nav():
            return {"wizard_nav": lambda name: Nav}
    app.register_blueprint(blueprint)
    return app


@pytest.fixture
def make_app(host_root, fake_run):
    def factory(next_steps=("wizard_connectivity",), wizard_nav=False):
        return build_app(wizard.blueprint, "wizard_storage", next_steps, wizard_nav)

    return factory


@pytest.fixture
def client(make_app):
    return make_app().test_client()
