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

from flask import Blueprint, render_template, request, session

from . import dbyaml, hostio, ipv4pool, settings, wizardstep
from .hostio import run

log = logging.getLogger("blockhost.provisioner_proxmox")

SESSION_KEY = "proxmox"
TOKEN_FILE = "/etc/blockhost/pve-token"
CA_FILE = "/etc/blockhost/pve-root-ca.pem"
# The modes lib/src/provider/proxmox/token.rs expects (it refuses a token
# readable by every user).
TOKEN_MODE = 0o640
CA_MODE = 0o644
DETECT = "blockhost-provisioner-detect"
DETECT_TIMEOUT = 60

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
    "gc_grace_days": ipv4pool.DEFAULT_GRACE_DAYS,
}


def _runner(cmd, timeout=120):
    # late binding so a monkeypatched module-level ``run`` is honoured
    return run(cmd, timeout=timeout)


# --------------------------------------------------------------------------
# wizard page
# --------------------------------------------------------------------------

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
    return wizardstep.store_and_continue(SESSION_KEY, clean, log)


# --------------------------------------------------------------------------
# finalization steps
# --------------------------------------------------------------------------

def _settings(config):
    """The validated session dict, or ``(None, message)``."""
    clean, errors = settings.validate_settings(wizardstep.provisioner(config), allow_short_hosts=True)
    if errors:
        return None, wizardstep.settings_error(errors)
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
        "db_file": dbyaml.DB_FILE,
        "bridge": clean["bridge"],
        "gc_grace_days": clean["gc_grace_days"],
        "default_expiry_days": dbyaml.DEFAULT_EXPIRY_DAYS,
        "vmid_range": {"start": clean["vmid_start"], "end": clean["vmid_end"]},
        "ip_pool": dbyaml.ip_pool(clean),
        "proxmox": proxmox,
    }
    dbyaml.write(doc, log)
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
        wizardstep.db_config_step(finalize_db_config),
        ("api", "Checking the Proxmox VE API", finalize_api),
        wizardstep.template_step(finalize_template),
    ]


# --------------------------------------------------------------------------
# summary / UI hooks
# --------------------------------------------------------------------------

def _session_dict(session_like):
    return wizardstep.session_dict(session_like, SESSION_KEY, "api_url")


def get_summary_data(session_like):
    """Values for the summary page (never the token's secret); ``{}`` when the
    wizard step was not done."""
    data = _session_dict(session_like)
    if not data:
        return {}
    parsed = settings.parse_token(data.get("token") or "")
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
        **wizardstep.pool_summary(data),
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
