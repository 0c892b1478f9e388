"""Finalization steps against a scratch BLOCKHOST_ROOT with a recording ``run``."""

import grp
import logging
import os
import pwd
import stat
import sys
import textwrap

import pytest

from conftest import addr_argv, ip_addr_json
from blockhost.provisioner_libvirt import wizard, yamlio

VIRSH = ["virsh", "-c", "qemu:///system"]

SESSION = {
    "storage_pool": "blockhost",
    "storage_path": "/var/lib/blockhost/vms",
    "bridge": "br0",
    "ip_network": "10.20.0.0/24",
    "ip_start": "10.20.0.128",
    "ip_end": "10.20.0.254",
    "gateway": "10.20.0.1",
    "gc_grace_days": 7,
}


def cfg(**overrides):
    return {"provisioner": dict(SESSION, **overrides), "ipv6": {}, "admin_wallet": "0xabc"}


class FakeVirsh:
    """Minimal stateful libvirt: pools and the 'default' network."""

    def __init__(self, net_defined=True, net_active=True, net_autostart=True, net_bridge="virbr0"):
        self.pools = {}
        self.net = {"defined": net_defined, "active": net_active,
                    "autostart": net_autostart, "bridge": net_bridge}
        self.fail = {}

    def __call__(self, cmd):
        if cmd[:3] != VIRSH:
            return None
        verb, args = cmd[3], cmd[4:]
        if verb in self.fail:
            return self.fail[verb]
        handler = getattr(self, "do_" + verb.replace("-", "_"), None)
        if handler is None:
            return (1, "", "error: unknown command %s" % verb)
        return handler(*args)

    # pools
    def do_pool_define_as(self, name, kind, flag, target):
        assert (kind, flag) == ("dir", "--target")
        if name in self.pools:
            return (1, "", "error: Failed to define pool %s\nerror: operation failed: "
                           "pool '%s' already exists with uuid 1234" % (name, name))
        self.pools[name] = {"target": target, "active": False, "autostart": False}
        return (0, "Pool %s defined" % name, "")

    def do_pool_dumpxml(self, name):
        if name not in self.pools:
            return (1, "", "error: failed to get pool '%s'" % name)
        return (0, "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                % (name, self.pools[name]["target"]), "")

    def do_pool_build(self, name):
        return (0, "Pool %s built" % name, "")

    def do_pool_start(self, name):
        pool = self.pools[name]
        if pool["active"]:
            return (1, "", "error: Failed to start pool %s\nerror: Requested operation is "
                           "not valid: storage pool '%s' is already active" % (name, name))
        pool["active"] = True
        return (0, "Pool %s started" % name, "")

    def do_pool_autostart(self, name):
        self.pools[name]["autostart"] = True
        return (0, "Pool %s marked as autostarted" % name, "")

    def do_pool_info(self, name):
        pool = self.pools[name]
        return (0, "Name:           %s\nState:          %s\nAutostart:      %s"
                % (name, "running" if pool["active"] else "inactive",
                   "yes" if pool["autostart"] else "no"), "")

    # network
    def do_net_info(self, name):
        if not self.net["defined"]:
            return (1, "", "error: failed to get network '%s'\nerror: Network not found" % name)
        return (0, "Name:           default\nActive:         %s\nPersistent:     yes\n"
                   "Autostart:      %s\nBridge:         %s"
                % ("yes" if self.net["active"] else "no",
                   "yes" if self.net["autostart"] else "no", self.net["bridge"]), "")

    def do_net_destroy(self, name):
        if not self.net["active"]:
            return (1, "", "error: Failed to destroy network default\nerror: Requested "
                           "operation is not valid: network is not active")
        self.net["active"] = False
        return (0, "Network default destroyed", "")

    def do_net_autostart(self, name, flag):
        assert flag == "--disable"
        self.net["autostart"] = False
        return (0, "Network default unmarked as autostarted", "")


@pytest.fixture
def virsh(fake_run):
    fake = FakeVirsh()
    fake_run.handlers.append(fake)
    return fake


def virsh_calls(fake_run):
    return [c[3:] for c in fake_run.calls if c[:3] == VIRSH]


# ------------------------------------------------------------------ steps list

def test_step_list_shape():
    steps = wizard.get_finalization_steps()
    assert [s[0] for s in steps] == ["storage", "network", "db_config", "template"]
    assert all(len(s) in (3, 4) and isinstance(s[1], str) and callable(s[2]) for s in steps)
    assert steps[3][3] == "(this may take several minutes)"
    assert all(len(s) == 3 for s in steps[:3])


@pytest.mark.parametrize("index", range(4))
def test_steps_never_raise(index, host_root, monkeypatch):
    def boom(cmd, timeout=120):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(wizard, "run", boom)
    monkeypatch.setenv("BLOCKHOST_BUILD_TEMPLATE", "/bin/true")
    func = wizard.get_finalization_steps()[index][2]
    ok, msg = func(cfg())
    if index == 2:   # db_config needs no command when the config is complete
        assert ok and msg is None
    elif index == 1:  # detection swallows runner errors: the bridge has no address
        assert ok is False and "br0" in msg
    else:
        assert ok is False and "kaboom" in msg


@pytest.mark.parametrize("index", range(3))
def test_steps_tolerate_garbage_config(index, host_root, fake_run, monkeypatch):
    monkeypatch.setenv("BLOCKHOST_BUILD_TEMPLATE", str(host_root / "missing"))
    func = wizard.get_finalization_steps()[index][2]
    ok, msg = func({"provisioner": {"storage_pool": ["x"], "bridge": 5, "gc_grace_days": "x"}})
    assert ok is False and isinstance(msg, str) and msg


# ------------------------------------------------------------------ storage

STATE_DIRS = ("vms", "cloud-init", "templates", "template-packages", "metrics")


def test_storage_creates_dirs_and_pool(host_root, fake_run, virsh):
    ok, msg = wizard.finalize_storage(cfg())
    assert (ok, msg) == (True, None)
    for d in STATE_DIRS:
        path = host_root / "var" / "lib" / "blockhost" / d
        assert path.is_dir()
        assert stat.S_IMODE(path.stat().st_mode) == 0o750
    assert virsh_calls(fake_run) == [
        ["pool-define-as", "blockhost", "dir", "--target", "/var/lib/blockhost/vms"],
        ["pool-dumpxml", "blockhost"],
        ["pool-build", "blockhost"],
        ["pool-start", "blockhost"],
        ["pool-autostart", "blockhost"],
        ["pool-info", "blockhost"],
    ]
    assert virsh.pools["blockhost"] == {"target": "/var/lib/blockhost/vms",
                                        "active": True, "autostart": True}


def test_storage_is_idempotent(host_root, fake_run, virsh):
    assert wizard.finalize_storage(cfg()) == (True, None)
    fake_run.calls.clear()
    assert wizard.finalize_storage(cfg()) == (True, None)
    assert [c[0] for c in virsh_calls(fake_run)] == [
        "pool-define-as", "pool-dumpxml", "pool-build", "pool-start", "pool-autostart", "pool-info"]


def test_storage_custom_pool_dir_created(host_root, fake_run, virsh):
    ok, _ = wizard.finalize_storage(cfg(storage_pool="vmpool", storage_path="/var/lib/blockhost/pool2"))
    assert ok
    assert (host_root / "var/lib/blockhost/pool2").is_dir()
    assert virsh.pools["vmpool"]["target"] == "/var/lib/blockhost/pool2"


def test_storage_existing_pool_with_other_target_fails(host_root, fake_run, virsh):
    virsh.pools["blockhost"] = {"target": "/srv/images", "active": True, "autostart": True}
    ok, msg = wizard.finalize_storage(cfg())
    assert ok is False and "/srv/images" in msg


def test_storage_real_failure_reported(host_root, fake_run, virsh):
    virsh.fail["pool-define-as"] = (1, "", "error: failed to connect to the hypervisor\n"
                                           "error: Failed to connect socket: Permission denied")
    ok, msg = wizard.finalize_storage(cfg())
    assert ok is False
    assert "Permission denied" in msg
    assert [c[0] for c in virsh_calls(fake_run)] == ["pool-define-as"]


def test_storage_start_failure_reported(host_root, fake_run, virsh):
    virsh.fail["pool-start"] = (1, "", "error: cannot open directory: No such file")
    ok, msg = wizard.finalize_storage(cfg())
    assert ok is False and "Starting storage pool blockhost failed" in msg


def test_storage_rejects_bad_config_without_commands(host_root, fake_run, virsh):
    ok, msg = wizard.finalize_storage(cfg(storage_path="/var/lib/blockhost/../../etc"))
    assert ok is False and "normalised" in msg
    assert fake_run.calls == []
    ok, msg = wizard.finalize_storage(cfg(storage_pool="--pool"))
    assert ok is False and fake_run.calls == []


def test_storage_without_blockhost_user_logs_skip(host_root, fake_run, virsh, monkeypatch, caplog):
    def nouser(name):
        raise KeyError(name)

    monkeypatch.setattr(wizard.pwd, "getpwnam", nouser)
    with caplog.at_level(logging.WARNING, logger="blockhost.provisioner_libvirt"):
        assert wizard.finalize_storage(cfg()) == (True, None)
    assert "user blockhost does not exist" in caplog.text


def test_storage_chowns_when_user_exists(host_root, fake_run, virsh, monkeypatch):
    me = pwd.getpwuid(os.getuid())
    mygroup = grp.getgrgid(os.getgid())
    seen = []
    monkeypatch.setattr(wizard.pwd, "getpwnam", lambda n: seen.append(("user", n)) or me)

    def getgrnam(name):
        seen.append(("group", name))
        return mygroup

    monkeypatch.setattr(wizard.grp, "getgrnam", getgrnam)
    real_chown = os.chown
    chowned = []
    monkeypatch.setattr(wizard.os, "chown", lambda p, u, g: chowned.append((p, u, g)) or real_chown(p, u, g))
    assert wizard.finalize_storage(cfg()) == (True, None)
    assert ("user", "blockhost") in seen and ("group", "libvirt-qemu") in seen
    paths = {p for p, _, _ in chowned}
    for d in STATE_DIRS:
        assert str(host_root / "var/lib/blockhost" / d) in paths
    assert all((u, g) == (me.pw_uid, mygroup.gr_gid) for _, u, g in chowned)


def test_storage_group_falls_back_to_blockhost(monkeypatch):
    me = pwd.getpwuid(os.getuid())
    monkeypatch.setattr(wizard.pwd, "getpwnam", lambda n: me)

    def getgrnam(name):
        if name == "libvirt-qemu":
            raise KeyError(name)
        return grp.getgrgid(os.getgid())

    monkeypatch.setattr(wizard.grp, "getgrnam", getgrnam)
    uid, gid, desc = wizard._lookup_ids()
    assert desc == "blockhost:blockhost" and uid == me.pw_uid


# ------------------------------------------------------------------ network

def test_network_disables_active_default(host_root, fake_run, virsh):
    config = cfg()
    assert wizard.finalize_network(config) == (True, None)
    assert virsh_calls(fake_run) == [
        ["net-info", "default"],
        ["net-destroy", "default"],
        ["net-autostart", "default", "--disable"],
    ]
    assert virsh.net["active"] is False and virsh.net["autostart"] is False
    assert addr_argv("br0") in fake_run.calls


def test_network_inactive_default_not_destroyed(host_root, fake_run, virsh):
    virsh.net.update(active=False, autostart=False)
    assert wizard.finalize_network(cfg()) == (True, None)
    assert virsh_calls(fake_run) == [["net-info", "default"]]


def test_network_inactive_but_autostart_only_disables(host_root, fake_run, virsh):
    virsh.net.update(active=False, autostart=True)
    assert wizard.finalize_network(cfg()) == (True, None)
    assert virsh_calls(fake_run) == [["net-info", "default"], ["net-autostart", "default", "--disable"]]


def test_network_default_absent(host_root, fake_run, virsh):
    virsh.net["defined"] = False
    assert wizard.finalize_network(cfg()) == (True, None)
    assert virsh_calls(fake_run) == [["net-info", "default"]]


def test_network_tolerates_not_active_race(host_root, fake_run, virsh):
    virsh.fail["net-destroy"] = (1, "", "error: Requested operation is not valid: network is not active")
    assert wizard.finalize_network(cfg()) == (True, None)


def test_network_destroy_failure_reported(host_root, fake_run, virsh):
    virsh.fail["net-destroy"] = (1, "", "error: internal error: something broke")
    ok, msg = wizard.finalize_network(cfg())
    assert ok is False and "something broke" in msg


def test_network_default_owning_our_bridge_untouched(host_root, fake_run, virsh):
    virsh.net["bridge"] = "br0"
    assert wizard.finalize_network(cfg()) == (True, None)
    assert virsh_calls(fake_run) == [["net-info", "default"]]


def test_network_bridge_without_ipv4_fails(host_root, fake_run, virsh):
    fake_run.set(addr_argv("br0"), out=ip_addr_json("br0"))
    ok, msg = wizard.finalize_network(cfg())
    assert ok is False and "no global IPv4" in msg
    assert virsh_calls(fake_run) == []


def test_network_detects_bridge_when_missing(host_root, fake_run, virsh):
    config = cfg()
    del config["provisioner"]["bridge"]
    assert wizard.finalize_network(config) == (True, None)
    assert config["provisioner"]["bridge"] == "br0"


def test_network_no_bridge_at_all(host_root, fake_run, virsh):
    (host_root / "run/blockhost/bridge").unlink()
    fake_run.set(addr_argv("br0"), out="[]")
    config = cfg(bridge="")
    ok, msg = wizard.finalize_network(config)
    assert ok is False and "No bridge" in msg


# ------------------------------------------------------------------ db_config

def tiny_yaml(text):
    """Parser for the block-style subset written by yamlio.dump_plain."""
    def value(raw):
        raw = raw.strip()
        if raw.startswith('"'):
            return raw[1:-1].encode().decode("unicode_escape")
        if raw.lstrip("-").isdigit():
            return int(raw)
        return {"null": None, "true": True, "false": False, "{}": {}, "[]": []}.get(raw, raw)

    root = {}
    stack = [(-1, root)]
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, rest = line.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if rest.strip():
            parent[key] = value(rest)
        else:
            parent[key] = {}
            stack.append((indent, parent[key]))
    return root


def pyyaml():
    """PyYAML, the independent reader the written db.yaml is checked with.
    Skipped without it, except under CI=true, where the scripts install it."""
    if os.environ.get("CI") == "true":
        import yaml
        return yaml
    return pytest.importorskip("yaml", reason="PyYAML not installed (apt-get install python3-yaml)")


def load_yaml(text):
    return pyyaml().safe_load(text)


EXPECTED_DB = {
    "db_file": "/var/lib/blockhost/vms.json",
    "storage_pool": "blockhost",
    "storage_path": "/var/lib/blockhost/vms",
    "bridge": "br0",
    "gc_grace_days": 7,
    "default_expiry_days": 30,
    "ip_pool": {"network": "10.20.0.0/24", "start": "10.20.0.128",
                "end": "10.20.0.254", "gateway": "10.20.0.1"},
}


@pytest.fixture(params=["pyyaml", "fallback"])
def yaml_mode(request, monkeypatch):
    if request.param == "fallback":
        monkeypatch.setattr(yamlio, "yaml", None)
    else:
        pyyaml()
    return request.param


def db_path(root):
    return root / "etc" / "blockhost" / "db.yaml"


def test_db_config_writes_every_key(host_root, fake_run, yaml_mode):
    assert wizard.finalize_db_config(cfg()) == (True, None)
    path = db_path(host_root)
    text = path.read_text()
    assert load_yaml(text) == EXPECTED_DB
    if yaml_mode == "fallback":
        assert tiny_yaml(text) == EXPECTED_DB
    assert list(load_yaml(text)) == list(EXPECTED_DB)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in path.parent.iterdir()] == ["db.yaml"]   # no temp leftovers
    assert fake_run.calls == []


