#!/usr/bin/env python3
"""Runs one root-agent request for real: reads the framed request's JSON body
from stdin, calls the action from packaging/libvirt/root-agent-actions/ as BlockHost's root agent
daemon would (its ACTIONS table, blockhost-common's ``_common`` stood in by
tests/python/fixtures/_common.py, whose ``run`` really runs the command), and
prints the reply's JSON. The real-VM test starts it inside the private
libvirtd's network and mount namespaces, so the routes it adds are real and
land on the test bridge only."""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "packaging" / "libvirt" / "root-agent-actions"), str(REPO / "tests" / "python" / "fixtures")]

import libvirt_host  # noqa: E402

request = json.load(sys.stdin)
action = libvirt_host.ACTIONS.get(request.get("action"))
if action is None:
    reply = {"ok": False, "error": "Unknown action: %s" % request.get("action")}
else:
    try:
        reply = action(request.get("params", {}))
    except Exception as exc:  # the daemon's behaviour: a handler exception is an error reply
        reply = {"ok": False, "error": str(exc)}
print(json.dumps(reply))
