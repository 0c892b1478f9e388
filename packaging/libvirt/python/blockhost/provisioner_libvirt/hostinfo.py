"""Host inspection for the libvirt wizard plugin.

Every host path goes through one root prefix (:func:`.hostio.host_path`,
``BLOCKHOST_ROOT``), so the whole plugin can be exercised against a scratch
directory.

Commands are executed through a *runner* callable with the signature
``runner(argv: list[str], timeout=...) -> (rc, stdout, stderr)``; the wizard
passes its module-level ``run`` so tests can substitute it.

Detection rules (they fix the upstream plugin, which proposed the IPv4 pool
of libvirt's NAT network ``default`` -- a network the finalization then
destroys):

* bridge: the content of ``/run/blockhost/bridge`` (written by first boot),
  else the first entry of ``/sys/class/net/*/bridge`` (sorted, libvirt's own
  ``virbrN`` bridges skipped) that carries a global IPv4 address;
* subnet: the bridge's real IPv4 interface network;
* gateway: the IPv4 default route through that bridge if it lies inside the
  subnet, else the bridge's own address (the host routes for the VMs);
* address range: a contiguous block in the upper half of the usable hosts
  that avoids the network, broadcast, gateway and host addresses.
"""

import ipaddress
import json
import os
import re

from .hostio import host_path
from .ipv4pool import DEFAULT_GRACE_DAYS

IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}", re.ASCII)
LIBVIRT_BRIDGE_RE = re.compile(r"virbr[0-9]+", re.ASCII)

DEFAULT_STORAGE_POOL = "blockhost"
DEFAULT_STORAGE_PATH = "/var/lib/blockhost/vms"

_CMD_TIMEOUT = 10


def valid_ifname(name):
    """True when *name* is a plausible, option-safe Linux interface name."""
    return (
        isinstance(name, str)
        and IFNAME_RE.fullmatch(name) is not None
        and not name.startswith("-")
        and name not in (".", "..")
    )


def read_bridge_file():
    """Bridge name recorded by first boot in ``/run/blockhost/bridge``, or None."""
    try:
        with open(host_path("/run/blockhost/bridge"), encoding="utf-8") as fh:
            name = fh.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return name if valid_ifname(name) else None


def is_bridge(name):
    """True when *name* is an existing bridge (``/sys/class/net/<name>/bridge``)."""
    return valid_ifname(name) and os.path.isdir(
        os.path.join(host_path("/sys/class/net"), name, "bridge")
    )


def list_bridges():
    """Sorted names of all bridges under ``/sys/class/net``."""
    try:
        names = sorted(os.listdir(host_path("/sys/class/net")))
    except OSError:
        return []
    return [n for n in names if is_bridge(n)]


def _json_list(runner, argv):
    try:
        rc, out, _err = runner(argv, timeout=_CMD_TIMEOUT)
    except Exception:  # a broken runner must not break detection
        return []
    if rc != 0:
        return []
    try:
        data = json.loads(out or "[]")
    except ValueError:
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def global_ipv4(dev, runner):
    """Global-scope IPv4 interfaces of *dev* as ``ipaddress.IPv4Interface`` list."""
    if not valid_ifname(dev):
        return []
    found = []
    for link in _json_list(runner, ["ip", "-j", "-4", "addr", "show", "dev", dev]):
        for info in link.get("addr_info") or []:
            if not isinstance(info, dict):
                continue
            if info.get("family") != "inet" or info.get("scope") != "global":
                continue
            try:
                iface = ipaddress.IPv4Interface(
                    "%s/%d" % (info["local"], int(info["prefixlen"]))
                )
            except (KeyError, TypeError, ValueError):
                continue
            found.append(iface)
    return found