def test_db_config_preserves_ipv6_pool(host_root, fake_run, yaml_mode):
    path = db_path(host_root)
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent("""\
        db_file: /var/lib/blockhost/vm-db.json
        bridge: old0
        ipv6_pool:
          prefix: "2001:db8:1::/120"
        gc_grace_days: 1
        """))
    assert wizard.finalize_db_config(cfg(gc_grace_days=3)) == (True, None)
    data = load_yaml(path.read_text())
    assert data["ipv6_pool"] == {"prefix": "2001:db8:1::/120"}
    assert data["db_file"] == "/var/lib/blockhost/vms.json"
    assert data["bridge"] == "br0" and data["gc_grace_days"] == 3
    # running again keeps it too (idempotent)
    assert wizard.finalize_db_config(cfg(gc_grace_days=3)) == (True, None)
    assert load_yaml(path.read_text())["ipv6_pool"] == {"prefix": "2001:db8:1::/120"}


def test_db_config_preserves_flow_style_ipv6_pool(host_root, fake_run, yaml_mode):
    path = db_path(host_root)
    path.parent.mkdir(parents=True)
    path.write_text("ipv6_pool: {start: 2, end: 254}\nbridge: br0\n")
    assert wizard.finalize_db_config(cfg()) == (True, None)
    assert load_yaml(path.read_text())["ipv6_pool"] == {"start": 2, "end": 254}


