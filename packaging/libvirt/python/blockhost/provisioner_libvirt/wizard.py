"""Installer wizard plugin for the libvirt provisioner.

Loaded by the BlockHost web installer through the manifest
(``setup.wizard_module``, manifest ``name`` "libvirt", session key
``libvirt``).  Exports used by the installer:

``blueprint``
    Flask blueprint ``provisioner_libvirt`` with the view ``wizard_libvirt``
    at ``/wizard/libvirt`` (GET shows the form with defaults detected from
    the host, POST validates and stores ``session["libvirt"]``).
``get_finalization_steps()``
    ``[(id, label, func[, hint]), ...]`` for ids ``storage``, ``network``,
    ``db_config``, ``template``; each ``func(config)`` receives the installer
    config whose ``config["provisioner"]`` is the session dict, and returns
    ``(True, None)`` or ``(False, message)`` -- it never raises.
``get_summary_data(session)``, ``get_summary_template()``, ``get_ui_params(session)``
    Summary page support; the fragment reads ``provisioner_summary``.

Session dict (``session["libvirt"]``): ``storage_pool``, ``storage_path``,
``bridge``, ``ip_network`` ("10.20.0.0/24"), ``ip_start``, ``ip_end``,
``gateway`` (full dotted IPv4 strings) and ``gc_grace_days`` (int).

Unlike the upstream plugin, the IPv4 pool is derived from the LAN bridge the
VMs are attached to, never from libvirt's NAT network ``default`` (which the
``network`` step disables).

All host paths go through ``BLOCKHOST_ROOT`` (see :mod:`.hostinfo`); all
commands are argument lists executed through the module-level :func:`run`.
"""

import grp
import logging
import os
import pwd
import xml.etree.ElementTree as ET

from flask import Blueprint, render_template, request, session

from . import dbyaml, hostinfo, hostio, ipv4pool, validate, wizardstep
from .hostio import run

log = logging.getLogger("blockhost.provisioner_libvirt")

SESSION_KEY = "libvirt"
VIRSH = ["virsh", "-c", "qemu:///system"]
BLOCKHOST_USER = "blockhost"
QEMU_GROUP = "libvirt-qemu"
STATE_SUBDIRS = ("vms", "cloud-init", "templates", "template-packages", "metrics")
DIR_MODE = 0o750

blueprint = Blueprint("provisioner_libvirt", __name__, template_folder="templates")


# --------------------------------------------------------------------------
# command execution
# --------------------------------------------------------------------------

def _runner(cmd, timeout=120):
    # late binding so a monkeypatched module-level ``run`` is honoured
    return run(cmd, timeout=timeout)


# --------------------------------------------------------------------------
# wizard page
# --------------------------------------------------------------------------

FIELD_ORDER = validate.SESSION_KEYS


def _render(values, errors, detected, status=200):
    return (
        render_template(
            "provisioner_libvirt/wizard.html",
            values=values,
            errors=errors,
            detected=detected,
        ),
        status,
    )


@blueprint.route("/wizard/libvirt", methods=["GET", "POST"])
def wizard_libvirt():
    """Provisioner configuration page (GET form, POST validate + store)."""
    if request.method == "GET":
        detected = hostinfo.detect_defaults(_runner)
        values = {k: detected[k] for k in FIELD_ORDER}
        saved = session.get(SESSION_KEY)
        if isinstance(saved, dict):
            values.update({k: saved[k] for k in FIELD_ORDER if k in saved})
        return _render(values, {}, detected)

    submitted = {k: request.form.get(k, "") for k in FIELD_ORDER}
    clean, errors = validate.validate_settings(submitted)
    if not errors:
        if hostinfo.list_bridges() and not hostinfo.is_bridge(clean["bridge"]):
            errors["bridge"] = "%s is not a bridge on this host." % clean["bridge"]
        else:
            errors.update(
                validate.host_address_conflicts(
                    clean, hostinfo.global_ipv4(clean["bridge"], _runner)
                )
            )
    if errors:
        return _render(submitted, errors, hostinfo.detect_defaults(_runner), status=400)
    return wizardstep.store_and_continue(SESSION_KEY, {k: clean[k] for k in FIELD_ORDER}, log)


# --------------------------------------------------------------------------
# finalization helpers
# --------------------------------------------------------------------------

def _lookup_ids():
    """(uid, gid, description) for the state directories, or (None, None, why)."""
    try:
        uid = pwd.getpwnam(BLOCKHOST_USER).pw_uid
    except KeyError:
        return None, None, "user %s does not exist" % BLOCKHOST_USER
    for group in (QEMU_GROUP, BLOCKHOST_USER):
        try:
            return uid, grp.getgrnam(group).gr_gid, "%s:%s" % (BLOCKHOST_USER, group)
        except KeyError:
            continue
    return None, None, "neither group %s nor %s exists" % (QEMU_GROUP, BLOCKHOST_USER)


