"""Summary and UI hooks of the wizard plugin."""

from flask import render_template_string

from blockhost.provisioner_libvirt import wizard

DATA = {
    "storage_pool": "blockhost",
    "storage_path": "/var/lib/blockhost/vms",
    "bridge": "br0",
    "ip_network": "10.20.0.0/24",
    "ip_start": "10.20.0.128",
    "ip_end": "10.20.0.254",
    "gateway": "10.20.0.1",
    "gc_grace_days": 0,
}


def test_summary_data_from_session():
    data = wizard.get_summary_data({"libvirt": DATA, "other": 1})
    assert data["storage_pool"] == "blockhost"
    assert data["ip_range"] == "10.20.0.128 - 10.20.0.254"
    assert data["gc_grace_days"] == 0
    for key in ("storage_path", "bridge", "ip_network", "gateway"):
        assert data[key] == DATA[key]


def test_summary_data_accepts_provisioner_dict():
    assert wizard.get_summary_data(DATA)["bridge"] == "br0"


def test_summary_data_missing_key():
    assert wizard.get_summary_data({}) == {}
    assert wizard.get_summary_data({"libvirt": None}) == {}
    assert wizard.get_summary_data(None) == {}


def test_summary_template_renders(make_app):
    app = make_app()
    assert wizard.get_summary_template() == "provisioner_libvirt/summary.html"
    with app.test_request_context():
        html = render_template_string(
            "{% include tpl %}", tpl=wizard.get_summary_template(),
            provisioner_summary=wizard.get_summary_data({"libvirt": DATA}))
        assert "10.20.0.128 - 10.20.0.254" in html
        assert "/var/lib/blockhost/vms" in html and "br0" in html
        assert ">0<" in html.replace(" ", "")   # grace 0 is shown
        empty = render_template_string("{% include tpl %}", tpl=wizard.get_summary_template(),
                                       provisioner_summary={})
        assert "not been completed" in empty
        missing = render_template_string("{% include tpl %}", tpl=wizard.get_summary_template())
        assert "not been completed" in missing


def test_ui_params():
    params = wizard.get_ui_params({})
    assert isinstance(params, dict) and "/var/lib/blockhost/vms" in params["storage_hint"]
    custom = wizard.get_ui_params({"libvirt": dict(DATA, storage_path="/var/lib/blockhost/p2")})
    assert "/var/lib/blockhost/p2" in custom["storage_hint"]
    assert "storage_hint" in wizard.get_ui_params()
