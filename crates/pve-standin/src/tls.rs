//! Certificates made at start, shaped like a PVE cluster's: a self-signed
//! cluster CA (`pve-root-ca.pem`) that signs the node certificate pveproxy
//! serves, valid for `127.0.0.1` and `localhost`.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub struct Certificates {
    pub ca_pem: String,
    /// The node certificate's SHA-256 fingerprint, `AA:BB:...` as PVE shows it.
    pub fingerprint: String,
    pub server: Arc<rustls::ServerConfig>,
}

pub fn generate() -> Result<Certificates, String> {
    let err = |e: rcgen::Error| format!("certificate generation: {e}");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Proxmox Virtual Environment");
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;

    let mut node_params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).map_err(err)?;
    node_params.distinguished_name.push(DnType::CommonName, "pve1.standin");
    let node_key = KeyPair::generate().map_err(err)?;
    let node = node_params.signed_by(&node_key, &ca, &ca_key).map_err(err)?;

    let chain = vec![node.der().clone(), CertificateDer::from(ca.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(node_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    Ok(Certificates { ca_pem: ca.pem(), fingerprint: fingerprint(node.der()), server: Arc::new(server) })
}

pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}
