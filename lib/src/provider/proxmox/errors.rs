//! The one reviewed table that maps Proxmox VE API failures onto the provider
//! error taxonomy. PVE answers most VM errors with HTTP 500 and tells them
//! apart only by message, so the table reads both; whether a failed request
//! may still have acted is decided here too: a 5xx, a timeout or a dropped
//! connection after a mutation was sent is `Ambiguous`, and the caller reads
//! the state back.

use super::tls::HandshakeFailed;
use crate::provider::{ErrorCode, ProviderError};

/// Whether the failed request could have changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Read,
    Mutation,
}

/// PVE's messages (matched case-insensitively, in this order) and their codes.
const MESSAGES: &[(&str, ErrorCode)] = &[
    ("guest agent", ErrorCode::Unavailable),
    ("does not exist", ErrorCode::NotFound),
    ("no such vm", ErrorCode::NotFound),
    ("no such task", ErrorCode::NotFound),
    ("already exists", ErrorCode::Conflict),
    ("is locked", ErrorCode::Conflict),
    ("can't lock file", ErrorCode::Conflict),
    ("already running", ErrorCode::Conflict),
    ("not running", ErrorCode::Conflict),
    ("is running - destroy failed", ErrorCode::Conflict),
    ("permission check failed", ErrorCode::Auth),
    ("authentication failure", ErrorCode::Auth),
    ("not enough space", ErrorCode::Capacity),
    ("no space left", ErrorCode::Capacity),
    ("cannot allocate memory", ErrorCode::Capacity),
    ("out of memory", ErrorCode::Capacity),
    ("quota", ErrorCode::Quota),
    ("limit exceeded", ErrorCode::Quota),
    ("hostname lookup", ErrorCode::InvalidSpec),
];

/// The code of an HTTP error answer.
pub fn classify(status: u16, message: &str, sent: Sent) -> ErrorCode {
    let lower = message.to_lowercase();
    let by_message = MESSAGES.iter().find(|(needle, _)| lower.contains(needle)).map(|(_, code)| *code);
    match status {
        400 => by_message.filter(|c| *c == ErrorCode::Conflict).unwrap_or(ErrorCode::InvalidSpec),
        401 | 403 => ErrorCode::Auth,
        404 => ErrorCode::NotFound,
        429 => ErrorCode::RateLimit,
        501 => ErrorCode::Unsupported,
        // pveproxy could not reach the node the request was for: nothing was sent to it.
        595 => ErrorCode::Unavailable,
        500 => match (by_message, sent) {
            (Some(code), _) => code,
            (None, Sent::Read) => ErrorCode::Internal,
            (None, Sent::Mutation) => ErrorCode::Ambiguous,
        },
        _ if status >= 500 => match sent {
            Sent::Read => ErrorCode::Unavailable,
            Sent::Mutation => ErrorCode::Ambiguous,
        },
        _ => by_message.unwrap_or(ErrorCode::Internal),
    }
}

/// A PVE error answer as a provider error: `<what>: <PVE's message>`.
pub fn answer_error(what: &str, status: u16, message: &str, sent: Sent) -> ProviderError {
    ProviderError::new(classify(status, message, sent), format!("{what}: {message} (HTTP {status})"))
}

/// A request that got no answer. Connecting and resolving fail before
/// anything is sent; every later failure may follow a request that acted.
pub fn transport_error(what: &str, error: &ureq::Error, sent: Sent) -> ProviderError {
    use ureq::Timeout;
    let before_sending = match error {
        ureq::Error::Timeout(Timeout::Connect | Timeout::Resolve) => true,
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound | ureq::Error::BadUri(_) => true,
        ureq::Error::Io(e) => {
            matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable)
                || e.get_ref().is_some_and(|inner| inner.is::<HandshakeFailed>())
        }
        _ => false,
    };
    let code = match (before_sending, sent) {
        (false, Sent::Mutation) => ErrorCode::Ambiguous,
        _ => ErrorCode::Unavailable,
    };
    ProviderError::new(code, format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorCode::*;

    #[test]
    fn the_table() {
        let cases: &[(u16, &str, Sent, ErrorCode)] = &[
            (500, "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist", Sent::Read, NotFound),
            (500, "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist", Sent::Mutation, NotFound),
            (500, "unable to create VM 100: config file already exists", Sent::Mutation, Conflict),
            (400, "vmid: VM 100 already exists", Sent::Read, Conflict),
            (500, "VM 100 is locked (clone)", Sent::Mutation, Conflict),
            (500, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", Sent::Mutation, Conflict),
            (500, "VM 100 already running", Sent::Mutation, Conflict),
            (500, "VM 100 is running - destroy failed", Sent::Mutation, Conflict),
            (500, "No QEMU guest agent configured", Sent::Mutation, Unavailable),
            (500, "QEMU guest agent is not running", Sent::Mutation, Unavailable),
            (403, "Permission check failed (/vms/100, VM.PowerMgmt)", Sent::Mutation, Auth),
            (401, "authentication failure", Sent::Read, Auth),
            (500, "lvcreate 'pve/vm-100-disk-0' error:   Volume group \"pve\" has insufficient free space: not enough space", Sent::Mutation, Capacity),
            (500, "cannot allocate memory", Sent::Mutation, Capacity),
            (500, "pool limit exceeded for memory", Sent::Mutation, Quota),
            (400, "Parameter verification failed.", Sent::Mutation, InvalidSpec),
            (404, "not found", Sent::Read, NotFound),
            (429, "too many requests", Sent::Read, RateLimit),
            (501, "Method 'GET /nodes/pve1/foo' not implemented", Sent::Read, Unsupported),
            (595, "Connection refused", Sent::Mutation, Unavailable),
            (500, "hostname lookup 'pve9' failed", Sent::Read, InvalidSpec),
            (500, "something unexpected", Sent::Read, Internal),
            (500, "something unexpected", Sent::Mutation, Ambiguous),
            (503, "Service Unavailable", Sent::Read, Unavailable),
            (503, "Service Unavailable", Sent::Mutation, Ambiguous),
            (502, "Bad Gateway", Sent::Mutation, Ambiguous),
        ];
        for (status, message, sent, code) in cases {
            assert_eq!(classify(*status, message, *sent), *code, "{status} {message:?} {sent:?}");
        }
    }

    #[test]
    fn transport_failures_before_sending_are_never_ambiguous() {
        let refused = ureq::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(transport_error("start", &refused, Sent::Mutation).code, Unavailable);
        assert_eq!(transport_error("start", &ureq::Error::Timeout(ureq::Timeout::Connect), Sent::Mutation).code, Unavailable);
        let reset = ureq::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(transport_error("start", &reset, Sent::Mutation).code, Ambiguous);
        assert_eq!(transport_error("status", &reset, Sent::Read).code, Unavailable);
        assert_eq!(transport_error("start", &ureq::Error::Timeout(ureq::Timeout::RecvResponse), Sent::Mutation).code, Ambiguous);
        let handshake = ureq::Error::Io(std::io::Error::other(HandshakeFailed(std::io::Error::from(std::io::ErrorKind::ConnectionReset))));
        assert_eq!(transport_error("start", &handshake, Sent::Mutation).code, Unavailable);
    }
}
