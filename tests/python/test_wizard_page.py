"""The /wizard/libvirt page: detected defaults, validation, session, redirects."""

import ipaddress

import pytest

from conftest import addr_argv, ip_addr_json, make_iface, route_argv
from blockhost.provisioner_libvirt import hostinfo, wizard

VALID = {
    "storage_pool": "blockhost",
    "storage_path": "/var/lib/blockhost/vms",
    "bridge": "br0",
    "ip_network": "10.20.0.0/24",
    "ip_start": "10.20.0.128",
    "ip_end": "10.20.0.254",
    "gateway": "10.20.0.1",
    "gc_grace_days": "7",
}

EXPECTED_SESSION = {
    "storage_pool": "blockhost",
    "storage_path": "/var/lib/blockhost/vms",
    "bridge": "br0",
    "ip_network": "10.20.0.0/24",
    "ip_start": "10.20.0.128",
    "ip_end": "10.20.0.254",
    "gateway": "10.20.0.1",
    "gc_grace_days": 7,
}

SENTINEL = {"sentinel": True}


def _value(html, name, value):
    return 'name="%s" value="%s"' % (name, value) in html


def test_blueprint_identity():
    assert wizard.blueprint.name == "provisioner_libvirt"
    assert wizard.wizard_libvirt.__name__ == "wizard_libvirt"


def test_get_renders_detected_defaults(client, fake_run):
    resp = client.get("/wizard/libvirt")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "step:libvirt" in html
    for key, value in EXPECTED_SESSION.items():
        assert _value(html, key, value), key
    assert "10.20.0.5/24" in html
    assert "Back</a>" not in html
    assert addr_argv("br0") in fake_run.calls
    assert route_argv("br0") in fake_run.calls


def test_get_back_link_when_wizard_nav_available(make_app):
    html = make_app(wizard_nav=True).test_client().get("/wizard/libvirt").get_data(as_text=True)
    assert 'href="/storage"' in html and "Back</a>" in html


def test_get_never_uses_libvirt_default_network(client, fake_run):
    client.get("/wizard/libvirt")
    assert not any("net-dumpxml" in c or "net-info" in c for c in fake_run.calls)
    assert not any(c[0] == "virsh" for c in fake_run.calls)


def test_get_detects_bridge_from_sysfs_skipping_virbr(client, host_root, fake_run):
    (host_root / "run" / "blockhost" / "bridge").unlink()
    make_iface(host_root, "abr0", bridge=True)      # no IPv4 -> skipped
    make_iface(host_root, "lan1", bridge=True)      # has IPv4 -> chosen
    make_iface(host_root, "aaa-virbr", bridge=False)
    make_iface(host_root, "virbr0", bridge=True)    # libvirt NAT -> never chosen
    fake_run.set(addr_argv("abr0"), out=ip_addr_json("abr0"))
    fake_run.set(addr_argv("br0"), out=ip_addr_json("br0", "10.9.9.9/32", scope="host"))
    fake_run.set(addr_argv("virbr0"), out=ip_addr_json("virbr0", "192.168.122.1/24"))
    fake_run.set(addr_argv("lan1"), out=ip_addr_json("lan1", "172.16.5.200/16"))
    fake_run.set(route_argv("lan1"), out="[]")
    html = client.get("/wizard/libvirt").get_data(as_text=True)
    assert _value(html, "bridge", "lan1")
    assert _value(html, "ip_network", "172.16.0.0/16")
    assert _value(html, "gateway", "172.16.5.200")   # no default route: host is the gateway
    # /16: range stays inside the host's /24 and avoids the host address
    assert _value(html, "ip_start", "172.16.5.128")
    assert _value(html, "ip_end", "172.16.5.199")
    assert addr_argv("virbr0") not in fake_run.calls


def test_get_without_bridge_shows_notice(client, host_root, fake_run):
    (host_root / "run" / "blockhost" / "bridge").unlink()
    fake_run.set(addr_argv("br0"), out=ip_addr_json("br0"))
    resp = client.get("/wizard/libvirt")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "No bridge with an IPv4 address" in html
    assert _value(html, "bridge", "br0") and _value(html, "ip_network", "")


