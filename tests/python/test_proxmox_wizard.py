"""The /wizard/proxmox page (real Flask), the settings' validation and the summary hooks."""

import pytest
from flask import render_template_string

from conftest import build_app
from proxmox_common import FINGERPRINT, FORM, SESSION, TOKEN, ca_pem  # noqa: F401 (fixture)
from blockhost.provisioner_proxmox import settings, wizard


@pytest.fixture
def app():
    return build_app(wizard.blueprint, "wizard_libvirt_prev")


@pytest.fixture
def client(app):
    return app.test_client()


def test_blueprint_identity():
    assert wizard.blueprint.name == "provisioner_proxmox"
    assert wizard.wizard_proxmox.__name__ == "wizard_proxmox"


def test_get_renders_the_defaults(client):
    resp = client.get("/wizard/proxmox")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "step:proxmox" in html
    for name, value in (("api_url", "https://127.0.0.1:8006"), ("storage", "local-lvm"), ("iso_storage", "local"),
                        ("bridge", "vmbr0"), ("template_vmid", "9001"), ("vmid_start", "100"), ("vmid_end", "999"),
                        ("gc_grace_days", "7")):
        assert 'name="%s" value="%s"' % (name, value) in html, name


def test_post_stores_the_session_and_goes_on(client):
    resp = client.post("/wizard/proxmox", data=FORM)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/connectivity")
    with client.session_transaction() as sess:
        assert sess["proxmox"] == SESSION


def test_the_token_is_never_sent_back_and_a_blank_one_keeps_the_saved(client):
    client.post("/wizard/proxmox", data=FORM)
    html = client.get("/wizard/proxmox").get_data(as_text=True)
    assert TOKEN.split("=", 1)[1] not in html and 'name="node" value="pve1"' in html
    bad = client.post("/wizard/proxmox", data=dict(FORM, node="-bad")).get_data(as_text=True)
    assert TOKEN.split("=", 1)[1] not in bad
    resp = client.post("/wizard/proxmox", data=dict(FORM, token="", node="pve2"))
    assert resp.status_code == 302
    with client.session_transaction() as sess:
        assert sess["proxmox"]["token"] == TOKEN and sess["proxmox"]["node"] == "pve2"


@pytest.mark.parametrize("field, value, message", [
    ("api_url", "http://pve1:8006", "https://"),
    ("api_url", "", "API URL is required"),
    ("token", "root@pam!blockhost", "USER@REALM!TOKENID=SECRET"),
    ("token", "root@pam!blockhost=a=b", "USER@REALM!TOKENID=SECRET"),
    ("token", "root!blockhost=secret", "USER@REALM!TOKENID=SECRET"),
    ("token", "root@pam!blockhost=sec\x01ret", "USER@REALM!TOKENID=SECRET"),
    ("tls_fingerprint", "AB:CD", "32 hex pairs"),
    ("tls_fingerprint", "", "must be verifiable"),
    ("node", "", "Node is required"),
    ("storage", "local lvm", "storage id"),
    ("iso_storage", "", "ISO storage is required"),
    ("bridge", "-vmbr0", "interface name"),
    ("template_vmid", "99", "from 100 to 999999999"),
    ("template_vmid", "500", "inside the range"),
    ("vmid_end", "50", "from 100"),
    ("ip_start", "10.31.0.5", "outside the network"),
    ("gc_grace_days", "400", "between 0 and 365"),
])
def test_post_refuses_what_the_executables_would(client, field, value, message):
    resp = client.post("/wizard/proxmox", data=dict(FORM, **{field: value}))
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert 'id="%s-error"' % field in html and message in html
    with client.session_transaction() as sess:
        assert "proxmox" not in sess


def test_vmid_range_order():
    _, errors = settings.validate_settings(dict(FORM, vmid_start="900", vmid_end="800"))
    assert errors == {"vmid_end": "Last VMID 800 is below the first, 900."}


def test_either_fingerprint_or_ca(ca_pem):  # noqa: F811
    clean, errors = settings.validate_settings(dict(FORM, tls_fingerprint="", ca_pem=ca_pem.replace("\n", "\r\n")))
    assert errors == {} and clean["ca_pem"] == ca_pem and clean["tls_fingerprint"] == ""
    _, errors = settings.validate_settings(dict(FORM, ca_pem=ca_pem))
    assert "not both" in errors["tls_fingerprint"]
    _, errors = settings.validate_settings(dict(FORM, tls_fingerprint="", ca_pem="-----BEGIN CERTIFICATE-----\nnot base64!\n"))
    assert "one PEM certificate" in errors["ca_pem"]
    clean, _ = settings.validate_settings(dict(FORM, tls_fingerprint=FINGERPRINT.lower()))
    assert clean["tls_fingerprint"] == FINGERPRINT


def test_no_next_step_is_an_installer_error():
    resp = build_app(wizard.blueprint, "wizard_prev", next_steps=()).test_client().post("/wizard/proxmox", data=FORM)
    assert resp.status_code == 500 and "no next wizard step" in resp.get_data(as_text=True)


def test_summary_never_shows_the_secret(app):
    data = wizard.get_summary_data({"proxmox": SESSION})
    assert TOKEN.split("=", 1)[1] not in repr(data)
    assert data["token_id"] == "root@pam!blockhost" and data["vmid_range"] == "100 - 999"
    assert data["ip_range"] == "10.30.0.100 - 10.30.0.199" and data["tls"] == FINGERPRINT
    assert wizard.get_summary_data(SESSION)["node"] == "pve1"
    assert wizard.get_summary_data({}) == {} and wizard.get_summary_data(None) == {}
    with app.test_request_context():
        html = render_template_string("{% include tpl %}", tpl=wizard.get_summary_template(), provisioner_summary=data)
        assert "pve1" in html and "root@pam!blockhost" in html and TOKEN.split("=", 1)[1] not in html
        empty = render_template_string("{% include tpl %}", tpl=wizard.get_summary_template())
        assert "not been completed" in empty


def test_ui_params():
    assert "local-lvm" in wizard.get_ui_params()["storage_hint"]
    assert "ceph of pve3" in wizard.get_ui_params({"proxmox": dict(SESSION, storage="ceph", node="pve3")})["storage_hint"]
