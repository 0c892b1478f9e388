"""Validation of the Proxmox VE wizard settings.

The rules are the ones the Rust backend applies when it reads them back
(lib/src/provider/proxmox/config.rs and token.rs), so a setting the wizard
accepts is one the executables accept:

* ``api_url``: an ``https://`` URL (the token must not travel in clear);
* ``token``: one ``USER@REALM!TOKENID=SECRET``, no blanks, no ``=`` in the secret;
* exactly one of ``tls_fingerprint`` (SHA-256, 32 hex pairs separated by
  ``:``) and ``ca_pem`` (the cluster's CA certificate, PEM);
* ``node``, ``storage``, ``iso_storage``: Proxmox VE node and storage ids;
* ``template_vmid`` and the ``vmid_start``-``vmid_end`` range new VMs are
  numbered from, the template outside it;
* the bridge, the VMs' IPv4 pool and the grace period (:mod:`.ipv4pool`).

:func:`validate_settings` returns ``(clean, errors)``: ``clean`` holds the
normalised session dict (keys :data:`SESSION_KEYS`) and is only meaningful
when ``errors`` (field -> message) is empty.
"""

import re
import ssl

from . import ipv4pool

DEFAULT_URL = "https://127.0.0.1:8006"
DEFAULT_STORAGE = "local-lvm"
DEFAULT_ISO_STORAGE = "local"
DEFAULT_BRIDGE = "vmbr0"
DEFAULT_TEMPLATE_VMID = 9001
DEFAULT_VMID_START, DEFAULT_VMID_END = 100, 999
MIN_VMID, MAX_VMID = 100, 999_999_999

SESSION_KEYS = (
    "api_url",
    "token",
    "tls_fingerprint",
    "ca_pem",
    "node",
    "storage",
    "iso_storage",
    "bridge",
    "template_vmid",
    "vmid_start",
    "vmid_end",
) + ipv4pool.SHARED_KEYS

URL_RE = re.compile(r"https://[A-Za-z0-9.\-\[\]:]+(?::[0-9]{1,5})?/?", re.ASCII)
# No blanks or control characters anywhere, as token.rs; no separator inside a part.
TOKEN_PART_RE = re.compile(r"[^\s\x00-\x1f\x7f=!@]+", re.ASCII)
SECRET_RE = re.compile(r"[^\s\x00-\x1f\x7f=]+", re.ASCII)
FINGERPRINT_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31}", re.ASCII)
NODE_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
STORAGE_RE = re.compile(r"[A-Za-z][A-Za-z0-9._-]*[A-Za-z0-9]", re.ASCII)
IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}", re.ASCII)
NUMBER_RE = re.compile(r"[0-9]{1,9}", re.ASCII)


def parse_token(line):
    """``(token_id, secret)`` of ``USER@REALM!TOKENID=SECRET``, else None."""
    token_id, sep, secret = line.partition("=")
    user, sep2, name = token_id.partition("!")
    user_name, sep3, realm = user.partition("@")
    if not (sep and sep2 and sep3 and SECRET_RE.fullmatch(secret)):
        return None
    if not all(TOKEN_PART_RE.fullmatch(part) for part in (user_name, realm, name)):
        return None
    return token_id, secret


def _check_url(value):
    if not value:
        return None, "API URL is required."
    if not URL_RE.fullmatch(value):
        return None, "API URL must be an https:// URL such as %s." % DEFAULT_URL
    return value.rstrip("/"), None


def _check_token(value):
    if not value:
        return None, "API token is required."
    if parse_token(value) is None:
        return None, "API token must be one line USER@REALM!TOKENID=SECRET (e.g. root@pam!blockhost=...)."
    return value, None


def _check_node(value):
    if not value:
        return None, "Node is required (the Proxmox VE node new VMs go to)."
    if not NODE_RE.fullmatch(value):
        return None, "Node must be a host name of letters, digits and '-'."
    return value, None


