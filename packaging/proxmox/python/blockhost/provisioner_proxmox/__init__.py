"""BlockHost Proxmox VE provisioner: installer wizard plugin.

Loaded in-process by the BlockHost web installer through the manifest entry
``setup.wizard_module = "blockhost.provisioner_proxmox.wizard"``. The VM
lifecycle is implemented by the Rust ``blockhost-vm-*`` executables shipped in
the same Debian package, which talk to the Proxmox VE REST API.

Modules:

* :mod:`.wizard`   -- Flask blueprint, finalization steps, summary hooks.
* :mod:`.settings` -- validation of the wizard settings, shared by the form
  handler and the finalization steps.
* :mod:`.yamlio`, :mod:`.dbyaml`, :mod:`.ipv4pool`, :mod:`.hostio`,
  :mod:`.wizardstep` -- the parts every provisioner wizard shares (``db.yaml``
  rendering and writing, the IPv4 pool and grace period, host I/O, the step's
  plumbing); one source in packaging/libvirt, linked here, so this package
  ships its own copy.

Note: ``blockhost/__init__.py`` is owned by blockhost-common; this package
must not ship one.
"""

__all__ = ["wizard"]