def _ensure_dir(path, uid, gid):
    os.makedirs(path, exist_ok=True)
    if uid is not None:
        try:
            os.chown(path, uid, gid)
        except PermissionError:
            if os.geteuid() == 0:
                raise
            log.warning("cannot chown %s (not running as root); skipped", path)
    os.chmod(path, DIR_MODE)


def _virsh(*args, timeout=60):
    return run(VIRSH + list(args), timeout=timeout)


def _tolerated(err, *phrases):
    low = (err or "").lower()
    return any(p in low for p in phrases)


def _pool_target(pool):
    rc, out, err = _virsh("pool-dumpxml", pool)
    if rc != 0:
        return None, hostio.last_line(err, out) or "virsh pool-dumpxml failed"
    try:
        node = ET.fromstring(out).find("./target/path")
    except ET.ParseError as exc:
        return None, "cannot parse pool XML: %s" % exc
    return (node.text or "").strip() if node is not None else "", None


# --------------------------------------------------------------------------
# finalization steps
# --------------------------------------------------------------------------

def _storage(config):
    prov = wizardstep.provisioner(config)
    pool = prov.get("storage_pool", hostinfo.DEFAULT_STORAGE_POOL)
    path = prov.get("storage_path", hostinfo.DEFAULT_STORAGE_PATH)
    pool, err = validate._check_pool(pool if isinstance(pool, str) else "")
    if err:
        return False, err
    path, err = validate._check_path(path if isinstance(path, str) else "")
    if err:
        return False, err

    uid, gid, owner = _lookup_ids()
    if uid is None:
        log.warning("state directories: %s; ownership left unchanged", owner)
    base = hostio.host_path("/var/lib/blockhost")
    os.makedirs(base, exist_ok=True)
    dirs = [os.path.join(base, d) for d in STATE_SUBDIRS]
    pool_dir = hostio.host_path(path)
    if pool_dir not in dirs:
        dirs.append(pool_dir)
    for d in dirs:
        _ensure_dir(d, uid, gid)
    log.info("state directories ready (%s, mode %o)", owner, DIR_MODE)

    rc, out, err = _virsh("pool-define-as", pool, "dir", "--target", path)
    if rc != 0 and not _tolerated(err, "already exists"):
        return False, "Defining storage pool %s failed: %s" % (pool, hostio.last_line(err, out))
    target, err = _pool_target(pool)
    if err:
        return False, "Inspecting storage pool %s failed: %s" % (pool, err)
    if target and target.rstrip("/") != path:
        return False, (
            "Storage pool %s already exists with target %s (wanted %s); "
            "choose another pool name." % (pool, target, path)
        )
    rc, out, err = _virsh("pool-build", pool, timeout=120)
    if rc != 0 and not _tolerated(err, "already exists"):
        return False, "Building storage pool %s failed: %s" % (pool, hostio.last_line(err, out))
    rc, out, err = _virsh("pool-start", pool)
    if rc != 0 and not _tolerated(err, "already active"):
        return False, "Starting storage pool %s failed: %s" % (pool, hostio.last_line(err, out))
    rc, out, err = _virsh("pool-autostart", pool)
    if rc != 0:
        return False, "Enabling autostart of pool %s failed: %s" % (pool, hostio.last_line(err, out))
    rc, out, err = _virsh("pool-info", pool)
    if rc != 0:
        return False, "Storage pool %s is not usable: %s" % (pool, hostio.last_line(err, out))
    state = [ln for ln in out.splitlines() if ln.strip().lower().startswith("state:")]
    if state and "running" not in state[0].lower():
        return False, "Storage pool %s is not running (%s)." % (pool, state[0].strip())
    # pool-build may have reset the mode of the target directory
    _ensure_dir(pool_dir, uid, gid)
    log.info("storage pool %s active at %s", pool, path)
    return True, None


def _resolve_bridge(prov):
    bridge = prov.get("bridge")
    if bridge:
        if not hostinfo.valid_ifname(bridge):
            return None, None, "Invalid bridge name in configuration."
        addrs = hostinfo.global_ipv4(bridge, _runner)
        return bridge, (addrs[0] if addrs else None), None
    bridge, iface = hostinfo.detect_bridge(_runner)
    if not bridge:
        return None, None, "No bridge with an IPv4 address found on this host."
    return bridge, iface, None


def _virsh_info(cmd, name):
    """Parse ``virsh net-info``/``pool-info`` into a lower-cased dict, or None."""
    rc, out, _err = _virsh(cmd, name)
    if rc != 0:
        return None
    info = {}
    for line in out.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info[k.strip().lower()] = v.strip()
    return info


