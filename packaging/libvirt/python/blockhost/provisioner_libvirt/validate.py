"""Validation of the libvirt wizard settings.

:func:`validate_settings` is used both by the form handler (strict: every
field required, addresses as full dotted quads) and by the finalization steps
(``allow_short_hosts=True``, see :mod:`.ipv4pool`, which checks the address
pool and the grace period).

The result is ``(clean, errors)``: ``clean`` holds the normalised session dict
(keys :data:`SESSION_KEYS`, addresses as strings, ``gc_grace_days`` int) and is
only meaningful when ``errors`` (field -> message) is empty.
"""

import ipaddress
import re

from . import hostinfo, ipv4pool

SESSION_KEYS = ("storage_pool", "storage_path", "bridge") + ipv4pool.SHARED_KEYS

POOL_RE = re.compile(r"[a-z0-9-]{1,64}", re.ASCII)
PATH_RE = re.compile(r"/[A-Za-z0-9._/-]{1,254}", re.ASCII)

STORAGE_BASE = "/var/lib/blockhost"
# Sub-directories with another purpose; a storage pool there would confuse both.
RESERVED_SUBDIRS = ("cloud-init", "templates", "template-packages", "metrics")


def _check_pool(value):
    if not value:
        return None, "Storage pool name is required."
    if not POOL_RE.fullmatch(value) or value.startswith("-"):
        return None, (
            "Storage pool name must be 1-64 characters of lowercase letters, "
            "digits and '-' (not starting with '-')."
        )
    return value, None


def _check_path(value):
    if not value:
        return None, "Storage path is required."
    if len(value) > 1 and value.endswith("/"):
        value = value.rstrip("/")
    if not PATH_RE.fullmatch(value):
        return None, (
            "Storage path must be an absolute path of letters, digits, '.', '_', "
            "'-' and '/'."
        )
    parts = value.split("/")[1:]
    if any(p in ("", ".", "..") for p in parts):
        return None, "Storage path must be a normalised path (no '.', '..' or '//')."
    base = STORAGE_BASE.split("/")[1:]
    if parts[: len(base)] != base or len(parts) <= len(base):
        return None, "Storage path must be a directory under %s/." % STORAGE_BASE
    if parts[len(base)] in RESERVED_SUBDIRS:
        return None, "%s/%s is reserved for BlockHost; choose another directory." % (
            STORAGE_BASE,
            parts[len(base)],
        )
    return value, None


def _check_bridge(value):
    if not value:
        return None, "Bridge is required."
    if not hostinfo.valid_ifname(value):
        return None, (
            "Bridge must be an interface name of 1-15 letters, digits, '.', '_' "
            "or '-' (not starting with '-')."
        )
    if hostinfo.LIBVIRT_BRIDGE_RE.fullmatch(value):
        return None, (
            "%s belongs to a libvirt NAT network, which finalization disables; "
            "use the host's LAN bridge (e.g. br0)." % value
        )
    return value, None


def validate_settings(raw, allow_short_hosts=False):
    """Validate a mapping of wizard settings; return ``(clean, errors)``."""
    if not hasattr(raw, "get"):
        return {}, {"_form": "Settings must be a mapping."}
    errors = {}
    clean = {}

    checks = (
        ("storage_pool", _check_pool),
        ("storage_path", _check_path),
        ("bridge", _check_bridge),
    )
    for key, check in checks:
        text = ipv4pool.text(raw, key)
        if text is None and raw.get(key) is not None:
            errors[key] = "Invalid value type."
            continue
        value, err = check(text or "")
        if err:
            errors[key] = err
        else:
            clean[key] = value

    shared, shared_errors = ipv4pool.validate_shared(raw, allow_short_hosts)
    clean.update(shared)
    errors.update(shared_errors)
    return clean, errors


def host_address_conflicts(clean, host_ifaces):
    """Error dict if one of the host's addresses falls inside the VM range."""
    try:
        start = ipaddress.IPv4Address(clean["ip_start"])
        end = ipaddress.IPv4Address(clean["ip_end"])
    except (KeyError, ValueError):
        return {}
    for iface in host_ifaces:
        if start <= iface.ip <= end:
            return {
                "ip_start": "The range %s-%s contains this host's own address %s."
                % (start, end, iface.ip)
            }
    return {}
