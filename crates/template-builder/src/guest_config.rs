//! The settings every template carries, whichever way it is built: the SSH
//! server's policy (keyboard-interactive for the NFT/wallet PAM module, no
//! passwords, no root), cloud-init reading only the NoCloud seed, no service
//! that reaches the network on its own, and a first boot that does only what
//! a VM needs before its guest agent answers.

/// `/etc/ssh/sshd_config.d/50-blockhost.conf`.
pub const SSHD_DROPIN_PATH: &str = "etc/ssh/sshd_config.d/50-blockhost.conf";
pub const SSHD_DROPIN: &str = "\
# Written by blockhost-build-template.
KbdInteractiveAuthentication yes
ChallengeResponseAuthentication yes
UsePAM yes
PasswordAuthentication no
PermitRootLogin no
MaxAuthTries 6
LoginGraceTime 60
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
";

/// `/etc/cloud/cloud.cfg.d/99-blockhost.cfg`.
pub const CLOUD_CFG_PATH: &str = "etc/cloud/cloud.cfg.d/99-blockhost.cfg";
pub const CLOUD_CFG: &str = "\
# Written by blockhost-build-template: the seed ISO (label cidata) is the only
# source of instance data; no metadata service is probed.
datasource_list: [ NoCloud, None ]
# The VM's own SSH host keys, made on its first boot before its guest agent
# starts: Ed25519 and ECDSA, which every OpenSSH since 6.5 prefers. An RSA key
# took most of that boot's wait under TCG (sshd is given these two keys).
ssh_genkeytypes: [ ed25519, ecdsa ]
";

/// Every file above, as (path under the root, content).
pub const FILES: [(&str, &str); 2] = [(SSHD_DROPIN_PATH, SSHD_DROPIN), (CLOUD_CFG_PATH, CLOUD_CFG)];

/// Units masked in every template: timers that fetch from the network, the
/// wait for a network that a VM without a NIC never gets, and what competes
/// with the first boot for the VM's CPU for nothing: e2fsprogs' online check
/// of ext4 on LVM snapshots (a VM's disk has no LVM) and the archiving of
/// crash records from EFI variables (a BIOS VM has none).
pub const MASKED_UNITS: &[&str] = &[
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "systemd-networkd-wait-online.service",
    "e2scrub_reap.service",
    "e2scrub_all.timer",
    "systemd-pstore.service",
];

/// systemd generators masked in every template (each costs PID 1 a process,
/// a fifth of a second under TCG, on every boot and every daemon-reload):
/// those for what a VM booted by GRUB from an MBR disk has no use for — a GPT
/// root disk to discover partitions on, hibernation to resume from, a
/// PackageKit offline update, `systemd.run=` on the kernel command line. The
/// others stay: fstab, getty, cloud-init, SysV and rc-local for what users
/// install, cryptsetup/integritysetup/veritysetup for volumes they set up,
/// debug for `systemd.mask=` when rescuing a VM.
pub const MASKED_GENERATORS: &[&str] = &[
    "systemd-gpt-auto-generator",
    "systemd-hibernate-resume-generator",
    "systemd-system-update-generator",
    "systemd-run-generator",
];

/// `sshd_config` with `Include sshd_config.d/*.conf` first (so the drop-in
/// wins: sshd keeps the first value it reads) and a conflicting
/// `KbdInteractiveAuthentication no` commented out.
pub fn patch_sshd_config(text: &str) -> String {
    let mut out = String::new();
    if !text.lines().any(|l| l.trim_start().starts_with("Include") && l.contains("sshd_config.d")) {
        out.push_str("Include /etc/ssh/sshd_config.d/*.conf\n");
    }
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() == 2 && words[0].eq_ignore_ascii_case("KbdInteractiveAuthentication") && words[1] == "no" {
            out.push('#');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sshd loads exactly the host keys cloud-init makes.
    #[test]
    fn sshd_is_given_the_keys_cloud_init_makes() {
        let made: Vec<&str> = CLOUD_CFG.lines().find_map(|l| l.strip_prefix("ssh_genkeytypes: [ ")).unwrap().trim_end_matches(" ]").split(", ").collect();
        let loaded: Vec<&str> = SSHD_DROPIN.lines().filter_map(|l| l.strip_prefix("HostKey /etc/ssh/ssh_host_")).map(|k| k.trim_end_matches("_key")).collect();
        assert_eq!(made, loaded);
    }

    #[test]
    fn sshd_config_includes_the_dropin_and_loses_the_conflict() {
        let stock = "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n";
        assert_eq!(patch_sshd_config(stock), "Include /etc/ssh/sshd_config.d/*.conf\n#KbdInteractiveAuthentication no\nUsePAM yes\n");
        assert_eq!(patch_sshd_config("UsePAM yes\n"), "Include /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n");
        let patched = patch_sshd_config(stock);
        assert_eq!(patch_sshd_config(&patched), patched);
    }

    #[test]
    fn dropin_has_the_policy() {
        for line in [
            "KbdInteractiveAuthentication yes",
            "PasswordAuthentication no",
            "PermitRootLogin no",
            "MaxAuthTries 6",
            "HostKey /etc/ssh/ssh_host_ed25519_key",
            "HostKey /etc/ssh/ssh_host_ecdsa_key",
        ] {
            assert!(SSHD_DROPIN.lines().any(|l| l == line), "{line}");
        }
    }
}
