//! What the throw-away builder VM is told to do, as a NoCloud seed: install the
//! extra packages from a second ISO, apply the template policy, report on the
//! serial console, power off; at power-off a one-shot unit removes everything
//! that must differ per VM (after cloud-init has finished writing its state).

use super::error::TemplateError;
use super::guest_config::{FILES, MASKED_UNITS};
use super::plan::ExtraDeb;
use iso9660::{build_seed_iso, SeedFile};

/// Serial console markers the host reads back.
pub const MARKER: &str = "BLOCKHOST-TEMPLATE:";
pub const OK: &str = "BLOCKHOST-TEMPLATE: OK";
pub const SEALED: &str = "BLOCKHOST-TEMPLATE: SEALED";
pub const PACKAGES_BEGIN: &str = "BLOCKHOST-TEMPLATE: PACKAGES";
pub const PACKAGES_END: &str = "BLOCKHOST-TEMPLATE: END PACKAGES";
/// Volume label of the ISO carrying the extra packages.
pub const DEBS_LABEL: &str = "BHDEBS";

const SETUP_PATH: &str = "/usr/local/sbin/blockhost-template-setup";
const SEAL_PATH: &str = "/usr/local/sbin/blockhost-template-seal";
const SEAL_UNIT: &str = "blockhost-template-seal.service";

fn setup_script() -> String {
    format!(
        r#"#!/bin/sh
# Customises the template once, inside the builder VM.
set -u
say() {{ echo "{MARKER} $*" > /dev/ttyS0; }}
fail() {{ say "FAILED: $*"; exit 1; }}
export DEBIAN_FRONTEND=noninteractive
if [ -e /dev/disk/by-label/{DEBS_LABEL} ]; then
    mkdir -p /run/blockhost-debs
    mount -o ro /dev/disk/by-label/{DEBS_LABEL} /run/blockhost-debs || fail "cannot mount the package ISO"
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
    dpkg -i /run/blockhost-debs/*.deb || fail "installing the template packages (their dependencies must be in the image: the builder VM has no network)"
    rm -f /usr/sbin/policy-rc.d
    umount /run/blockhost-debs
fi
for package in cloud-init openssh-server qemu-guest-agent sudo; do
    dpkg-query -W "$package" >/dev/null 2>&1 || fail "the image lacks $package"
done
sed -i 's/^KbdInteractiveAuthentication no/#&/' /etc/ssh/sshd_config
grep -q '^Include /etc/ssh/sshd_config.d/' /etc/ssh/sshd_config || sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config
systemctl mask {masked} || fail "masking units"
# Init scripts shadowed by a native unit: systemd ignores them, but
# `systemctl enable` of the unit would run update-rc.d for them (seconds).
for script in /etc/init.d/*; do
    name=${{script##*/}}
    for unit in /etc/systemd/system/$name.service /lib/systemd/system/$name.service; do
        if [ -e "$unit" ] || [ -L "$unit" ]; then
            rm -f "$script" /etc/rc?.d/[SK][0-9][0-9]"$name"
            break
        fi
    done
done
systemctl enable ssh || fail "enabling ssh"
{{ echo "{PACKAGES_BEGIN}"; dpkg-query -W -f '${{Package}}\t${{Version}}\n'; echo "{PACKAGES_END}"; }} > /dev/ttyS0
systemctl start --no-block {SEAL_UNIT} || fail "arming the seal"
say OK
"#,
        masked = MASKED_UNITS.join(" ")
    )
}

