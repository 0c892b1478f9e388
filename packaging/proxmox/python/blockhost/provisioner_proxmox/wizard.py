"""Installer wizard plugin for the Proxmox VE provisioner.

Loaded by the BlockHost web installer through the manifest
(``setup.wizard_module``, manifest ``name`` "proxmox", session key
``proxmox``). Exports used by the installer:

``blueprint``
    Flask blueprint ``provisioner_proxmox`` with the view ``wizard_proxmox``
    at ``/wizard/proxmox`` (GET shows the form, POST validates and stores
    ``session["proxmox"]``).
``get_finalization_steps()``
    ``[(id, label, func[, hint]), ...]`` for ids ``token``, ``tls``,
    ``db_config``, ``api``, ``template``; each ``func(config)`` receives the
    installer config whose ``config["provisioner"]`` is the session dict, and
    returns ``(True, None)`` or ``(False, message)`` -- it never raises.
``get_summary_data(session)``, ``get_summary_template()``, ``get_ui_params(session)``
    Summary page support; the fragment reads ``provisioner_summary``.

Unlike upstream's plugin (which created the token with ``pveum``, wrote
Terraform files and an SSH key, and made the bridge with ``pvesh`` on the
local node), the Proxmox VE node or cluster may be remote and is reached only
through its API: the operator gives the API token, how to verify the API's
certificate, and the node, storages and bridge to use; the ``api`` step proves
them with ``blockhost-provisioner-detect`` (the executables' own client: the
URL answers, the certificate verifies, the token is accepted).

Session dict: :data:`.settings.SESSION_KEYS`. The token travels in the
installer's session, like its other settings, to the ``token`` step; the page
never renders it back and the summary shows only its id.
All host paths go through ``BLOCKHOST_ROOT`` (:mod:`.hostio`); all commands
are argument lists executed through the module-level :func:`run`.
"""

import logging
import os
import shutil

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from . import hostio, settings, yamlio
from .hostio import run

log = logging.getLogger("blockhost.provisioner_proxmox")

SESSION_KEY = "proxmox"
TOKEN_FILE = "/etc/blockhost/pve-token"
CA_FILE = "/etc/blockhost/pve-root-ca.pem"
DB_YAML = "/etc/blockhost/db.yaml"
DB_FILE = "/var/lib/blockhost/vms.json"
DEFAULT_EXPIRY_DAYS = 30
# The modes lib/src/provider/proxmox/token.rs expects (it refuses a token
# readable by every user), and db.yaml's as the other provisioners write it.
TOKEN_MODE = 0o640
CA_MODE = 0o644
DB_YAML_MODE = 0o640
DETECT = "blockhost-provisioner-detect"
DETECT_TIMEOUT = 60
TEMPLATE_HINT = "(this may take several minutes)"

blueprint = Blueprint("provisioner_proxmox", __name__, template_folder="templates")

DEFAULTS = {
    "api_url": settings.DEFAULT_URL,
    "token": "",
    "tls_fingerprint": "",
    "ca_pem": "",
    "node": "",
    "storage": settings.DEFAULT_STORAGE,
    "iso_storage": settings.DEFAULT_ISO_STORAGE,
    "bridge": settings.DEFAULT_BRIDGE,
    "template_vmid": settings.DEFAULT_TEMPLATE_VMID,
    "vmid_start": settings.DEFAULT_VMID_START,
    "vmid_end": settings.DEFAULT_VMID_END,
    "ip_network": "",
    "ip_start": "",
    "ip_end": "",
    "gateway": "",
    "gc_grace_days": settings.DEFAULT_GC_GRACE_DAYS,
}


def _runner(cmd, timeout=120):
    # late binding so a monkeypatched module-level ``run`` is honoured
    return run(cmd, timeout=timeout)


# --------------------------------------------------------------------------
# wizard page
# --------------------------------------------------------------------------

def _next_endpoint():
    for endpoint in ("wizard_connectivity", "wizard_ipv6"):
        if endpoint in current_app.view_functions:
            return endpoint
    return None


