//! The API token, from the file upstream's installer writes:
//! `/etc/blockhost/pve-token`, one line `USER@REALM!TOKENID=SECRET` with no
//! newline, mode 0640 root:blockhost. A token readable by every user is
//! refused: it grants the API's full power over the cluster.

use crate::provider::{ErrorCode, ProviderError};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub const DEFAULT_TOKEN_FILE: &str = "/etc/blockhost/pve-token";

#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// `USER@REALM!TOKENID`
    pub id: String,
    secret: String,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken({}=<secret>)", self.id)
    }
}

impl ApiToken {
    pub fn read(path: &Path) -> Result<Self, ProviderError> {
        let shown = path.display();
        let auth = |message: String| ProviderError::new(ErrorCode::Auth, message);
        let meta = std::fs::metadata(path).map_err(|e| auth(format!("{shown}: cannot read the Proxmox VE API token: {}", crate::host::io_words::io_words(&e))))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o004 != 0 {
            return Err(auth(format!("{shown}: the Proxmox VE API token is readable by every user (mode {mode:04o}); make it 0640 root:blockhost")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| auth(format!("{shown}: cannot read the Proxmox VE API token: {}", crate::host::io_words::io_words(&e))))?;
        Self::parse(text.trim_end_matches(['\n', '\r'])).ok_or_else(|| auth(format!("{shown}: not an API token (expected one line USER@REALM!TOKENID=SECRET)")))
    }

    pub fn parse(line: &str) -> Option<Self> {
        let (id, secret) = line.split_once('=')?;
        let (user, token_name) = id.split_once('!')?;
        let (name, realm) = user.split_once('@')?;
        let valid = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        (valid(name) && valid(realm) && valid(token_name) && valid(secret) && !secret.contains('=')).then(|| Self { id: id.to_string(), secret: secret.to_string() })
    }

    /// The `Authorization` header's value.
    pub fn header(&self) -> String {
        format!("PVEAPIToken={}={}", self.id, self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_as_upstream_writes_them() {
        let token = ApiToken::parse("root@pam!blockhost=5f0c2a77-3c1e-4b8e-9a51-0d6f4e2b9c10").expect("valid");
        assert_eq!(token.id, "root@pam!blockhost");
        assert_eq!(token.header(), "PVEAPIToken=root@pam!blockhost=5f0c2a77-3c1e-4b8e-9a51-0d6f4e2b9c10");
        assert!(!format!("{token:?}").contains("5f0c"), "the secret never reaches a log");
        for bad in ["", "root@pam!blockhost", "root@pam=secret", "root!blockhost=secret", "root@pam!=secret", "root@pam!blockhost=", "root@pam!b=s s"] {
            assert_eq!(ApiToken::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_token_file_readable_by_everyone_is_refused_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pve-token");
        std::fs::write(&path, "root@pam!blockhost=secret").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ApiToken::read(&path).unwrap_err();
        assert_eq!(err.code, ErrorCode::Auth);
        assert_eq!(
            err.message,
            format!("{}: the Proxmox VE API token is readable by every user (mode 0644); make it 0640 root:blockhost", path.display())
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(ApiToken::read(&path).unwrap().id, "root@pam!blockhost");
    }
}