fn seal_script() -> String {
    format!(
        r#"#!/bin/sh
# Runs at the builder VM's power-off, after cloud-init has stopped.
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id && ln -s /etc/machine-id /var/lib/dbus/machine-id
rm -rf /var/lib/cloud/*
apt-get clean
rm -rf /var/lib/apt/lists/*
find /var/log -type f -delete
rm -f /etc/systemd/system/{SEAL_UNIT} {SETUP_PATH} {SEAL_PATH}
fstrim -av >/dev/null 2>&1
sync
echo "{SEALED}" > /dev/ttyS0
"#
    )
}

fn seal_unit() -> String {
    format!(
        "[Unit]\nDescription=Seal the BlockHost template at power-off\n\
         # Stopped after cloud-final: cloud-init's state is complete by then.\nBefore=cloud-final.service\n\n\
         [Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\nExecStop={SEAL_PATH}\n"
    )
}

/// A YAML block scalar holding `text`, indented for a `write_files` entry.
fn block(text: &str) -> String {
    text.lines().map(|l| if l.is_empty() { "\n".to_string() } else { format!("      {l}\n") }).collect()
}

pub fn user_data() -> String {
    let mut out = String::from("#cloud-config\n# blockhost-build-template: customise this image once, then power off.\nwrite_files:\n");
    let settings = FILES.iter().map(|(path, content)| (format!("/{path}"), "0644", content.to_string()));
    for (path, mode, content) in settings.chain([
        (SETUP_PATH.to_string(), "0755", setup_script()),
        (SEAL_PATH.to_string(), "0755", seal_script()),
        (format!("/etc/systemd/system/{SEAL_UNIT}"), "0644", seal_unit()),
    ]) {
        out.push_str(&format!("  - path: {path}\n    permissions: '{mode}'\n    content: |\n{}", block(&content)));
    }
    out.push_str(&format!("runcmd:\n  - [ {SETUP_PATH} ]\npower_state:\n  mode: poweroff\n  condition: true\n"));
    out
}

/// The NoCloud seed (label `cidata`).
pub fn seed_iso(instance_id: &str) -> Result<Vec<u8>, TemplateError> {
    let user_data = user_data();
    let meta_data = format!("instance-id: {instance_id}\nlocal-hostname: blockhost-template-builder\n");
    build_seed_iso(
        "cidata",
        &[
            SeedFile { name: "user-data", data: user_data.as_bytes() },
            SeedFile { name: "meta-data", data: meta_data.as_bytes() },
            SeedFile { name: "network-config", data: b"config: disabled\n" },
        ],
    )
    .map_err(|e| TemplateError::step("building the builder VM's seed", e.to_string()))
}

/// The extra packages as an ISO labelled `BHDEBS`; `None` without any.
pub fn debs_iso(debs: &[ExtraDeb]) -> Result<Option<Vec<u8>>, TemplateError> {
    if debs.is_empty() {
        return Ok(None);
    }
    let contents = debs
        .iter()
        .map(|d| std::fs::read(&d.path).map_err(TemplateError::io(&d.path)))
        .collect::<Result<Vec<_>, _>>()?;
    let files: Vec<SeedFile> =
        debs.iter().zip(&contents).map(|(d, data)| SeedFile { name: &d.file_name, data }).collect();
    build_seed_iso(DEBS_LABEL, &files)
        .map(Some)
        .map_err(|e| TemplateError::step("building the package ISO", e.to_string()))
}

/// Package versions listed between the markers in the serial log.
pub fn packages_from_log(log: &str) -> Vec<super::manifest::PackageVersion> {
    let mut packages: Vec<_> = log
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .skip_while(|l| !l.ends_with(PACKAGES_BEGIN))
        .skip(1)
        .take_while(|l| !l.ends_with(PACKAGES_END))
        .filter_map(|l| {
            let (name, version) = l.split_once('\t')?;
            Some(super::manifest::PackageVersion { name: name.to_string(), version: version.to_string() })
        })
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_yaml_with_every_file() {
        let text = user_data();
        assert!(text.starts_with("#cloud-config\n"));
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let files = doc["write_files"].as_array().unwrap();
        let content = |path: &str| files.iter().find(|f| f["path"] == path).unwrap()["content"].as_str().unwrap().to_string();
        for (path, expected) in FILES {
            assert_eq!(content(&format!("/{path}")), expected, "{path}");
        }
        assert_eq!(content(SETUP_PATH), setup_script());
        assert_eq!(content(SEAL_PATH), seal_script());
        assert_eq!(doc["power_state"]["mode"], "poweroff");
        assert_eq!(doc["runcmd"][0][0], SETUP_PATH);
    }

    #[test]
    fn scripts_are_valid_shell() {
        for script in [setup_script(), seal_script()] {
            let status = std::process::Command::new("sh").args(["-n", "-c", &script]).status().unwrap();
            assert!(status.success(), "{script}");
        }
    }

    #[test]
    fn reads_the_package_list_back() {
        let log = "boot noise\r\nBLOCKHOST-TEMPLATE: PACKAGES\r\nsudo\t1.9\r\nadduser\t3.134\r\nBLOCKHOST-TEMPLATE: END PACKAGES\r\nnoise\tx\r\n";
        let got: Vec<_> = packages_from_log(log).into_iter().map(|p| format!("{}={}", p.name, p.version)).collect();
        assert_eq!(got, ["adduser=3.134", "sudo=1.9"]);
    }

    #[test]
    fn isos_are_built() {
        assert_eq!(&seed_iso("i-1").unwrap()[0x8001..0x8006], b"CD001");
        assert_eq!(debs_iso(&[]).unwrap(), None);
    }
}
