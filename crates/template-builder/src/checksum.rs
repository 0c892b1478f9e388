//! SHA-256 / SHA-512 digests of files, the expected value given by the operator
//! or found in a `SHA512SUMS`/`SHA256SUMS` listing.

use super::error::TemplateError;
use sha2::{Digest, Sha256, Sha512};
use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    Sha256(String),
    Sha512(String),
}

impl Checksum {
    /// Hex digits, the algorithm told by their count (64 or 128).
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let hex = text.trim().to_ascii_lowercase();
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TemplateError::BadChecksum(text.to_string()));
        }
        match hex.len() {
            64 => Ok(Self::Sha256(hex)),
            128 => Ok(Self::Sha512(hex)),
            _ => Err(TemplateError::BadChecksum(text.to_string())),
        }
    }

    /// The entry for `file_name` in a `sha*sum` listing (`<hex>  <name>`, the
    /// name possibly prefixed with `*` or `./`).
    pub fn from_listing(listing: &str, file_name: &str) -> Option<Self> {
        listing.lines().find_map(|line| {
            let (hex, name) = line.trim().split_once(char::is_whitespace)?;
            let name = name.trim().trim_start_matches('*').trim_start_matches("./");
            if name == file_name { Self::parse(hex).ok() } else { None }
        })
    }

    pub fn hex(&self) -> &str {
        match self {
            Self::Sha256(hex) | Self::Sha512(hex) => hex,
        }
    }

    /// Hashes `path` with this checksum's algorithm and compares.
    pub fn verify(&self, path: &Path) -> Result<(), TemplateError> {
        let actual = match self {
            Self::Sha256(_) => file_digest::<Sha256>(path)?,
            Self::Sha512(_) => file_digest::<Sha512>(path)?,
        };
        if actual == self.hex() {
            Ok(())
        } else {
            Err(TemplateError::ChecksumMismatch {
                what: path.display().to_string(),
                expected: self.hex().to_string(),
                actual,
            })
        }
    }
}

pub fn sha256_file(path: &Path) -> Result<String, TemplateError> {
    file_digest::<Sha256>(path)
}

fn file_digest<D: Digest>(path: &Path) -> Result<String, TemplateError> {
    let mut file = std::fs::File::open(path).map_err(TemplateError::io(path))?;
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(TemplateError::io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn algorithm_from_length() {
        assert_eq!(Checksum::parse(&ABC_SHA256.to_uppercase()).unwrap(), Checksum::Sha256(ABC_SHA256.into()));
        assert!(matches!(Checksum::parse(&"a".repeat(128)).unwrap(), Checksum::Sha512(_)));
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(96)] {
            assert!(matches!(Checksum::parse(bad), Err(TemplateError::BadChecksum(_))), "{bad}");
        }
    }

    #[test]
    fn verifies_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abc").unwrap();
        Checksum::parse(ABC_SHA256).unwrap().verify(&path).unwrap();
        let sha512 = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
        Checksum::parse(sha512).unwrap().verify(&path).unwrap();
        let wrong = Checksum::parse(&"0".repeat(64)).unwrap().verify(&path);
        assert!(matches!(wrong, Err(TemplateError::ChecksumMismatch { actual, .. }) if actual == ABC_SHA256));
    }

    #[test]
    fn finds_the_entry_in_a_listing() {
        let listing = format!("{}  other.qcow2\n{ABC_SHA256} *debian-12-generic-amd64.qcow2\n", "1".repeat(64));
        assert_eq!(
            Checksum::from_listing(&listing, "debian-12-generic-amd64.qcow2"),
            Some(Checksum::Sha256(ABC_SHA256.into()))
        );
        assert_eq!(Checksum::from_listing(&listing, "missing.qcow2"), None);
    }
}
