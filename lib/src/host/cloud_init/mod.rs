//! Cloud-init NoCloud documents for a VM: user-data rendered from
//! blockhost-common's template with Python `string.Template` semantics (or
//! operator content verbatim), meta-data with a fresh instance-id, and a
//! netplan v2 network-config with the pool's real prefix length.

pub mod template;
pub mod user_data_file;

use crate::host::config::AuthDefaults;
use crate::host::paths::HostPaths;
use crate::model::{Bootstrap, BootstrapFormat, NicSpec};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::Ipv4Addr;

pub const DEFAULT_TEMPLATE: &str = "nft-auth.yaml";
const FALLBACK_TEMPLATE: &str = include_str!("default-user-data.yaml");

#[derive(Debug, thiserror::Error)]
pub enum CloudInitError {
    #[error("{path}: cannot read cloud-init template: {}", crate::host::io_words::io_words(.1), path = .0.display())]
    Template(std::path::PathBuf, std::io::Error),
    #[error("cannot read random bytes for the VM secret: {0}")]
    Random(std::io::Error),
}

/// What a VM's bootstrap is made from.
#[derive(Debug, Clone)]
pub struct BootstrapInput<'a> {
    pub name: &'a str,
    pub username: &'a str,
    pub wallet: &'a str,
    pub nft_token_id: Option<&'a str>,
    pub nic: Option<&'a NicSpec>,
    pub dns_zone: Option<&'a str>,
    pub auth: AuthDefaults,
    /// `--cloud-init-content`: used verbatim instead of the template.
    pub verbatim: Option<String>,
}

pub fn render(paths: &HostPaths, input: &BootstrapInput) -> Result<Bootstrap, CloudInitError> {
    let (user_data, format) = match &input.verbatim {
        Some(content) => (content.clone(), BootstrapFormat::Verbatim),
        None => {
            let template = load_template(paths, DEFAULT_TEMPLATE)?;
            let vars = variables(input, &random_hex(32)?);
            (template::safe_substitute(&template, |k| vars.get(k)), BootstrapFormat::CloudConfig)
        }
    };
    let sha256 = Sha256::digest(user_data.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    Ok(Bootstrap {
        meta_data: format!("instance-id: {}-{}\nlocal-hostname: {}\n", input.name, random_hex(8)?, input.name),
        network_config: network_config(input.nic),
        user_data,
        format,
        sha256,
    })
}

/// blockhost-common's installed template, or the built-in fallback when absent.
fn load_template(paths: &HostPaths, name: &str) -> Result<String, CloudInitError> {
    let path = paths.share_dir().join("cloud-init/templates").join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FALLBACK_TEMPLATE.to_string()),
        Err(e) => Err(CloudInitError::Template(path, e)),
    }
}

fn random_hex(bytes: usize) -> Result<String, CloudInitError> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).map_err(CloudInitError::Random)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The template variables of blockhost-facts §3.3.
/// The NoCloud seed of a bootstrap: its three documents and the `cidata` ISO
/// that carries them, as (file name, content) in the order they are written.
pub fn nocloud_seed(bootstrap: &Bootstrap) -> Result<Vec<(&'static str, Vec<u8>)>, iso9660::SeedIsoError> {
    let documents = [
        ("meta-data", bootstrap.meta_data.as_bytes()),
        ("network-config", bootstrap.network_config.as_bytes()),
        ("user-data", bootstrap.user_data.as_bytes()),
    ];
    let files: Vec<iso9660::SeedFile> = documents.iter().map(|(name, data)| iso9660::SeedFile { name, data }).collect();
    let iso = iso9660::build_seed_iso("cidata", &files)?;
    let mut seed: Vec<(&'static str, Vec<u8>)> = documents.iter().map(|(name, data)| (*name, data.to_vec())).collect();
    seed.push(("cidata.iso", iso));
    Ok(seed)
}

pub fn variables(input: &BootstrapInput, secret_key: &str) -> BTreeMap<&'static str, String> {
    let ipv4 = input.nic.map(|n| n.ipv4.to_string()).unwrap_or_default();
    let ipv6 = input.nic.and_then(|n| n.ipv6);
    let signing_domain = match (ipv6, input.dns_zone) {
        (Some(v6), Some(zone)) => format!("{:x}.{zone}", u128::from(v6) as u64),
        _ => String::new(),
    };
    let signing_host = match (signing_domain.is_empty(), ipv6) {
        (false, _) => signing_domain.clone(),
        (true, Some(v6)) => format!("[{v6}]"),
        (true, None) => ipv4.clone(),
    };
    let fqdn = if signing_domain.is_empty() { format!("{}.local", input.name) } else { signing_domain.clone() };
    BTreeMap::from([
        ("VM_NAME", input.name.to_string()),
        ("VM_FQDN", fqdn),
        ("VM_IP", ipv4),
        ("VM_IPV6", ipv6.map(|v| v.to_string()).unwrap_or_default()),
        ("SIGNING_DOMAIN", signing_domain),
        ("SIGNING_HOST", signing_host),
        ("USERNAME", input.username.to_string()),
        ("WALLET_ADDRESS", input.wallet.to_string()),
        ("NFT_TOKEN_ID", input.nft_token_id.unwrap_or("").to_string()),
        ("OTP_LENGTH", input.auth.otp_length.to_string()),
        ("OTP_TTL", input.auth.otp_ttl_seconds.to_string()),
        ("SECRET_KEY", secret_key.to_string()),
        ("SSH_KEYS", String::new()),
    ])
}