def test_get_when_ip_command_fails(client, fake_run):
    fake_run.set(addr_argv("br0"), rc=1, err="Device does not exist")
    html = client.get("/wizard/libvirt").get_data(as_text=True)
    assert "has no global IPv4 address" in html


def test_post_valid_redirects_to_connectivity(client):
    resp = client.post("/wizard/libvirt", data=VALID)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/connectivity")
    with client.session_transaction() as sess:
        assert sess["libvirt"] == EXPECTED_SESSION
        assert isinstance(sess["libvirt"]["gc_grace_days"], int)


def test_post_strips_whitespace_and_trailing_slash(client):
    data = dict(VALID, storage_path="/var/lib/blockhost/vms/", bridge=" br0 ", gc_grace_days=" 0")
    assert client.post("/wizard/libvirt", data=data).status_code == 302
    with client.session_transaction() as sess:
        assert sess["libvirt"]["storage_path"] == "/var/lib/blockhost/vms"
        assert sess["libvirt"]["bridge"] == "br0"
        assert sess["libvirt"]["gc_grace_days"] == 0


def test_get_after_post_shows_saved_values(client):
    client.post("/wizard/libvirt", data=dict(VALID, ip_start="10.20.0.50", ip_end="10.20.0.60"))
    html = client.get("/wizard/libvirt").get_data(as_text=True)
    assert _value(html, "ip_start", "10.20.0.50") and _value(html, "ip_end", "10.20.0.60")


def test_post_redirects_to_ipv6_without_connectivity(make_app):
    client = make_app(next_steps=("wizard_ipv6",)).test_client()
    resp = client.post("/wizard/libvirt", data=VALID)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/ipv6")


def test_post_prefers_connectivity_over_ipv6(make_app):
    client = make_app(next_steps=("wizard_ipv6", "wizard_connectivity")).test_client()
    resp = client.post("/wizard/libvirt", data=VALID)
    assert resp.headers["Location"].endswith("/connectivity")


def test_post_without_next_step_is_500(make_app):
    client = make_app(next_steps=()).test_client()
    resp = client.post("/wizard/libvirt", data=VALID)
    assert resp.status_code == 500
    assert "wizard_connectivity" in resp.get_data(as_text=True)
    with client.session_transaction() as sess:
        assert "libvirt" not in sess


BAD = [
    ("ip_network", "10.20.0.0", "IPv4 CIDR"),
    ("ip_network", "10.20.0.0/33", "not a valid"),
    ("ip_network", "10.20.0.5/24", "did you mean 10.20.0.0/24"),
    ("ip_network", "300.1.1.0/24", "not a valid"),
    ("ip_network", "10.20.0.0/31", "prefix length"),
    ("ip_network", "16.0.0.0/4", "prefix length"),
    ("ip_network", "2001:db8::/64", "IPv4 CIDR"),
    ("ip_network", "10.20.0.0/24; rm -rf /", "IPv4 CIDR"),
    ("ip_network", "", "required"),
    ("ip_network", "010.20.0.0/24", "not a valid"),
    ("ip_network", "１0.20.0.0/24", "IPv4 CIDR"),
    ("ip_start", "10.21.0.10", "outside the network"),
    ("ip_start", "10.20.0.0", "network address"),
    ("ip_start", "10.20.0", "IPv4 address"),
    ("ip_start", "", "required"),
    ("ip_end", "10.20.0.255", "broadcast address"),
    ("ip_end", "10.20.0.100", "before range start"),
    ("ip_end", "999.20.0.1", "not a valid IPv4"),
    ("gateway", "10.20.0.200", "inside the VM address range"),
    ("gateway", "10.20.1.1", "outside the network"),
    ("gateway", "10.20.0.255", "broadcast"),
    ("gateway", "$(id)", "IPv4 address"),
    ("storage_pool", "Blockhost", "lowercase"),
    ("storage_pool", "pool name", "lowercase"),
    ("storage_pool", "a" * 65, "lowercase"),
    ("storage_pool", "pool;rm", "lowercase"),
    ("storage_pool", "", "required"),
    ("storage_pool", "-pool", "not starting with"),
    ("storage_path", "/var/lib/blockhost/../etc", "normalised"),
    ("storage_path", "/var/lib/blockhost/./vms", "normalised"),
    ("storage_path", "/var/lib/blockhost//vms", "normalised"),
    ("storage_path", "/var/lib/blockhost", "under /var/lib/blockhost/"),
    ("storage_path", "/var/lib/blockhostx/vms", "under /var/lib/blockhost/"),
    ("storage_path", "/etc/blockhost", "under /var/lib/blockhost/"),
    ("storage_path", "var/lib/blockhost/vms", "absolute path"),
    ("storage_path", "/var/lib/blockhost/vms dir", "absolute path"),
    ("storage_path", "/var/lib/blockhost/templates", "reserved"),
    ("gc_grace_days", "-1", "between 0 and 365"),
    ("gc_grace_days", "9999", "between 0 and 365"),
    ("gc_grace_days", "366", "between 0 and 365"),
    ("gc_grace_days", "abc", "whole number"),
    ("gc_grace_days", "1.5", "whole number"),
    ("gc_grace_days", "", "whole number"),
    ("bridge", "br 0", "interface name"),
    ("bridge", "br0;reboot", "interface name"),
    ("bridge", "-br0", "interface name"),
    ("bridge", "averyveryverylongbridge", "interface name"),
    ("bridge", "", "required"),
    ("bridge", "virbr0", "libvirt NAT"),
    ("bridge", "eth0", "not a bridge"),
    ("bridge", "br9", "not a bridge"),
]


