"""The plumbing every BlockHost provisioner's wizard step shares: going on to
the installer's next page, finding the step's dict in the session or the
finalization config, the summary's pool values and the finalization steps
that every provisioner has.

One source file: the libvirt plugin ships it from here, the Proxmox VE plugin
through a symbolic link in its package folder (each Debian package installs
its own copy). Nothing here names a backend: callers pass their session key
and their logger, so messages keep the plugin's logger name.
"""

from flask import current_app, redirect, session, url_for

from . import ipv4pool

NEXT_ENDPOINTS = ("wizard_connectivity", "wizard_ipv6")
TEMPLATE_HINT = "(this may take several minutes)"


def next_endpoint():
    """The first of :data:`NEXT_ENDPOINTS` the installer registered, or None."""
    for endpoint in NEXT_ENDPOINTS:
        if endpoint in current_app.view_functions:
            return endpoint
    return None


def store_and_continue(key, values, log):
    """Store *values* as ``session[key]`` and redirect to the next wizard page;
    a plain-text 500 (nothing stored) when the installer has none."""
    endpoint = next_endpoint()
    if endpoint is None:
        log.error("installer has neither wizard_connectivity nor wizard_ipv6")
        return (
            "Installer error: no next wizard step (wizard_connectivity or wizard_ipv6) is registered.",
            500,
            {"Content-Type": "text/plain; charset=utf-8"},
        )
    session[key] = values
    session.modified = True
    return redirect(url_for(endpoint))


def session_dict(session_like, key, marker):
    """The step's dict: ``session_like[key]``, or *session_like* itself when it
    already is that dict (it holds *marker*); ``{}`` otherwise."""
    if not hasattr(session_like, "get"):
        return {}
    data = session_like.get(key)
    if isinstance(data, dict):
        return data
    if marker in session_like:
        return session_like
    return {}


def provisioner(config):
    """The step's settings in a finalization step's config, else ``{}``."""
    prov = config.get("provisioner") if isinstance(config, dict) else None
    return prov if isinstance(prov, dict) else {}


def settings_error(errors):
    """The message of a finalization step whose settings do not validate."""
    return "Invalid provisioner settings: " + "; ".join("%s: %s" % (k, errors[k]) for k in sorted(errors))


def pool_summary(data):
    """The summary's VM address range, gateway and grace period of the step's dict."""
    start, end = data.get("ip_start", ""), data.get("ip_end", "")
    return {
        "ip_range": "%s - %s" % (start, end) if start and end else "",
        "gateway": data.get("gateway", ""),
        "gc_grace_days": data.get("gc_grace_days", ipv4pool.DEFAULT_GRACE_DAYS),
    }


def db_config_step(finalize):
    """The ``db_config`` entry of ``get_finalization_steps()``."""
    return ("db_config", "Writing VM database configuration", finalize)


def template_step(finalize):
    """The ``template`` entry of ``get_finalization_steps()``."""
    return ("template", "Building VM template", finalize, TEMPLATE_HINT)