/// A stable locally administered MAC (QEMU's 52:54:00 prefix) for a VM.
pub fn mac_for(name: &str, ipv4: Option<Ipv4Addr>) -> String {
    let digest = Sha256::digest(format!("{name}/{}", ipv4.map(|i| i.to_string()).unwrap_or_default()));
    format!("52:54:00:{:02x}:{:02x}:{:02x}", digest[0], digest[1], digest[2])
}

/// Netplan v2 for the one NIC, or `config: disabled` for a VM without one
/// (cloud-init would otherwise wait for a device that never appears). The
/// default routes are `gateway4`/`gateway6`: bookworm's cloud-init renders
/// them for ifupdown as `gateway`, which ifupdown sets with `ip route ...
/// onlink` (the IPv6 gateway is outside the VM's /128), while the same routes
/// under `routes` become `route` commands of net-tools, which the template
/// does not have, and the IPv6 one loses its /0 (it is rendered as ::/64).
pub fn network_config(nic: Option<&NicSpec>) -> String {
    let Some(nic) = nic else { return "config: disabled\n".to_string() };
    let mut addresses = vec![format!("{}/{}", nic.ipv4, nic.ipv4_prefix_len)];
    let mut gateways = String::new();
    let mut nameservers: Vec<String> = Vec::new();
    if let Some(gw) = nic.gateway {
        gateways.push_str(&format!("    gateway4: {gw}\n"));
        nameservers.push(gw.to_string());
    }
    if let Some(v6) = nic.ipv6 {
        addresses.push(format!("{v6}/128"));
        if let Some(gw6) = nic.ipv6_gateway {
            gateways.push_str(&format!("    gateway6: \"{gw6}\"\n"));
        }
    }
    let mut out = format!(
        "version: 2\nethernets:\n  id0:\n    match:\n      macaddress: \"{}\"\n    set-name: eth0\n    addresses:\n{}{gateways}",
        nic.mac,
        addresses.iter().map(|a| format!("      - \"{a}\"\n")).collect::<String>()
    );
    if !nameservers.is_empty() {
        out.push_str(&format!("    nameservers:\n      addresses: [{}]\n", nameservers.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(ipv6: bool) -> NicSpec {
        NicSpec {
            bridge: "br0".into(),
            ipv4: Ipv4Addr::new(10, 20, 0, 5),
            ipv4_prefix_len: 22,
            gateway: Some(Ipv4Addr::new(10, 20, 0, 1)),
            ipv6: ipv6.then(|| "2001:db8::1:0:0:3".parse().unwrap()),
            ipv6_gateway: ipv6.then(|| "2001:db8::1".parse().unwrap()),
            mac: "52:54:00:01:02:03".into(),
        }
    }

    fn input<'a>(nic: Option<&'a NicSpec>, zone: Option<&'a str>) -> BootstrapInput<'a> {
        BootstrapInput {
            name: "vm1",
            username: "admin",
            wallet: "0xabc",
            nft_token_id: None,
            nic,
            dns_zone: zone,
            auth: AuthDefaults { otp_length: 6, otp_ttl_seconds: 300 },
            verbatim: None,
        }
    }

    #[test]
    fn signing_host_precedence() {
        let with_v6 = nic(true);
        let v = variables(&input(Some(&with_v6), Some("vm.example.net")), "s");
        assert_eq!(v["SIGNING_DOMAIN"], "1000000000003.vm.example.net");
        assert_eq!(v["SIGNING_HOST"], v["SIGNING_DOMAIN"]);
        assert_eq!(v["VM_FQDN"], v["SIGNING_DOMAIN"]);
        let v = variables(&input(Some(&with_v6), None), "s");
        assert_eq!(v["SIGNING_HOST"], "[2001:db8::1:0:0:3]");
        assert_eq!(v["VM_FQDN"], "vm1.local");
        let v4 = nic(false);
        let v = variables(&input(Some(&v4), Some("z")), "s");
        assert_eq!((v["SIGNING_HOST"].as_str(), v["VM_IPV6"].as_str()), ("10.20.0.5", ""));
        assert_eq!(v.len(), 13);
    }

    #[test]
    fn network_config_uses_the_real_prefix_and_both_gateways() {
        let text = network_config(Some(&nic(true)));
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let eth = &doc["ethernets"]["id0"];
        assert_eq!(eth["addresses"][0], "10.20.0.5/22");
        assert_eq!(eth["addresses"][1], "2001:db8::1:0:0:3/128");
        assert_eq!(eth["match"]["macaddress"], "52:54:00:01:02:03");
        assert_eq!((eth["gateway4"].as_str(), eth["gateway6"].as_str()), (Some("10.20.0.1"), Some("2001:db8::1")));
        assert!(eth.get("routes").is_none(), "routes would be rendered as net-tools commands: {text}");
        assert_eq!(eth["nameservers"]["addresses"][0], "10.20.0.1");
        let v4: serde_json::Value = serde_saphyr::from_str(&network_config(Some(&nic(false)))).unwrap();
        assert!(v4["ethernets"]["id0"].get("gateway6").is_none());
        assert_eq!(network_config(None), "config: disabled\n");
    }

    #[test]
    fn fallback_template_renders_to_valid_cloud_config() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(tmp.path());
        let v4 = nic(false);
        let b = render(&paths, &input(Some(&v4), None)).unwrap();
        assert!(b.user_data.starts_with("#cloud-config\n"));
        assert!(b.user_data.contains("gecos: \"wallet=0xabc\""));
        assert!(b.user_data.contains("after $UPTIME seconds"));
        assert!(!b.user_data.contains("${"));
        let doc: serde_json::Value = serde_saphyr::from_str(&b.user_data).unwrap();
        assert_eq!(doc["users"][0]["name"], "admin");
        assert_eq!(b.sha256.len(), 64);
        assert!(b.meta_data.starts_with("instance-id: vm1-"));
        assert_ne!(render(&paths, &input(Some(&v4), None)).unwrap().meta_data, b.meta_data, "fresh instance-id");
    }

    #[test]
    fn installed_template_wins_and_verbatim_is_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(tmp.path());
        let dir = paths.share_dir().join("cloud-init/templates");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(DEFAULT_TEMPLATE), "#cloud-config\nhostname: $VM_NAME $$HOME ${NOPE}\n").unwrap();
        let b = render(&paths, &input(None, None)).unwrap();
        assert_eq!(b.user_data, "#cloud-config\nhostname: vm1 $HOME ${NOPE}\n");
        let mut verbatim = input(None, None);
        verbatim.verbatim = Some("#!/bin/sh\necho $VM_NAME\n".into());
        let b = render(&paths, &verbatim).unwrap();
        assert_eq!((b.user_data.as_str(), b.format), ("#!/bin/sh\necho $VM_NAME\n", BootstrapFormat::Verbatim));
    }

    #[test]
    fn macs_are_stable_and_local() {
        let a = mac_for("vm1", Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(a, mac_for("vm1", Some(Ipv4Addr::new(10, 0, 0, 5))));
        assert!(a.starts_with("52:54:00:"));
        assert_ne!(a, mac_for("vm2", Some(Ipv4Addr::new(10, 0, 0, 5))));
    }
}
