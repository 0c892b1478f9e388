"""Root-agent actions for the libvirt provisioner (host networking only).

Installed to ``/usr/share/blockhost/root-agent-actions/`` and loaded by the
BlockHost root agent daemon (running as root), which puts that directory on
``sys.path`` so ``_common`` (from blockhost-common) is importable, and merges
this module's :data:`ACTIONS`.  The daemon keeps the first definition of a
duplicate action name (files in alphabetical order), so every name here is
prefixed ``libvirt-`` to stay clear of common's ``ip6-route-add`` & co.

Domain operations are done by the Rust provisioner through libvirt directly;
only the host network plumbing below needs root.

Actions (params -> command):

``libvirt-ip6-route-add``  ``{address: "<v6>/128", dev: <bridge>}``
    ``ip -6 route replace <v6>/128 dev <bridge>``
``libvirt-ip6-route-del``  ``{address: "<v6>/128", dev: <bridge>}``
    ``ip -6 route del <v6>/128 dev <bridge>``; an absent route is success.
``libvirt-ip6-route-list`` ``{dev: <bridge>}``
    ``ip -j -6 route show dev <bridge>``; output = one ``<v6>/128`` per line
    (host routes we could have added; kernel/RA routes excluded), also
    returned as the list ``routes``.
``libvirt-bridge-port-isolate`` ``{dev: vnetN | tapXXX}``
    ``bridge link set dev <dev> isolated on`` (the tap must be a bridge port).

Validation is strict: params must be a dict with exactly the documented
keys, all values strings; addresses must be global-ish unicast IPv6 /128
(no multicast, loopback, unspecified, link-local or IPv4-mapped); interface
names are ASCII ``[A-Za-z0-9_.-]{1,15}``, never starting with ``-``, and must
exist under ``<BLOCKHOST_ROOT>/sys/class/net``.  Invalid requests return
``{"ok": False, "error": ...}`` without running anything.  Every command is
an argument list.
"""

import ipaddress
import json
import os
import re

from _common import log, run

IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}", re.ASCII)
TAP_RE = re.compile(r"vnet[0-9]{1,5}|tap[A-Za-z0-9_]{1,12}", re.ASCII)
IPV6_128_RE = re.compile(r"([0-9A-Fa-f:]{2,39})/128", re.ASCII)

ROUTE_TIMEOUT = 30


class _Invalid(Exception):
    """Rejected request parameters (reported as ok False)."""


def _sys_class_net(dev):
    root = os.environ.get("BLOCKHOST_ROOT") or "/"
    return os.path.join(root, "sys", "class", "net", dev)


def _check_params(params, required):
    if not isinstance(params, dict):
        raise _Invalid("params must be an object")
    extra = sorted(repr(k)[:40] for k in params if k not in required)
    if extra:
        raise _Invalid("unknown parameter(s): %s" % ", ".join(extra)[:200])
    missing = [k for k in required if k not in params]
    if missing:
        raise _Invalid("missing parameter(s): %s" % ", ".join(missing))
    for key in required:
        if not isinstance(params[key], str):
            raise _Invalid("%s must be a string" % key)


def _check_ifname(dev, key="dev"):
    if not IFNAME_RE.fullmatch(dev) or dev.startswith("-") or dev in (".", ".."):
        raise _Invalid("invalid %s name" % key)
    if not os.path.exists(_sys_class_net(dev)):
        raise _Invalid("%s %s does not exist" % (key, dev))
    return dev


def _check_bridge(dev):
    _check_ifname(dev)
    if not os.path.isdir(os.path.join(_sys_class_net(dev), "bridge")):
        raise _Invalid("dev %s is not a bridge" % dev)
    return dev


def _check_tap(dev):
    if not TAP_RE.fullmatch(dev):
        raise _Invalid("dev must be a VM tap interface (vnetN or tapX)")
    _check_ifname(dev)
    if not os.path.isdir(os.path.join(_sys_class_net(dev), "brport")):
        raise _Invalid("dev %s is not attached to a bridge" % dev)
    return dev


def _usable_v6(addr):
    return not (
        addr.is_multicast
        or addr.is_loopback
        or addr.is_unspecified
        or addr.is_link_local
        or addr.ipv4_mapped is not None
    )