def _storage_check(label):
    def check(value):
        if not value:
            return None, "%s is required." % label
        if not STORAGE_RE.fullmatch(value):
            return None, "%s must be a Proxmox VE storage id (letters, digits, '.', '_', '-')." % label
        return value, None
    return check


def _check_bridge(value):
    if not value:
        return None, "Bridge is required."
    if not IFNAME_RE.fullmatch(value) or value.startswith("-"):
        return None, "Bridge must be an interface name of 1-15 letters, digits, '.', '_' or '-'."
    return value, None


def _check_trust(fingerprint, ca_pem):
    """``(fields, errors)`` for the two TLS settings; exactly one is set."""
    if fingerprint and ca_pem:
        return {}, {"tls_fingerprint": "Give either the certificate fingerprint or the CA certificate, not both."}
    if not fingerprint and not ca_pem:
        return {}, {"tls_fingerprint": "The API's certificate must be verifiable: give its SHA-256 fingerprint "
                                       "(pvenode cert info) or the cluster's CA certificate (/etc/pve/pve-root-ca.pem)."}
    if fingerprint:
        if not FINGERPRINT_RE.fullmatch(fingerprint):
            return {}, {"tls_fingerprint": "Fingerprint must be 32 hex pairs separated by ':'."}
        return {"tls_fingerprint": fingerprint.upper(), "ca_pem": ""}, {}
    pem = ca_pem.replace("\r\n", "\n") + "\n"
    try:
        ssl.PEM_cert_to_DER_cert(pem)
    except ValueError:
        return {}, {"ca_pem": "CA certificate must be one PEM certificate (-----BEGIN CERTIFICATE----- ...)."}
    return {"tls_fingerprint": "", "ca_pem": pem}, {}


def _number(raw, key, label, low, high):
    value = ipv4pool.text(raw, key)
    if not value or not NUMBER_RE.fullmatch(value) or not low <= int(value) <= high:
        return None, "%s must be a whole number from %d to %d." % (label, low, high)
    return int(value), None


def _check_vmids(raw):
    clean, errors = {}, {}
    for key, label in (("template_vmid", "Template VMID"), ("vmid_start", "First VMID"), ("vmid_end", "Last VMID")):
        value, err = _number(raw, key, label, MIN_VMID, MAX_VMID)
        if err:
            errors[key] = err
        else:
            clean[key] = value
    if not errors:
        if clean["vmid_start"] > clean["vmid_end"]:
            errors["vmid_end"] = "Last VMID %d is below the first, %d." % (clean["vmid_end"], clean["vmid_start"])
        elif clean["vmid_start"] <= clean["template_vmid"] <= clean["vmid_end"]:
            errors["template_vmid"] = "Template VMID %d lies inside the range new VMs are numbered from." % clean["template_vmid"]
    return clean, errors


def validate_settings(raw, allow_short_hosts=False):
    """Validate a mapping of wizard settings; return ``(clean, errors)``."""
    if not hasattr(raw, "get"):
        return {}, {"_form": "Settings must be a mapping."}
    clean, errors = {}, {}
    checks = (
        ("api_url", _check_url),
        ("token", _check_token),
        ("node", _check_node),
        ("storage", _storage_check("Storage")),
        ("iso_storage", _storage_check("ISO storage")),
        ("bridge", _check_bridge),
    )
    for key, check in checks:
        value, err = check(ipv4pool.text(raw, key) or "")
        if err:
            errors[key] = err
        else:
            clean[key] = value
    ca_pem = raw.get("ca_pem")
    for part in (
        _check_trust(ipv4pool.text(raw, "tls_fingerprint") or "", ca_pem.strip() if isinstance(ca_pem, str) else ""),
        _check_vmids(raw),
        ipv4pool.validate_shared(raw, allow_short_hosts),
    ):
        clean.update(part[0])
        errors.update(part[1])
    return clean, errors
