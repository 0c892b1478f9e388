"""Validation of the libvirt wizard settings.

:func:`validate_settings` is used both by the form handler (strict: every
field required, addresses as full dotted quads) and by the finalization steps
(``allow_short_hosts=True``: ``ip_start``/``ip_end`` may be given as the last
octet, the way the installer's CI test endpoint passes them, and are then
expanded like blockhost-common does: first three octets of the network plus
the number).

The result is ``(clean, errors)``: ``clean`` holds the normalised session dict
(keys :data:`SESSION_KEYS`, addresses as strings, ``gc_grace_days`` int) and is
only meaningful when ``errors`` (field -> message) is empty.
"""

import ipaddress
import re

from . import hostinfo

SESSION_KEYS = (
    "storage_pool",
    "storage_path",
    "bridge",
    "ip_network",
    "ip_start",
    "ip_end",
    "gateway",
    "gc_grace_days",
)

POOL_RE = re.compile(r"[a-z0-9-]{1,64}", re.ASCII)
IPV4_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}", re.ASCII)
CIDR_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}/[0-9]{1,2}", re.ASCII)
PATH_RE = re.compile(r"/[A-Za-z0-9._/-]{1,254}", re.ASCII)
DAYS_RE = re.compile(r"[0-9]{1,3}", re.ASCII)
OCTET_RE = re.compile(r"[0-9]{1,3}", re.ASCII)

STORAGE_BASE = "/var/lib/blockhost"
# Sub-directories with another purpose; a storage pool there would confuse both.
RESERVED_SUBDIRS = ("cloud-init", "templates", "template-packages", "metrics")
MIN_PREFIX, MAX_PREFIX = 8, 30
MAX_GRACE_DAYS = 365


def _text(raw, key):
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value).strip()


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


def _check_days(raw_value):
    if isinstance(raw_value, bool):
        return None, "Grace period must be a whole number of days."
    if isinstance(raw_value, int):
        days = raw_value
    else:
        text = raw_value.strip() if isinstance(raw_value, str) else ""
        if not DAYS_RE.fullmatch(text):
            return None, "Grace period must be a whole number of days between 0 and 365."
        days = int(text)
    if not 0 <= days <= MAX_GRACE_DAYS:
        return None, "Grace period must be between 0 and %d days." % MAX_GRACE_DAYS
    return days, None


def _check_network(value):
    if not value:
        return None, "Network is required (e.g. 192.168.1.0/24)."
    if not CIDR_RE.fullmatch(value):
        return None, "Network must be an IPv4 CIDR such as 192.168.1.0/24."
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        return None, "%s is not a valid IPv4 network." % value
    if str(net) != value:
        return None, "%s has host bits set; did you mean %s?" % (value, net)
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        return None, "Network prefix length must be between /%d and /%d." % (
            MIN_PREFIX,
            MAX_PREFIX,
        )
    return net, None


def _check_addr(value, label, net, allow_short):
    if not value:
        return None, "%s is required." % label
    if allow_short and net is not None and OCTET_RE.fullmatch(value):
        head = str(net.network_address).rsplit(".", 1)[0]
        value = "%s.%d" % (head, int(value))
    if not IPV4_RE.fullmatch(value):
        return None, "%s must be an IPv4 address such as 192.168.1.10." % label
    try:
        addr = ipaddress.IPv4Address(value)
    except ValueError:
        return None, "%s: %s is not a valid IPv4 address." % (label, value)
    if net is None:
        return addr, None
    if addr not in net:
        return None, "%s %s is outside the network %s." % (label, addr, net)
    if addr == net.network_address:
        return None, "%s must not be the network address %s." % (label, addr)
    if addr == net.broadcast_address:
        return None, "%s must not be the broadcast address %s." % (label, addr)
    return addr, None


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
        text = _text(raw, key)
        if text is None and raw.get(key) is not None:
            errors[key] = "Invalid value type."
            continue
        value, err = check(text or "")
        if err:
            errors[key] = err
        else:
            clean[key] = value

    days, err = _check_days(raw.get("gc_grace_days"))
    if err:
        errors["gc_grace_days"] = err
    else:
        clean["gc_grace_days"] = days

    net, err = _check_network(_text(raw, "ip_network") or "")
    if err:
        errors["ip_network"] = err
    labels = (("ip_start", "Range start"), ("ip_end", "Range end"), ("gateway", "Gateway"))
    addrs = {}
    for key, label in labels:
        addr, err = _check_addr(_text(raw, key) or "", label, net, allow_short_hosts)
        if err:
            errors[key] = err
        else:
            addrs[key] = addr

    if net is not None and len(addrs) == 3:
        start, end, gw = addrs["ip_start"], addrs["ip_end"], addrs["gateway"]
        if start > end:
            errors["ip_end"] = "Range end %s is before range start %s." % (end, start)
        elif start <= gw <= end:
            errors["gateway"] = "Gateway %s lies inside the VM address range %s-%s." % (
                gw,
                start,
                end,
            )
    if net is not None and not errors.keys() & {"ip_network", "ip_start", "ip_end", "gateway"}:
        clean["ip_network"] = str(net)
        for key in ("ip_start", "ip_end", "gateway"):
            clean[key] = str(addrs[key])
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