def _check_address(value):
    match = IPV6_128_RE.fullmatch(value)
    if not match:
        raise _Invalid("address must be an IPv6 address with prefix /128")
    try:
        addr = ipaddress.IPv6Address(match.group(1))
    except ValueError:
        raise _Invalid("address is not a valid IPv6 address") from None
    if not _usable_v6(addr):
        raise _Invalid("address %s is not a routable unicast address" % addr)
    return "%s/128" % addr.compressed


def _fail(action, message):
    log.warning("%s rejected: %s", action, message)
    return {"ok": False, "error": message}


def _guard(action, func, params):
    try:
        return func(params)
    except _Invalid as exc:
        return _fail(action, str(exc))


def _route_add(params):
    _check_params(params, ("address", "dev"))
    address = _check_address(params["address"])
    dev = _check_bridge(params["dev"])
    rc, out, err = run(["ip", "-6", "route", "replace", address, "dev", dev], timeout=ROUTE_TIMEOUT)
    if rc != 0:
        return {"ok": False, "error": err or out or "ip route replace failed (%d)" % rc}
    log.info("ip6 route %s dev %s added", address, dev)
    return {"ok": True, "output": "route %s dev %s" % (address, dev)}


_ABSENT = ("no such process", "not found", "no such file", "cannot find")


def _route_del(params):
    _check_params(params, ("address", "dev"))
    address = _check_address(params["address"])
    dev = _check_bridge(params["dev"])
    rc, out, err = run(["ip", "-6", "route", "del", address, "dev", dev], timeout=ROUTE_TIMEOUT)
    if rc != 0:
        if any(p in (err or "").lower() for p in _ABSENT):
            return {"ok": True, "output": "route %s dev %s not present" % (address, dev)}
        return {"ok": False, "error": err or out or "ip route del failed (%d)" % rc}
    log.info("ip6 route %s dev %s removed", address, dev)
    return {"ok": True, "output": "route %s dev %s removed" % (address, dev)}


def _route_list(params):
    _check_params(params, ("dev",))
    dev = _check_bridge(params["dev"])
    rc, out, err = run(["ip", "-j", "-6", "route", "show", "dev", dev], timeout=ROUTE_TIMEOUT)
    if rc != 0:
        return {"ok": False, "error": err or out or "ip route show failed (%d)" % rc}
    try:
        entries = json.loads(out or "[]")
    except ValueError:
        return {"ok": False, "error": "cannot parse ip -j output"}
    routes = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("protocol") in ("kernel", "ra"):
            continue
        dst = entry.get("dst")
        if not isinstance(dst, str) or dst == "default":
            continue
        if "/" in dst:
            dst, _, plen = dst.partition("/")
            if plen != "128":
                continue
        try:
            addr = ipaddress.IPv6Address(dst)
        except ValueError:
            continue
        if _usable_v6(addr):
            routes.append("%s/128" % addr.compressed)
    return {"ok": True, "output": "\n".join(routes), "routes": routes}


def _port_isolate(params):
    _check_params(params, ("dev",))
    dev = _check_tap(params["dev"])
    rc, out, err = run(["bridge", "link", "set", "dev", dev, "isolated", "on"], timeout=ROUTE_TIMEOUT)
    if rc != 0:
        return {"ok": False, "error": err or out or "bridge link set failed (%d)" % rc}
    log.info("bridge port %s isolated", dev)
    return {"ok": True, "output": "port %s isolated" % dev}


def libvirt_ip6_route_add(params):
    """``ip -6 route replace <address> dev <bridge>``."""
    return _guard("libvirt-ip6-route-add", _route_add, params)


def libvirt_ip6_route_del(params):
    """``ip -6 route del <address> dev <bridge>`` (absent route = success)."""
    return _guard("libvirt-ip6-route-del", _route_del, params)


def libvirt_ip6_route_list(params):
    """List the /128 host routes on a bridge."""
    return _guard("libvirt-ip6-route-list", _route_list, params)


def libvirt_bridge_port_isolate(params):
    """``bridge link set dev <tap> isolated on``."""
    return _guard("libvirt-bridge-port-isolate", _port_isolate, params)


ACTIONS = {
    "libvirt-ip6-route-add": libvirt_ip6_route_add,
    "libvirt-ip6-route-del": libvirt_ip6_route_del,
    "libvirt-ip6-route-list": libvirt_ip6_route_list,
    "libvirt-bridge-port-isolate": libvirt_bridge_port_isolate,
}