def _network(config):
    prov = wizardstep.provisioner(config)
    bridge, iface, err = _resolve_bridge(prov)
    if err:
        return False, err
    if iface is None:
        return False, "Bridge %s has no global IPv4 address." % bridge
    if isinstance(config, dict) and isinstance(config.get("provisioner"), dict):
        config["provisioner"]["bridge"] = bridge
    log.info("bridge %s with %s", bridge, iface)

    info = _virsh_info("net-info", "default")
    if info is None:
        log.info("libvirt network 'default' not defined; nothing to disable")
        return True, None
    if info.get("bridge") == bridge:
        log.warning("libvirt network 'default' owns bridge %s; left untouched", bridge)
        return True, None
    if info.get("active") == "yes":
        rc, out, err = _virsh("net-destroy", "default")
        if rc != 0 and not _tolerated(err, "not active", "not found"):
            return False, "Stopping libvirt network 'default' failed: %s" % hostio.last_line(err, out)
    if info.get("autostart") != "no":
        rc, out, err = _virsh("net-autostart", "default", "--disable")
        if rc != 0 and not _tolerated(err, "not active", "not found"):
            return False, "Disabling libvirt network 'default' failed: %s" % hostio.last_line(err, out)
    return True, None


def _settings_for_db(prov):
    """Complete + validate the settings for db.yaml (detecting what is missing)."""
    merged = dict(prov)
    merged.setdefault("storage_pool", hostinfo.DEFAULT_STORAGE_POOL)
    merged.setdefault("storage_path", hostinfo.DEFAULT_STORAGE_PATH)
    merged.setdefault("gc_grace_days", ipv4pool.DEFAULT_GRACE_DAYS)
    if not merged.get("bridge") or not merged.get("ip_network"):
        detected = hostinfo.detect_defaults(_runner)
        for key in validate.SESSION_KEYS:
            if not merged.get(key) and detected.get(key) not in (None, ""):
                merged[key] = detected[key]
    return validate.validate_settings(merged, allow_short_hosts=True)


def _db_config(config):
    prov = wizardstep.provisioner(config)
    clean, errors = _settings_for_db(prov)
    if errors:
        return False, wizardstep.settings_error(errors)
    doc = {
        "db_file": dbyaml.DB_FILE,
        "storage_pool": clean["storage_pool"],
        "storage_path": clean["storage_path"],
        "bridge": clean["bridge"],
        "gc_grace_days": clean["gc_grace_days"],
        "default_expiry_days": dbyaml.DEFAULT_EXPIRY_DAYS,
        "ip_pool": dbyaml.ip_pool(clean),
    }
    dbyaml.write(doc, log)
    return True, None


def finalize_storage(config):
    """Create the state directories and the libvirt dir storage pool."""
    return hostio.guarded_step("storage", _storage, config)


def finalize_network(config):
    """Check the bridge and disable libvirt's NAT network ``default`` if running."""
    return hostio.guarded_step("network", _network, config)


def finalize_db_config(config):
    """Write ``/etc/blockhost/db.yaml`` atomically (0640, group blockhost)."""
    return hostio.guarded_step("db_config", _db_config, config)


def finalize_template(config):
    """Build the base VM image with ``blockhost-build-template`` (30 min limit)."""
    return hostio.guarded_step("template", lambda _config: hostio.build_template(_runner), config)


def get_finalization_steps():
    """Ordered finalization steps for the installer pipeline."""
    return [
        ("storage", "Configuring libvirt storage", finalize_storage),
        ("network", "Configuring VM network bridge", finalize_network),
        wizardstep.db_config_step(finalize_db_config),
        wizardstep.template_step(finalize_template),
    ]


# --------------------------------------------------------------------------
# summary / UI hooks
# --------------------------------------------------------------------------

def _session_dict(session_like):
    return wizardstep.session_dict(session_like, SESSION_KEY, "storage_pool")


def get_summary_data(session_like):
    """Values for the summary page; ``{}`` when the wizard step was not done."""
    data = _session_dict(session_like)
    if not data:
        return {}
    return {
        "storage_pool": data.get("storage_pool", ""),
        "storage_path": data.get("storage_path", ""),
        "bridge": data.get("bridge", ""),
        "ip_network": data.get("ip_network", ""),
        "ip_start": data.get("ip_start", ""),
        "ip_end": data.get("ip_end", ""),
        **wizardstep.pool_summary(data),
    }


def get_summary_template():
    """Template fragment rendering ``provisioner_summary``."""
    return "provisioner_libvirt/summary.html"


def get_ui_params(session_like=None):
    """Extra parameters for the installer's core templates (``prov_ui``)."""
    data = _session_dict(session_like) if session_like is not None else {}
    path = data.get("storage_path") or hostinfo.DEFAULT_STORAGE_PATH
    return {
        "storage_hint": (
            "VM disks live in the libvirt storage pool at %s "
            "(set on the libvirt step)." % path
        ),
    }