def test_db_config_without_previous_ipv6_pool(host_root, fake_run, yaml_mode):
    path = db_path(host_root)
    path.parent.mkdir(parents=True)
    path.write_text("bridge: br0\n")
    assert wizard.finalize_db_config(cfg()) == (True, None)
    assert "ipv6_pool" not in load_yaml(path.read_text())


def test_db_config_expands_short_host_numbers(host_root, fake_run):
    assert wizard.finalize_db_config(cfg(ip_start="2", ip_end="100", gateway="10.20.0.1")) == (True, None)
    pool = load_yaml(db_path(host_root).read_text())["ip_pool"]
    assert (pool["start"], pool["end"]) == ("10.20.0.2", "10.20.0.100")


def test_db_config_detects_missing_network_fields(host_root, fake_run):
    config = {"provisioner": {"storage_pool": "blockhost", "storage_path": "/var/lib/blockhost/vms",
                              "gc_grace_days": 5}}
    assert wizard.finalize_db_config(config) == (True, None)
    data = load_yaml(db_path(host_root).read_text())
    assert data["bridge"] == "br0" and data["gc_grace_days"] == 5
    assert data["ip_pool"] == EXPECTED_DB["ip_pool"]


def test_db_config_invalid_settings_fail(host_root, fake_run):
    ok, msg = wizard.finalize_db_config(cfg(gateway="10.20.0.200"))
    assert ok is False and "gateway" in msg
    assert not db_path(host_root).exists()


