//! The settings every template carries, whichever way it is built: the SSH
//! server's policy (keyboard-interactive for the NFT/wallet PAM module, no
//! passwords, no root), cloud-init reading only the NoCloud seed, and no
//! service that reaches the network on its own.

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
";

/// `/etc/cloud/cloud.cfg.d/99-blockhost.cfg`.
pub const CLOUD_CFG_PATH: &str = "etc/cloud/cloud.cfg.d/99-blockhost.cfg";
pub const CLOUD_CFG: &str = "\
# Written by blockhost-build-template: the seed ISO (label cidata) is the only
# source of instance data; no metadata service is probed.
datasource_list: [ NoCloud, None ]
";

/// Units masked in every template: timers that fetch from the network, and the
/// wait for a network that a VM without a NIC never gets.
pub const MASKED_UNITS: &[&str] = &["apt-daily.timer", "apt-daily-upgrade.timer", "systemd-networkd-wait-online.service"];

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
        for line in ["KbdInteractiveAuthentication yes", "PasswordAuthentication no", "PermitRootLogin no", "MaxAuthTries 6"] {
            assert!(SSHD_DROPIN.lines().any(|l| l == line), "{line}");
        }
    }
}