def _render(values, errors, status=200):
    # the token is never sent back to the browser
    shown = dict(values, token="")
    return render_template("provisioner_proxmox/wizard.html", values=shown, errors=errors), status


def _saved():
    saved = session.get(SESSION_KEY)
    return saved if isinstance(saved, dict) else {}


@blueprint.route("/wizard/proxmox", methods=["GET", "POST"])
def wizard_proxmox():
    """Provisioner configuration page (GET form, POST validate + store)."""
    if request.method == "GET":
        values = dict(DEFAULTS)
        values.update({k: v for k, v in _saved().items() if k in DEFAULTS})
        return _render(values, {})

    submitted = {k: request.form.get(k, "") for k in settings.SESSION_KEYS}
    if not submitted["token"].strip() and _saved().get("token"):
        submitted["token"] = _saved()["token"]  # left blank: keep the one given before
    clean, errors = settings.validate_settings(submitted)
    if errors:
        return _render(submitted, errors, status=400)
    endpoint = _next_endpoint()
    if endpoint is None:
        log.error("installer has neither wizard_connectivity nor wizard_ipv6")
        return (
            "Installer error: no next wizard step (wizard_connectivity or wizard_ipv6) is registered.",
            500,
            {"Content-Type": "text/plain; charset=utf-8"},
        )
    session[SESSION_KEY] = clean
    session.modified = True
    return redirect(url_for(endpoint))


# --------------------------------------------------------------------------
# finalization steps
# --------------------------------------------------------------------------

def _settings(config):
    """The validated session dict, or ``(None, message)``."""
    prov = config.get("provisioner") if isinstance(config, dict) else None
    clean, errors = settings.validate_settings(prov if isinstance(prov, dict) else {}, allow_short_hosts=True)
    if errors:
        return None, "Invalid provisioner settings: " + "; ".join("%s: %s" % (k, errors[k]) for k in sorted(errors))
    return clean, None


def _token(config):
    clean, err = _settings(config)
    if err:
        return False, err
    path = hostio.host_path(TOKEN_FILE)
    hostio.write_atomic(path, clean["token"], TOKEN_MODE, hostio.blockhost_gid())
    log.info("wrote the API token %s to %s", settings.parse_token(clean["token"])[0], path)
    return True, None


def _tls(config):
    clean, err = _settings(config)
    if err:
        return False, err
    path = hostio.host_path(CA_FILE)
    if clean["ca_pem"]:
        hostio.write_atomic(path, clean["ca_pem"], CA_MODE, None)
        log.info("wrote the CA certificate to %s", path)
    else:
        log.info("the API's certificate is pinned by its fingerprint; no CA file")
    return True, None