def test_db_config_replaces_atomically(host_root, fake_run, monkeypatch):
    path = db_path(host_root)
    path.parent.mkdir(parents=True)
    path.write_text("bridge: old\n")
    inode = path.stat().st_ino
    renames = []
    real = os.rename
    monkeypatch.setattr(wizard.os, "rename", lambda a, b: renames.append((a, b)) or real(a, b))
    assert wizard.finalize_db_config(cfg()) == (True, None)
    assert len(renames) == 1 and renames[0][1] == str(path)
    assert os.path.dirname(renames[0][0]) == str(path.parent)
    assert path.stat().st_ino != inode


# ------------------------------------------------------------------ yaml emitter

@pytest.mark.parametrize("value,expected", [
    ("br0", "br0"),
    ("/var/lib/blockhost/vms.json", "/var/lib/blockhost/vms.json"),
    ("10.20.0.1", '"10.20.0.1"'),
    ("10.20.0.0/24", '"10.20.0.0/24"'),
    ("2001:db8::/120", '"2001:db8::/120"'),
    ("yes", '"yes"'),
    ("No", '"No"'),
    ("off", '"off"'),
    ("null", '"null"'),
    ("~", '"~"'),
    ("0750", '"0750"'),
    ("", '""'),
    ('a"b\\c\n', '"a\\"b\\\\c\\n"'),
    ("key: value", '"key: value"'),
    ("- item", '"- item"'),
    ("#comment", '"#comment"'),
    (7, "7"),
    (True, "true"),
    (None, "null"),
])
def test_scalar_quoting(value, expected):
    assert yamlio.scalar(value) == expected


