//! The sections every executable's `--help` ends with and its man page has
//! beyond the options: EXIT STATUS, FILES, ENVIRONMENT, EXAMPLES. One
//! definition per executable (`Executable::MANUAL`); `--help` shows it as text
//! and xtask renders the same entries as man page sections.

/// A term and what it means (`0` and "the VM was created").
pub type Entry = (&'static str, &'static str);

/// What one executable's manual says beyond its options.
#[derive(Debug, Clone, Copy)]
pub struct Manual {
    pub exit_status: &'static [Entry],
    pub examples: &'static [Entry],
}

/// The exit codes of a verb that does its work or fails.
pub const STANDARD_EXIT: &[Entry] = &[
    ("0", "the work is done (or there was nothing to do)"),
    ("1", "it failed; one line on stderr says what failed and what to do"),
    ("2", "the command line could not be parsed"),
];

/// The files every executable reads or writes, under BLOCKHOST_ROOT.
pub const FILES: &[Entry] = &[
    ("/etc/blockhost/db.yaml", "pools, bridge, VMID range, grace and expiry days, bounds of the waits, the overcommit: ratios a create's host capacity check allows (cpu 4, memory 1, disk 2), the libvirt: profile, the proxmox: API, storages and template VMID"),
    ("/var/lib/blockhost/vms.json", "the VM database shared with the other BlockHost components (db.yaml db_file), and its .lock"),
    ("/usr/share/blockhost/provisioner.json", "the manifest that names the active backend"),
    ("/etc/blockhost/network-modes.enabled/", "the one enabled network mode"),
    ("/var/lib/blockhost/templates/", "the VM template versions blockhost-build-template builds (libvirt runs VMs on them; Proxmox VE imports the current one as its template VM)"),
    ("/run/blockhost/provisioning.lock", "exists while a create runs"),
];

pub const ENVIRONMENT: &[Entry] = &[
    ("BLOCKHOST_ROOT", "moves every host path under this directory (tests, demos); default /"),
    ("BLOCKHOST_PROVIDER", "the backend to use instead of the manifest's (libvirt, proxmox, mock)"),
    ("BLOCKHOST_DB_LOCK_TIMEOUT", "seconds to wait for the VM database lock, 1-300 (db.yaml db_lock_timeout_seconds)"),
    ("BLOCKHOST_MOCK_<KNOB>", "a fault or behaviour knob of the mock backend (see its knobs.yaml)"),
];

impl Manual {
    /// Its sections, headings first, in the order the man page has them.
    pub fn sections(&self) -> [(&'static str, &'static [Entry]); 4] {
        [("EXIT STATUS", self.exit_status), ("FILES", FILES), ("ENVIRONMENT", ENVIRONMENT), ("EXAMPLES", self.examples)]
    }

    /// The text `--help` ends with.
    pub fn help_text(&self) -> String {
        let mut text = String::new();
        for (heading, entries) in self.sections() {
            text.push_str(&format!("{heading}:\n"));
            for (term, meaning) in entries {
                text.push_str(&format!("  {term}\n      {meaning}\n"));
            }
            text.push('\n');
        }
        text.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_text_has_the_four_sections_in_order_with_every_entry() {
        let manual = Manual { exit_status: &[("0", "done")], examples: &[("blockhost-vm-list", "every VM")] };
        let text = manual.help_text();
        assert!(text.starts_with("EXIT STATUS:\n  0\n      done\n\nFILES:\n  /etc/blockhost/db.yaml\n"), "{text}");
        assert!(text.ends_with("EXAMPLES:\n  blockhost-vm-list\n      every VM"), "{text}");
        let at = |heading: &str| text.find(heading).unwrap();
        assert!(at("EXIT STATUS:") < at("FILES:") && at("FILES:") < at("ENVIRONMENT:") && at("ENVIRONMENT:") < at("EXAMPLES:"));
    }
}