def _previous_db_yaml(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read existing %s: %s", path, exc)
        return ""


def _db_config(config):
    clean, err = _settings(config)
    if err:
        return False, err
    proxmox = {
        "url": clean["api_url"],
        "node": clean["node"],
        "storage": clean["storage"],
        "iso_storage": clean["iso_storage"],
        "template_vmid": clean["template_vmid"],
        "token_file": TOKEN_FILE,
    }
    if clean["ca_pem"]:
        proxmox["ca_file"] = CA_FILE
    else:
        proxmox["tls_fingerprint"] = clean["tls_fingerprint"]
    doc = {
        "db_file": DB_FILE,
        "bridge": clean["bridge"],
        "gc_grace_days": clean["gc_grace_days"],
        "default_expiry_days": DEFAULT_EXPIRY_DAYS,
        "vmid_range": {"start": clean["vmid_start"], "end": clean["vmid_end"]},
        "ip_pool": {
            "network": clean["ip_network"],
            "start": clean["ip_start"],
            "end": clean["ip_end"],
            "gateway": clean["gateway"],
        },
        "proxmox": proxmox,
    }
    path = hostio.host_path(DB_YAML)
    ipv6_pool, ipv6_raw = yamlio.preserved_key(_previous_db_yaml(path), "ipv6_pool")
    if ipv6_pool is not None:
        doc["ipv6_pool"] = ipv6_pool
    text = yamlio.render_db_yaml(doc, None if ipv6_pool is not None else ipv6_raw)
    hostio.write_atomic(path, text, DB_YAML_MODE, hostio.blockhost_gid())
    log.info("wrote %s", path)
    return True, None


def _api(config):
    cmd = os.environ.get("BLOCKHOST_PROVISIONER_DETECT") or shutil.which(DETECT)
    if not cmd:
        return False, "%s not found in PATH." % DETECT
    rc, out, err = run([cmd], timeout=DETECT_TIMEOUT)
    if rc != 0:
        return False, "The Proxmox VE API cannot be used: %s" % (hostio.last_line(err, out) or "exit status %d" % rc)
    return True, None


def finalize_token(config):
    """Write the API token to /etc/blockhost/pve-token (0640, group blockhost)."""
    return hostio.guarded_step("token", _token, config)


def finalize_tls(config):
    """Write the cluster's CA certificate when the API is verified by it."""
    return hostio.guarded_step("tls", _tls, config)


def finalize_db_config(config):
    """Write ``/etc/blockhost/db.yaml`` atomically (0640, group blockhost)."""
    return hostio.guarded_step("db_config", _db_config, config)


def finalize_api(config):
    """Check URL, certificate and token with ``blockhost-provisioner-detect``."""
    return hostio.guarded_step("api", _api, config)


def finalize_template(config):
    """Create the template VM with ``blockhost-build-template`` (30 min limit)."""
    return hostio.guarded_step("template", lambda _config: hostio.build_template(_runner), config)


def get_finalization_steps():
    """Ordered finalization steps for the installer pipeline."""
    return [
        ("token", "Storing the Proxmox VE API token", finalize_token),
        ("tls", "Storing how the API's certificate is verified", finalize_tls),
        ("db_config", "Writing VM database configuration", finalize_db_config),
        ("api", "Checking the Proxmox VE API", finalize_api),
        ("template", "Building VM template", finalize_template, TEMPLATE_HINT),
    ]


# --------------------------------------------------------------------------
# summary / UI hooks
# --------------------------------------------------------------------------

def _session_dict(session_like):
    if not hasattr(session_like, "get"):
        return {}
    data = session_like.get(SESSION_KEY)
    if isinstance(data, dict):
        return data
    if "api_url" in session_like:  # already the provisioner dict
        return session_like
    return {}


def get_summary_data(session_like):
    """Values for the summary page (never the token's secret); ``{}`` when the
    wizard step was not done."""
    data = _session_dict(session_like)
    if not data:
        return {}
    parsed = settings.parse_token(data.get("token") or "")
    start, end = data.get("ip_start", ""), data.get("ip_end", "")
    return {
        "api_url": data.get("api_url", ""),
        "token_id": parsed[0] if parsed else "",
        "tls": "CA certificate" if data.get("ca_pem") else data.get("tls_fingerprint", ""),
        "node": data.get("node", ""),
        "storage": data.get("storage", ""),
        "iso_storage": data.get("iso_storage", ""),
        "bridge": data.get("bridge", ""),
        "template_vmid": data.get("template_vmid", ""),
        "vmid_range": "%s - %s" % (data.get("vmid_start", ""), data.get("vmid_end", "")),
        "ip_network": data.get("ip_network", ""),
        "ip_range": "%s - %s" % (start, end) if start and end else "",
        "gateway": data.get("gateway", ""),
        "gc_grace_days": data.get("gc_grace_days", settings.DEFAULT_GC_GRACE_DAYS),
    }


def get_summary_template():
    """Template fragment rendering ``provisioner_summary``."""
    return "provisioner_proxmox/summary.html"


def get_ui_params(session_like=None):
    """Extra parameters for the installer's core templates (``prov_ui``)."""
    data = _session_dict(session_like) if session_like is not None else {}
    storage = data.get("storage") or settings.DEFAULT_STORAGE
    node = data.get("node") or "the Proxmox VE node"
    return {"storage_hint": "VM disks live on the Proxmox VE storage %s of %s (set on the Proxmox VE step)." % (storage, node)}