def default_gateway(dev, runner):
    """Next hop of the IPv4 default route through *dev*, or None."""
    if not valid_ifname(dev):
        return None
    argv = ["ip", "-j", "-4", "route", "show", "default", "dev", dev]
    for route in _json_list(runner, argv):
        try:
            return ipaddress.IPv4Address(route["gateway"])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def detect_bridge(runner):
    """Return ``(bridge_name, IPv4Interface or None)``; name is None if nothing fits."""
    name = read_bridge_file()
    if name:
        addrs = global_ipv4(name, runner)
        return name, (addrs[0] if addrs else None)
    for br in list_bridges():
        if LIBVIRT_BRIDGE_RE.fullmatch(br):
            continue  # libvirt NAT bridges are torn down by finalization
        addrs = global_ipv4(br, runner)
        if addrs:
            return br, addrs[0]
    return None, None


def _usable_span(network, anchor):
    """First/last usable host (as ints) of *network*; confined to the /24
    around *anchor* for networks larger than /24 so the pool stays compact."""
    if network.prefixlen < 24 and anchor is not None and anchor in network:
        block = ipaddress.IPv4Network((int(anchor), 24), strict=False)
        return int(block.network_address) + 1, int(block.broadcast_address) - 1
    return int(network.network_address) + 1, int(network.broadcast_address) - 1


def _longest_gap(lo, hi, excluded):
    best = None
    cur = lo
    for x in sorted(e for e in excluded if lo <= e <= hi) + [hi + 1]:
        if x - 1 >= cur and (best is None or (x - 1 - cur) > (best[1] - best[0])):
            best = (cur, x - 1)
        cur = max(cur, x + 1)
    return best


def propose_range(network, gateway=None, host=None):
    """Propose ``(start, end)`` IPv4Address pair inside *network* or ``(None, None)``.

    Prefers the upper half of the usable hosts; the result never includes the
    network, broadcast, gateway or host address.
    """
    if network.prefixlen > 30:
        return None, None
    first, last = _usable_span(network, host)
    excluded = {
        int(network.network_address),
        int(network.broadcast_address),
    }
    for addr in (gateway, host):
        if addr is not None:
            excluded.add(int(addr))
    size = last - first + 1
    for lo in (first + size // 2, first):
        gap = _longest_gap(lo, last, excluded)
        if gap:
            return ipaddress.IPv4Address(gap[0]), ipaddress.IPv4Address(gap[1])
    return None, None


def detect_defaults(runner):
    """Form defaults detected from the host.

    Returns a dict with the session keys (string values, ``gc_grace_days`` int)
    plus ``host_address`` (e.g. ``10.20.0.5/24`` or "") and ``notice`` (a
    human-readable remark when detection was incomplete, else "").
    """
    defaults = {
        "storage_pool": DEFAULT_STORAGE_POOL,
        "storage_path": DEFAULT_STORAGE_PATH,
        "bridge": "",
        "ip_network": "",
        "ip_start": "",
        "ip_end": "",
        "gateway": "",
        "gc_grace_days": DEFAULT_GRACE_DAYS,
        "host_address": "",
        "notice": "",
    }
    bridge, iface = detect_bridge(runner)
    if not bridge:
        defaults["bridge"] = "br0"
        defaults["notice"] = (
            "No bridge with an IPv4 address was found on this host. "
            "Enter the bridge and its subnet manually."
        )
        return defaults
    defaults["bridge"] = bridge
    if iface is None:
        defaults["notice"] = (
            "Bridge %s has no global IPv4 address. Enter the subnet, "
            "address range and gateway manually." % bridge
        )
        return defaults
    network = iface.network
    host = iface.ip
    gateway = default_gateway(bridge, runner)
    if gateway is None or gateway not in network or gateway in (
        network.network_address,
        network.broadcast_address,
    ):
        gateway = host
    start, end = propose_range(network, gateway=gateway, host=host)
    defaults.update(
        ip_network=str(network),
        gateway=str(gateway),
        host_address=str(iface),
        ip_start=str(start) if start else "",
        ip_end=str(end) if end else "",
    )
    if not start:
        defaults["notice"] = (
            "Subnet %s is too small for a VM address range." % network
        )
    return defaults
