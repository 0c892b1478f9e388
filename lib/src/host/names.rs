//! Validation of the identifiers that reach file names, domain names, cloud-init
//! YAML, GECOS fields and guest shell commands.

use regex_lite::Regex;
use std::sync::LazyLock;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidInput {
    #[error("invalid VM name {0:?}: use 1-64 characters, letters, digits, '.', '_' or '-', starting with a letter or digit")]
    VmName(String),
    #[error("invalid wallet address {0:?}: {1}")]
    Wallet(String, &'static str),
    #[error("invalid username {0:?}: use a lowercase Linux user name of at most 32 characters")]
    Username(String),
    #[error("invalid NFT token id {0:?}: use 1-128 letters, digits, '_' or '-'")]
    TokenId(String),
}

static VM_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}\z").expect("valid regex"));
static USERNAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[a-z_][a-z0-9_-]{0,31}\z").expect("valid regex"));
static TOKEN_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[A-Za-z0-9_-]{1,128}\z").expect("valid regex"));
static WALLET_CHARS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[A-Za-z0-9._-]{1,256}\z").expect("valid regex"));

/// blockhost-common's naming rule, anchored strictly (no trailing newline).
pub fn vm_name(name: &str) -> Result<&str, InvalidInput> {
    if VM_NAME.is_match(name) {
        Ok(name)
    } else {
        Err(InvalidInput::VmName(name.to_string()))
    }
}

pub fn username(name: &str) -> Result<&str, InvalidInput> {
    if USERNAME.is_match(name) {
        Ok(name)
    } else {
        Err(InvalidInput::Username(name.to_string()))
    }
}

pub fn token_id(id: &str) -> Result<&str, InvalidInput> {
    if TOKEN_ID.is_match(id) {
        Ok(id)
    } else {
        Err(InvalidInput::TokenId(id.to_string()))
    }
}

/// A wallet ends up in a GECOS field (`wallet=<w>,nft=<id>`), in cloud-init YAML and
/// in a quoted guest command, so beyond the chain's own pattern (the engine's
/// `constraints.address_pattern`, when it compiles) only characters that are inert
/// in all three are accepted.
pub fn wallet<'a>(wallet: &'a str, engine_pattern: Option<&Regex>) -> Result<&'a str, InvalidInput> {
    let bad = |why| Err(InvalidInput::Wallet(wallet.to_string(), why));
    if wallet.is_empty() {
        return bad("it is empty");
    }
    if !WALLET_CHARS.is_match(wallet) {
        return bad("only letters, digits, '.', '_' and '-' are allowed, at most 256");
    }
    match engine_pattern {
        Some(pattern) if !pattern.is_match(wallet) => bad("it does not match the engine's address pattern"),
        _ => Ok(wallet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_names() {
        for good in ["blockhost-001", "a", "A.b_c-d", &"x".repeat(64)] {
            assert!(vm_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", ".a", "a/b", "..", "a b", "a\n", "a'b", "a\"b", "é", &"x".repeat(65), "a;b"] {
            assert!(vm_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wallets() {
        let evm = Regex::new("^0x[0-9a-fA-F]{40}$").unwrap();
        let w = "0x1234567890abcdef1234567890ABCDEF12345678";
        assert!(wallet(w, Some(&evm)).is_ok());
        assert!(wallet("addr_test1qq", None).is_ok());
        assert!(wallet("addr_test1qq", Some(&evm)).is_err());
        for bad in ["", "a b", "a'b", "a,nft=1", "a:b", "$(id)", "a\nb"] {
            assert!(wallet(bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn usernames_and_tokens() {
        assert!(username("admin").is_ok());
        assert!(username("Admin").is_err());
        assert!(username("a b").is_err());
        assert!(token_id("42").is_ok());
        assert!(token_id(&"ab".repeat(32)).is_ok());
        assert!(token_id("1,2").is_err());
        assert!(token_id("").is_err());
    }
}
