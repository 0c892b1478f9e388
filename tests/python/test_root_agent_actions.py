"""packaging/libvirt/root-agent-actions/libvirt_host.py loaded the way the root agent daemon loads plugins."""

import importlib.util
import json
import shutil
import sys

import pytest

from conftest import ACTIONS_FILE, FIXTURES, make_iface

NAMES = {"libvirt-ip6-route-add", "libvirt-ip6-route-del",
         "libvirt-ip6-route-list", "libvirt-bridge-port-isolate"}


def load_actions_dir(directory):
    """Mimic the daemon: sorted *.py, skip '_' files, dir on sys.path, first name wins."""
    sys.path.insert(0, str(directory))
    try:
        merged, owners = {}, {}
        for path in sorted(directory.glob("*.py")):
            if path.name.startswith("_"):
                continue
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            for name, handler in getattr(module, "ACTIONS", {}).items():
                if name not in merged:
                    merged[name] = handler
                    owners[name] = path.name
        return merged, owners
    finally:
        sys.path.remove(str(directory))


class Recorder:
    def __init__(self):
        self.calls = []
        self.answer = (0, "", "")

    def __call__(self, cmd, timeout=120):
        assert isinstance(cmd, list) and all(isinstance(a, str) for a in cmd)
        self.calls.append(cmd)
        return self.answer


@pytest.fixture
def agent_root(tmp_path, monkeypatch):
    root = tmp_path / "root"
    make_iface(root, "br0", bridge=True)
    make_iface(root, "eth0")
    make_iface(root, "vnet0", brport=True)
    make_iface(root, "vnet9")                  # exists but not enslaved
    make_iface(root, "tap101i0", brport=True)
    monkeypatch.setenv("BLOCKHOST_ROOT", str(root))
    return root