def test_plain_emitter_round_trips_through_pyyaml():
    yaml = pytest.importorskip("yaml")
    doc = {"a": "yes", "b": {"c": "10.0.0.1", "d": [1, "on", {"e": "f"}], "g": {}},
           "h": [], "i": "x\ty\u2028", "j": -3}
    assert yaml.safe_load(yamlio.dump_plain(doc)) == doc


# ------------------------------------------------------------------ template

def write_script(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_template_success(tmp_path, monkeypatch):
    script = write_script(tmp_path / "bt", 'echo "Downloading..."\necho "progress 50%" >&2\n'
                                            'echo "Template built successfully: /x.qcow2"\n')
    monkeypatch.setenv("BLOCKHOST_BUILD_TEMPLATE", str(script))
    assert wizard.finalize_template(cfg()) == (True, None)


def test_template_failure_returns_last_stderr_line(tmp_path, monkeypatch):
    script = write_script(tmp_path / "bt", 'echo "step 1"\necho "warming up" >&2\n'
                                            'echo "ERROR: no template packages found" >&2\nexit 1\n')
    monkeypatch.setenv("BLOCKHOST_BUILD_TEMPLATE", str(script))
    ok, msg = wizard.finalize_template(cfg())
    assert ok is False
    assert msg.endswith("ERROR: no template packages found")


def test_template_failure_without_output(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCKHOST_BUILD_TEMPLATE", str(write_script(tmp_path / "bt", "exit 3\n")))
    ok, msg = wizard.finalize_template(cfg())
    assert ok is False and "exit status 3" in msg


def test_template_uses_30_minute_timeout(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setenv("BLOCKHOST_BUILD_TEMPLATE", "/opt/bt")
    monkeypatch.setattr(wizard, "run", lambda cmd, timeout=120: seen.append((cmd, timeout)) or (124, "", "t"))
    ok, msg = wizard.finalize_template(cfg())
    assert seen == [(["/opt/bt"], 1800)]
    assert ok is False and "timed out" in msg


def test_template_missing_command(monkeypatch, tmp_path):
    monkeypatch.delenv("BLOCKHOST_BUILD_TEMPLATE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    ok, msg = wizard.finalize_template(cfg())
    assert ok is False and "not found" in msg


def test_template_found_on_path(monkeypatch, tmp_path):
    write_script(tmp_path / "blockhost-build-template", "echo ok\n")
    monkeypatch.delenv("BLOCKHOST_BUILD_TEMPLATE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    assert wizard.finalize_template(cfg()) == (True, None)


# ------------------------------------------------------------------ run helper

def test_run_helper_contract(tmp_path):
    rc, out, err = wizard.run([sys.executable, "-c",
                               "import sys; print(' hi '); print(' oops ', file=sys.stderr); sys.exit(4)"])
    assert (rc, out, err) == (4, "hi", "oops")
    assert wizard.run([str(tmp_path / "nope")])[0] == 127
    assert wizard.run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2)[0] == 124
    with pytest.raises(TypeError):
        wizard.run("echo hi")
