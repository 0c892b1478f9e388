"""What the Proxmox VE plugin's tests share: valid settings and a real CA certificate."""

import subprocess

import pytest

FINGERPRINT = ":".join(["AB", "CD", "EF", "01"] * 8)
TOKEN = "root@pam!blockhost=5f0c2a77-3c1e-4b8e-9a51-0d6f4e2b9c10"

# As the form posts them (strings).
FORM = {
    "api_url": "https://pve1.example.net:8006",
    "token": TOKEN,
    "tls_fingerprint": FINGERPRINT,
    "ca_pem": "",
    "node": "pve1",
    "storage": "local-lvm",
    "iso_storage": "local",
    "bridge": "vmbr0",
    "template_vmid": "9001",
    "vmid_start": "100",
    "vmid_end": "999",
    "ip_network": "10.30.0.0/24",
    "ip_start": "10.30.0.100",
    "ip_end": "10.30.0.199",
    "gateway": "10.30.0.1",
    "gc_grace_days": "7",
}

# As validate_settings leaves them in the session.
SESSION = dict(FORM, template_vmid=9001, vmid_start=100, vmid_end=999, gc_grace_days=7)


@pytest.fixture(scope="session")
def ca_pem(tmp_path_factory):
    """A self-signed CA certificate made with openssl (nothing leaves the machine)."""
    d = tmp_path_factory.mktemp("ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(d / "key.pem"), "-out", str(d / "ca.pem"), "-days", "2", "-subj", "/CN=Proxmox Test CA"],
        check=True, capture_output=True,
    )
    return (d / "ca.pem").read_text()