@pytest.fixture
def mod(agent_root, monkeypatch):
    monkeypatch.delitem(sys.modules, "_common", raising=False)
    monkeypatch.syspath_prepend(str(FIXTURES))
    spec = importlib.util.spec_from_file_location("libvirt_host", ACTIONS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.log.name == "root-agent"
    module.run = Recorder()
    return module


def call(mod, name, params):
    return mod.ACTIONS[name](params)


# ------------------------------------------------------------------ loading

def test_actions_exported(mod):
    assert set(mod.ACTIONS) == NAMES
    assert all(callable(h) for h in mod.ACTIONS.values())


def test_merge_with_common_actions_no_collision(tmp_path, monkeypatch):
    actions = tmp_path / "root-agent-actions"
    actions.mkdir()
    shutil.copy(FIXTURES / "_common.py", actions / "_common.py")
    shutil.copy(ACTIONS_FILE, actions / "libvirt_host.py")
    (actions / "networking.py").write_text(
        "from _common import log, run\n"
        "def h(params):\n    return {'ok': True, 'output': 'common'}\n"
        "ACTIONS = {'ip6-route-add': h, 'ip6-route-del': h, 'bridge-port-isolate': h}\n")
    monkeypatch.delitem(sys.modules, "_common", raising=False)
    merged, owners = load_actions_dir(actions)
    assert {n for n, o in owners.items() if o == "libvirt_host.py"} == NAMES
    assert owners["ip6-route-add"] == "networking.py"


# ------------------------------------------------------------------ good params

def test_route_add(mod):
    res = call(mod, "libvirt-ip6-route-add", {"address": "2001:db8::5/128", "dev": "br0"})
    assert res["ok"] is True and "2001:db8::5/128" in res["output"]
    assert mod.run.calls == [["ip", "-6", "route", "replace", "2001:db8::5/128", "dev", "br0"]]


def test_route_add_normalises_address(mod):
    call(mod, "libvirt-ip6-route-add", {"address": "2001:0DB8:0000:0000:0000:0000:0000:000A/128",
                                        "dev": "br0"})
    assert mod.run.calls == [["ip", "-6", "route", "replace", "2001:db8::a/128", "dev", "br0"]]


def test_route_add_failure(mod):
    mod.run.answer = (2, "", "RTNETLINK answers: Operation not permitted")
    res = call(mod, "libvirt-ip6-route-add", {"address": "2001:db8::5/128", "dev": "br0"})
    assert res == {"ok": False, "error": "RTNETLINK answers: Operation not permitted"}


def test_route_del(mod):
    res = call(mod, "libvirt-ip6-route-del", {"address": "2001:db8::5/128", "dev": "br0"})
    assert res["ok"] is True
    assert mod.run.calls == [["ip", "-6", "route", "del", "2001:db8::5/128", "dev", "br0"]]


@pytest.mark.parametrize("err", ["RTNETLINK answers: No such process",
                                 "Error: Route not found"])
def test_route_del_absent_is_success(mod, err):
    mod.run.answer = (2, "", err)
    res = call(mod, "libvirt-ip6-route-del", {"address": "2001:db8::5/128", "dev": "br0"})
    assert res["ok"] is True and "not present" in res["output"]


def test_route_del_real_failure(mod):
    mod.run.answer = (2, "", "RTNETLINK answers: Operation not permitted")
    res = call(mod, "libvirt-ip6-route-del", {"address": "2001:db8::5/128", "dev": "br0"})
    assert res["ok"] is False and "not permitted" in res["error"]


def test_route_list(mod):
    mod.run.answer = (0, json.dumps([
        {"dst": "2001:db8::1", "protocol": "kernel", "metric": 256, "flags": []},
        {"dst": "2001:db8::5", "metric": 1024, "flags": [], "pref": "medium"},
        {"dst": "2001:db8::6/128", "metric": 1024, "flags": []},
        {"dst": "2001:db8::/64", "metric": 1024, "flags": []},
        {"dst": "fe80::/64", "protocol": "kernel", "metric": 256, "flags": []},
        {"dst": "default", "gateway": "fe80::1", "protocol": "ra", "flags": []},
        {"dst": "ff00::/8", "flags": []},
    ]), "")
    res = call(mod, "libvirt-ip6-route-list", {"dev": "br0"})
    assert res["ok"] is True
    assert res["output"] == "2001:db8::5/128\n2001:db8::6/128"
    assert res["routes"] == ["2001:db8::5/128", "2001:db8::6/128"]
    assert mod.run.calls == [["ip", "-j", "-6", "route", "show", "dev", "br0"]]


def test_route_list_empty_and_bad_output(mod):
    mod.run.answer = (0, "", "")
    assert call(mod, "libvirt-ip6-route-list", {"dev": "br0"}) == {"ok": True, "output": "", "routes": []}
    mod.run.answer = (0, "not json", "")
    assert call(mod, "libvirt-ip6-route-list", {"dev": "br0"})["ok"] is False


@pytest.mark.parametrize("dev", ["vnet0", "tap101i0"])
def test_port_isolate(mod, dev):
    res = call(mod, "libvirt-bridge-port-isolate", {"dev": dev})
    assert res["ok"] is True
    assert mod.run.calls == [["bridge", "link", "set", "dev", dev, "isolated", "on"]]


def test_port_isolate_failure(mod):
    mod.run.answer = (255, "", "RTNETLINK answers: Operation not supported")
    res = call(mod, "libvirt-bridge-port-isolate", {"dev": "vnet0"})
    assert res == {"ok": False, "error": "RTNETLINK answers: Operation not supported"}


# ------------------------------------------------------------------ hostile corpus

HOSTILE_STRINGS = [
    "; rm -rf /", "$(id)", "`id`", "a\nb", "--help", "-f", "", " ", "\x00",
    "br0;id", "br0 && id", "br0|id", "../br0", "..", ".", "a" * 300,
]

BAD_ADDRESSES = HOSTILE_STRINGS + [
    "2001:db8::5/128\n", " 2001:db8::5/128", "2001:db8::5/128 ", "2001:db8::5/128;id",
    "2001:db8::5", "2001:db8::5/64", "2001:db8::5/127", "2001:db8::5/1280", "2001:db8::5/0128",
    "::1/128", "ff02::1/128", "ff05::2/128", "fe80::1/128", "::/128", "::ffff:10.0.0.1/128",
    "2001:db8:::5/128", "1:2:3:4:5:6:7:8:9/128", "2001:db8::g/128", "10.0.0.1/128",
    "２001:db8::5/128", "2001:db8::5／128", "2001:ԁb8::5/128", "2001:db8::5/１２８",
    "-2001:db8::5/128", "--address=2001:db8::5/128",
]
BAD_BRIDGES = HOSTILE_STRINGS + [
    "br0\n", "br0 ", " br0", "-br0", "br０", "Ьr0", "averyveryverylong0", "eth0", "nosuch0",
    "vnet0",   # a tap, not a bridge
]
BAD_TAPS = HOSTILE_STRINGS + [
    "br0", "eth0", "vnet", "vnet123456", "vnet9", "vnet0\n", "vnet０", "tap", "tap-1",
    "tap101i0 ", "vnet99", "taptaptaptaptap0", "VNET0", "-vnet0",
]
BAD_TYPES = [None, 5, 1.5, True, ["2001:db8::5/128"], {"a": 1}, b"br0", ("br0",)]


def _rejected(mod, name, params):
    res = call(mod, name, params)
    assert res["ok"] is False, (name, params, res)
    assert isinstance(res["error"], str) and res["error"]
    assert mod.run.calls == []
    return res


@pytest.mark.parametrize("name", ["libvirt-ip6-route-add", "libvirt-ip6-route-del"])
@pytest.mark.parametrize("address", BAD_ADDRESSES + BAD_TYPES)
def test_route_bad_address_rejected(mod, name, address):
    _rejected(mod, name, {"address": address, "dev": "br0"})


@pytest.mark.parametrize("name", ["libvirt-ip6-route-add", "libvirt-ip6-route-del"])
@pytest.mark.parametrize("dev", BAD_BRIDGES + BAD_TYPES)
def test_route_bad_dev_rejected(mod, name, dev):
    _rejected(mod, name, {"address": "2001:db8::5/128", "dev": dev})


@pytest.mark.parametrize("dev", BAD_BRIDGES + BAD_TYPES)
def test_route_list_bad_dev_rejected(mod, dev):
    _rejected(mod, "libvirt-ip6-route-list", {"dev": dev})


@pytest.mark.parametrize("dev", BAD_TAPS + BAD_TYPES)
def test_isolate_bad_dev_rejected(mod, dev):
    _rejected(mod, "libvirt-bridge-port-isolate", {"dev": dev})


GOOD = {
    "libvirt-ip6-route-add": {"address": "2001:db8::5/128", "dev": "br0"},
    "libvirt-ip6-route-del": {"address": "2001:db8::5/128", "dev": "br0"},
    "libvirt-ip6-route-list": {"dev": "br0"},
    "libvirt-bridge-port-isolate": {"dev": "vnet0"},
}


@pytest.mark.parametrize("name", sorted(NAMES))
@pytest.mark.parametrize("params", [None, [], "dev=br0", 5, ["dev", "br0"]])
def test_non_dict_params_rejected(mod, name, params):
    _rejected(mod, name, params)


@pytest.mark.parametrize("name", sorted(NAMES))
@pytest.mark.parametrize("extra", [{"extra": "x"}, {"cmd": "id"}, {"dev2": "br0"}, {"": ""}, {1: "x"}])
def test_extra_keys_rejected(mod, name, extra):
    res = _rejected(mod, name, {**GOOD[name], **extra})
    assert "unknown parameter" in res["error"]


@pytest.mark.parametrize("name", sorted(NAMES))
def test_missing_keys_rejected(mod, name):
    for key in GOOD[name]:
        params = dict(GOOD[name])
        del params[key]
        res = _rejected(mod, name, params)
        assert "missing parameter" in res["error"]
    _rejected(mod, name, {})


def test_error_message_does_not_echo_raw_newlines(mod):
    res = _rejected(mod, "libvirt-ip6-route-add",
                    {"address": "2001:db8::5/128", "dev": "br0", "x\ninjected": "1"})
    assert "\n" not in res["error"]
