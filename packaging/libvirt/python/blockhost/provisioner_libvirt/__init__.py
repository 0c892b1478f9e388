"""BlockHost libvirt provisioner: installer wizard plugin.

This package is loaded in-process by the BlockHost web installer through the
manifest entry ``setup.wizard_module = "blockhost.provisioner_libvirt.wizard"``.
The VM lifecycle itself is implemented by the Rust ``blockhost-vm-*``
executables shipped in the same Debian package; only the pieces that the host
loads into Python processes live here.

Modules:

* :mod:`.wizard`   -- Flask blueprint, finalization steps, summary hooks.
* :mod:`.hostinfo` -- host inspection (bridge, IPv4 subnet, default route),
  always through the ``BLOCKHOST_ROOT`` path prefix.
* :mod:`.validate` -- validation/normalisation of the wizard settings, shared
  by the form handler and the finalization steps.
* :mod:`.yamlio`   -- ``db.yaml`` rendering (PyYAML when importable, a small
  hand-written emitter otherwise).
* :mod:`.dbyaml`   -- writing ``db.yaml``: the values every provisioner
  shares, the installer's ``ipv6_pool`` kept.
* :mod:`.ipv4pool` -- validation of the VMs' IPv4 pool and the grace period.
* :mod:`.hostio`   -- host paths under ``BLOCKHOST_ROOT``, commands, atomic
  writes, the template step.
* :mod:`.wizardstep` -- the step's plumbing: on to the next page, the
  session dict, the summary's pool values, the common finalization steps.

``yamlio``, ``dbyaml``, ``ipv4pool``, ``hostio`` and ``wizardstep`` name no
backend: the Proxmox VE plugin (packaging/proxmox) ships the same files
through symbolic links.

Note: ``blockhost/__init__.py`` is owned by blockhost-common; this package
must not ship one.
"""

__all__ = ["wizard"]
