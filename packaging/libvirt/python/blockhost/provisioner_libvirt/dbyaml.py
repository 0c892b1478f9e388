"""``/etc/blockhost/db.yaml`` as every BlockHost provisioner's ``db_config``
step writes it: the values all of them share and the write itself, which
keeps the ``ipv6_pool`` the installer's IPv6 step put in the previous file.
Each plugin builds the document (its keys, in its order); :mod:`.yamlio`
renders it.

One source file: the libvirt plugin ships it from here, the Proxmox VE plugin
through a symbolic link in its package folder (each Debian package installs
its own copy). Nothing here names a backend.
"""

from . import hostio, yamlio

PATH = "/etc/blockhost/db.yaml"
MODE = 0o640
DB_FILE = "/var/lib/blockhost/vms.json"
DEFAULT_EXPIRY_DAYS = 30


def ip_pool(clean):
    """The ``ip_pool`` mapping of validated settings."""
    return {
        "network": clean["ip_network"],
        "start": clean["ip_start"],
        "end": clean["ip_end"],
        "gateway": clean["gateway"],
    }


def _previous(path, log):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read existing %s: %s", path, exc)
        return ""


def write(doc, log):
    """Replace db.yaml with *doc* (mode 0640, group blockhost), adding the
    previous file's ``ipv6_pool``; *log* is the plugin's logger."""
    path = hostio.host_path(PATH)
    ipv6_pool, ipv6_raw = yamlio.preserved_key(_previous(path, log), "ipv6_pool")
    if ipv6_pool is not None:
        doc["ipv6_pool"] = ipv6_pool
    text = yamlio.render_db_yaml(doc, None if ipv6_pool is not None else ipv6_raw)
    hostio.write_atomic(path, text, MODE, hostio.blockhost_gid())
    log.info("wrote %s", path)
