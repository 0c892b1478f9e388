//! TLS to the PVE API, always verified: against a pinned SHA-256 fingerprint
//! of the served certificate (what `pvenode cert info` shows), or against a
//! private CA (a cluster's `/etc/pve/pve-root-ca.pem`). There is no
//! "accept anything" mode.
//!
//! ureq's own TLS settings cannot pin a fingerprint, so this is a ureq
//! connector (its `unversioned` transport API) over rustls with our verifier.
//! The verifier remembers the fingerprint it was shown, so that a refusal can
//! say which certificate was served.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter};

/// What the served certificate is checked against.
#[derive(Clone, PartialEq, Eq)]
pub enum Trust {
    Fingerprint([u8; 32]),
    /// DER certificates of the private CA.
    Ca(Vec<Vec<u8>>),
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fingerprint(pin) => write!(f, "Fingerprint({})", show_fingerprint(pin)),
            Self::Ca(certs) => write!(f, "Ca({} certificates)", certs.len()),
        }
    }
}

/// `AA:BB:...` (32 pairs, either case) as PVE prints fingerprints.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let bytes: Vec<u8> = text.trim().split(':').map(|pair| (pair.len() == 2).then(|| u8::from_str_radix(pair, 16).ok()).flatten()).collect::<Option<_>>()?;
    bytes.try_into().ok()
}

pub fn show_fingerprint(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The certificates of a PEM file (a CA bundle).
pub fn parse_ca_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<Vec<u8>> =
        CertificateDer::pem_slice_iter(pem).map(|c| c.map(|c| c.to_vec())).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// The fingerprint the server showed on the last handshake that failed verification.
pub type Observed = Arc<Mutex<Option<String>>>;

pub struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConnector")
    }
}

impl TlsConnector {
    pub fn new(trust: &Trust, observed: Observed) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = match trust {
            Trust::Fingerprint(_) => None,
            Trust::Ca(certs) => {
                let mut roots = RootCertStore::empty();
                for cert in certs {
                    roots.add(CertificateDer::from(cert.clone())).map_err(|e| format!("CA certificate: {e}"))?;
                }
                Some(WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().map_err(|e| e.to_string())?)
            }
        };
        let pin = match trust {
            Trust::Fingerprint(pin) => Some(*pin),
            Trust::Ca(_) => None,
        };
        let verifier = Arc::new(Verifier { pin, webpki, provider: provider.clone(), observed });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Self { config: Arc::new(config) })
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let name = ServerName::try_from(host).map_err(|_| ureq::Error::BadUri(details.uri.to_string()))?;
        let mut conn = ClientConnection::new(self.config.clone(), name).map_err(|e| ureq::Error::Io(std::io::Error::other(e)))?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock).map_err(|e| ureq::Error::Io(std::io::Error::other(HandshakeFailed(e))))?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(TlsTransport { buffers, stream: StreamOwned { conn, sock } })))
    }
}

/// A TLS handshake that failed: nothing of the request had been sent.
#[derive(Debug)]
pub struct HandshakeFailed(pub std::io::Error);

impl fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS handshake failed: {}", self.0)
    }
}

impl std::error::Error for HandshakeFailed {}

pub struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

struct Verifier {
    pin: Option<[u8; 32]>,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    observed: Observed,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier")
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let shown: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        let verdict = match (&self.pin, &self.webpki) {
            (Some(pin), _) if *pin == shown => Ok(ServerCertVerified::assertion()),
            (Some(_), _) => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)),
            (None, Some(webpki)) => webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            (None, None) => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)),
        };
        if verdict.is_err() {
            *self.observed.lock().unwrap_or_else(|p| p.into_inner()) = Some(show_fingerprint(&shown));
        }
        verdict
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_pve_notation_only() {
        let text = (0..32).map(|i| format!("{i:02x}")).collect::<Vec<_>>().join(":");
        let parsed = parse_fingerprint(&text).expect("valid");
        assert_eq!(show_fingerprint(&parsed), text.to_uppercase());
        for bad in ["", "AA:BB", &format!("{text}:00"), &text.replace(':', ""), &text.replacen("00", "0g", 1)] {
            assert_eq!(parse_fingerprint(bad), None, "{bad:?}");
        }
    }
}
