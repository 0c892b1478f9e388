"""The settings every BlockHost provisioner wizard shares: the VMs' IPv4
address pool and the garbage-collection grace period.

One source file: the libvirt plugin ships it from here, the Proxmox VE plugin
through a symbolic link in its package folder (each Debian package installs
its own copy). Nothing here names a backend.

:func:`validate_shared` checks both. The pool check is strict for the form
(addresses as full dotted quads) and, with ``allow_short_hosts=True`` for the
finalization steps, accepts ``ip_start``/``ip_end`` as the last octet, the way
the installer's CI test endpoint passes them, expanded like blockhost-common
does: first three octets of the network plus the number.
"""

import ipaddress
import re

IPV4_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}", re.ASCII)
CIDR_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}/[0-9]{1,2}", re.ASCII)
DAYS_RE = re.compile(r"[0-9]{1,3}", re.ASCII)
OCTET_RE = re.compile(r"[0-9]{1,3}", re.ASCII)

MIN_PREFIX, MAX_PREFIX = 8, 30
MAX_GRACE_DAYS = 365
DEFAULT_GRACE_DAYS = 7
POOL_KEYS = ("ip_network", "ip_start", "ip_end", "gateway")
# The session keys this module validates, last in every provisioner's.
SHARED_KEYS = POOL_KEYS + ("gc_grace_days",)


def text(raw, key):
    """The stripped text of ``raw[key]`` (a string or an int), else None."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value).strip()


def check_days(raw_value):
    """``(days, None)`` for a grace period of 0-365 days, else ``(None, message)``."""
    if isinstance(raw_value, bool):
        return None, "Grace period must be a whole number of days."
    if isinstance(raw_value, int):
        days = raw_value
    else:
        digits = raw_value.strip() if isinstance(raw_value, str) else ""
        if not DAYS_RE.fullmatch(digits):
            return None, "Grace period must be a whole number of days between 0 and 365."
        days = int(digits)
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


def validate_pool(raw, allow_short_hosts=False):
    """Validate ``ip_network``, ``ip_start``, ``ip_end`` and ``gateway`` of the
    mapping *raw*; return ``(clean, errors)`` with the four as strings."""
    errors = {}
    clean = {}
    net, err = _check_network(text(raw, "ip_network") or "")
    if err:
        errors["ip_network"] = err
    labels = (("ip_start", "Range start"), ("ip_end", "Range end"), ("gateway", "Gateway"))
    addrs = {}
    for key, label in labels:
        addr, err = _check_addr(text(raw, key) or "", label, net, allow_short_hosts)
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
    if net is not None and not errors.keys() & set(POOL_KEYS):
        clean["ip_network"] = str(net)
        for key in ("ip_start", "ip_end", "gateway"):
            clean[key] = str(addrs[key])
    return clean, errors


def validate_shared(raw, allow_short_hosts=False):
    """Validate the pool (:func:`validate_pool`) and ``gc_grace_days`` of the
    mapping *raw*; return ``(clean, errors)``."""
    clean, errors = validate_pool(raw, allow_short_hosts)
    days, err = check_days(raw.get("gc_grace_days"))
    if err:
        errors["gc_grace_days"] = err
    else:
        clean["gc_grace_days"] = days
    return clean, errors
