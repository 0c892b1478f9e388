"""Host I/O shared by BlockHost's provisioner wizard plugins.

One source file: the libvirt plugin ships it from here, the Proxmox VE plugin
through a symbolic link in its package folder (each Debian package installs
its own copy, so either installs alone). Nothing here names a backend.

* :func:`host_path` maps an absolute host path under the root prefix read
  from ``BLOCKHOST_ROOT`` (default ``/``) at call time, so a plugin can be
  exercised against a scratch directory;
* :func:`run` executes an argument list, never a shell string;
* :func:`write_atomic` replaces a file with a given mode and group;
* :func:`build_template` runs ``blockhost-build-template`` (the template step).
"""

import grp
import logging
import os
import shutil
import subprocess
import tempfile

log = logging.getLogger("blockhost.provisioner")

BLOCKHOST_GROUP = "blockhost"
TEMPLATE_TIMEOUT = 30 * 60


def host_root():
    """The root prefix under which host paths are resolved (default ``/``)."""
    return os.environ.get("BLOCKHOST_ROOT") or "/"


def host_path(path):
    """Map an absolute host path (e.g. ``/etc/blockhost``) under the root prefix."""
    return os.path.join(host_root(), path.lstrip("/"))


def run(cmd, timeout=120):
    """Run *cmd* (an argument list, never a shell string).

    Returns ``(returncode, stdout, stderr)`` with both outputs stripped; a
    timeout yields rc 124 and a missing executable rc 127, never an exception.
    Messages are forced to the C locale so answers can be matched.
    """
    if not isinstance(cmd, (list, tuple)) or not cmd or not all(isinstance(a, str) for a in cmd):
        raise TypeError("run() needs a non-empty list of strings")
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        proc = subprocess.run(
            list(cmd),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return 124, "", "%s timed out after %s s" % (cmd[0], timeout)
    except FileNotFoundError:
        return 127, "", "%s: command not found" % cmd[0]
    except OSError as exc:
        return 126, "", "%s: %s" % (cmd[0], exc)
    return proc.returncode, proc.stdout.strip(), proc.stderr.strip()


def last_line(*texts):
    """The last non-blank line of the first text that has one, else ""."""
    for text in texts:
        lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
        if lines:
            return lines[-1]
    return ""


def blockhost_gid():
    """The blockhost group's id, or None (with a warning) when it does not exist."""
    try:
        return grp.getgrnam(BLOCKHOST_GROUP).gr_gid
    except KeyError:
        log.warning("group %s does not exist; files keep the default group", BLOCKHOST_GROUP)
        return None


def write_atomic(path, text, mode, gid):
    """Replace *path* with *text*, mode *mode*, group *gid* (None: unchanged).

    The file never exists with another mode or partly written: a temporary
    file in the same directory is completed, then renamed over it.
    """
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), mode)
            if gid is not None:
                try:
                    os.fchown(fh.fileno(), -1, gid)
                except PermissionError:
                    if os.geteuid() == 0:
                        raise
                    log.warning("cannot chgrp %s (not running as root); skipped", path)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def build_template(runner):
    """Build the VM template with ``blockhost-build-template`` through *runner*
    (30 minute limit); ``(True, None)`` or ``(False, message)``."""
    cmd = os.environ.get("BLOCKHOST_BUILD_TEMPLATE") or shutil.which("blockhost-build-template")
    if not cmd:
        return False, "blockhost-build-template not found in PATH."
    rc, out, err = runner([cmd], timeout=TEMPLATE_TIMEOUT)
    if rc == 124:
        return False, "Template build timed out after %d minutes." % (TEMPLATE_TIMEOUT // 60)
    if rc != 0:
        return False, "Template build failed: %s" % (last_line(err, out) or "exit status %d" % rc)
    log.info("template built: %s", last_line(out))
    return True, None


def guarded_step(name, func, config):
    """``func(config)``, with any exception turned into ``(False, message)``:
    a finalization step must never raise."""
    try:
        return func(config)
    except Exception as exc:
        log.exception("finalization step %s failed", name)
        return False, "%s step failed: %s" % (name, exc)