@pytest.mark.parametrize("field,value,message", BAD, ids=[f"{f}={v!r}"[:40] for f, v, _ in BAD])
def test_post_invalid_is_400_and_session_untouched(client, field, value, message):
    with client.session_transaction() as sess:
        sess["libvirt"] = dict(SENTINEL)
    resp = client.post("/wizard/libvirt", data=dict(VALID, **{field: value}))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert message in html
    assert 'id="%s-error"' % field in html
    with client.session_transaction() as sess:
        assert sess["libvirt"] == SENTINEL


def test_post_missing_fields_reports_each(client):
    resp = client.post("/wizard/libvirt", data={})
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    for field in EXPECTED_SESSION:
        assert 'id="%s-error"' % field in html, field


def test_post_range_containing_host_address_rejected(client):
    resp = client.post("/wizard/libvirt", data=dict(VALID, ip_start="10.20.0.2"))
    assert resp.status_code == 400
    assert "own address 10.20.0.5" in resp.get_data(as_text=True)


def test_post_invalid_form_escapes_values(client):
    resp = client.post("/wizard/libvirt", data=dict(VALID, bridge='"><script>x</script>'))
    assert resp.status_code == 400
    assert "<script>x</script>" not in resp.get_data(as_text=True)


@pytest.mark.parametrize("cidr,gw,host,expected", [
    ("10.20.0.0/24", "10.20.0.1", "10.20.0.5", ("10.20.0.128", "10.20.0.254")),
    ("10.20.0.0/24", "10.20.0.1", "10.20.0.200", ("10.20.0.128", "10.20.0.199")),
    ("10.20.0.0/24", "10.20.0.254", "10.20.0.254", ("10.20.0.128", "10.20.0.253")),
    ("192.168.1.0/28", "192.168.1.1", "192.168.1.2", ("192.168.1.8", "192.168.1.14")),
    ("192.168.1.0/30", "192.168.1.1", "192.168.1.2", (None, None)),
    ("192.168.1.0/29", "192.168.1.1", "192.168.1.4", ("192.168.1.5", "192.168.1.6")),
    ("10.0.0.0/8", "10.0.0.1", "10.1.2.3", ("10.1.2.128", "10.1.2.254")),
])
def test_propose_range(cidr, gw, host, expected):
    net = ipaddress.IPv4Network(cidr)
    start, end = hostinfo.propose_range(net, ipaddress.IPv4Address(gw), ipaddress.IPv4Address(host))
    assert (str(start) if start else None, str(end) if end else None) == expected
    if start:
        for addr in (net.network_address, net.broadcast_address,
                     ipaddress.IPv4Address(gw), ipaddress.IPv4Address(host)):
            assert not start <= addr <= end
