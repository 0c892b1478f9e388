//! The one reviewed table that maps libvirt error numbers onto the provider
//! error taxonomy. Whether an error is worth retrying follows from the code;
//! whether a failed write may still have happened is decided here too.

use crate::provider::{ErrorCode, ProviderError};
use virt::sys;

/// How a libvirt error number is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Class {
    code: ErrorCode,
    /// The request may have reached the daemon and acted before the error
    /// (connection dropped mid-call, timeout): a failed write is ambiguous.
    outcome_unknown: bool,
}

const fn class(code: ErrorCode, outcome_unknown: bool) -> Class {
    Class { code, outcome_unknown }
}

fn classify(number: sys::virErrorNumber) -> Class {
    use ErrorCode::*;
    match number {
        sys::VIR_ERR_NO_DOMAIN | sys::VIR_ERR_NO_STORAGE_VOL | sys::VIR_ERR_NO_NETWORK | sys::VIR_ERR_NO_DOMAIN_SNAPSHOT => {
            class(NotFound, false)
        }
        sys::VIR_ERR_DOM_EXIST | sys::VIR_ERR_STORAGE_VOL_EXIST | sys::VIR_ERR_OPERATION_INVALID => class(Conflict, false),
        // Never reached the daemon: nothing happened.
        sys::VIR_ERR_NO_CONNECT | sys::VIR_ERR_INVALID_CONN | sys::VIR_ERR_NO_SERVER => class(Unavailable, false),
        // The connection broke or the call timed out after it was sent.
        sys::VIR_ERR_RPC | sys::VIR_ERR_SYSTEM_ERROR | sys::VIR_ERR_OPERATION_TIMEOUT | sys::VIR_ERR_OPERATION_ABORTED => {
            class(Unavailable, true)
        }
        sys::VIR_ERR_RESOURCE_BUSY => class(Unavailable, false),
        sys::VIR_ERR_AGENT_UNRESPONSIVE | sys::VIR_ERR_AGENT_UNSYNCED | sys::VIR_ERR_AGENT_COMMAND_TIMEOUT => {
            class(Unavailable, true)
        }
        sys::VIR_ERR_AUTH_FAILED
        | sys::VIR_ERR_AUTH_CANCELLED
        | sys::VIR_ERR_AUTH_UNAVAILABLE
        | sys::VIR_ERR_OPERATION_DENIED
        | sys::VIR_ERR_ACCESS_DENIED => class(Auth, false),
        sys::VIR_ERR_NO_MEMORY => class(Capacity, false),
        sys::VIR_ERR_XML_ERROR
        | sys::VIR_ERR_XML_DETAIL
        | sys::VIR_ERR_XML_INVALID_SCHEMA
        | sys::VIR_ERR_INVALID_ARG
        | sys::VIR_ERR_INVALID_MAC
        | sys::VIR_ERR_CONFIG_UNSUPPORTED
        | sys::VIR_ERR_CPU_INCOMPATIBLE
        | sys::VIR_ERR_NO_OS
        | sys::VIR_ERR_NO_KERNEL
        | sys::VIR_ERR_NO_SOURCE
        | sys::VIR_ERR_NO_TARGET
        | sys::VIR_ERR_NO_NAME => class(InvalidSpec, false),
        sys::VIR_ERR_NO_SUPPORT | sys::VIR_ERR_OPERATION_UNSUPPORTED | sys::VIR_ERR_ARGUMENT_UNSUPPORTED => {
            class(Unsupported, false)
        }
        _ => class(Internal, false),
    }
}

fn raw_number(err: &virt::error::Error) -> sys::virErrorNumber {
    err.code().to_raw()
}

/// A libvirt error from a read or an idempotent probe.
pub fn read_error(context: &str, err: &virt::error::Error) -> ProviderError {
    ProviderError::new(classify(raw_number(err)).code, format!("{context}: {}", err.message()))
}

/// A libvirt error from a write: an error after which the write may still have
/// happened is `Ambiguous`, so the caller reads the state back.
pub fn write_error(context: &str, err: &virt::error::Error) -> ProviderError {
    let class = classify(raw_number(err));
    let code = if class.outcome_unknown { ErrorCode::Ambiguous } else { class.code };
    ProviderError::new(code, format!("{context}: {}", err.message()))
}

pub fn code(err: &virt::error::Error) -> ErrorCode {
    classify(raw_number(err)).code
}

pub fn is_not_found(err: &virt::error::Error) -> bool {
    code(err) == ErrorCode::NotFound
}

/// A connection that could not be opened, with the operator's next step: a
/// socket refused to this user (root, or the `libvirt` group), else a daemon to start.
pub fn connect_error(uri: &str, err: &virt::error::Error) -> ProviderError {
    ProviderError::new(ErrorCode::Unavailable, connect_words(uri, err.message()))
}

fn connect_words(uri: &str, message: &str) -> String {
    let next = if message.contains("Permission denied") {
        "run as root, or add this user to the `libvirt` group: usermod -aG libvirt <user>"
    } else {
        "is libvirtd running? start it: systemctl start libvirtd"
    };
    format!("cannot connect to libvirt at {uri} (db.yaml libvirt.uri): {message}; {next}")
}

/// QEMU could not get the guest's memory from the host (its words, as
/// libvirt passes them on: `cannot set up guest memory 'pc.ram': Cannot
/// allocate memory`).
pub fn memory_refused(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("cannot set up guest memory") || message.contains("cannot allocate memory")
}

/// The daemon itself is out of reach (as opposed to, say, a guest agent that
/// does not answer, which shares the `unavailable` code).
pub fn daemon_unreachable(err: &virt::error::Error) -> bool {
    matches!(raw_number(err), sys::VIR_ERR_NO_CONNECT | sys::VIR_ERR_INVALID_CONN | sys::VIR_ERR_RPC | sys::VIR_ERR_SYSTEM_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_things_are_not_found() {
        for n in [sys::VIR_ERR_NO_DOMAIN, sys::VIR_ERR_NO_STORAGE_VOL, sys::VIR_ERR_NO_NETWORK] {
            assert_eq!(classify(n).code, ErrorCode::NotFound, "{n}");
        }
    }

    #[test]
    fn an_unreachable_daemon_is_retryable_and_never_ambiguous() {
        for n in [sys::VIR_ERR_NO_CONNECT, sys::VIR_ERR_INVALID_CONN, sys::VIR_ERR_NO_SERVER] {
            let c = classify(n);
            assert_eq!(c.code, ErrorCode::Unavailable);
            assert!(c.code.retryable());
            assert!(!c.outcome_unknown, "{n}: a call that never left cannot have acted");
        }
    }

    #[test]
    fn a_broken_connection_makes_writes_ambiguous() {
        for n in [sys::VIR_ERR_RPC, sys::VIR_ERR_SYSTEM_ERROR, sys::VIR_ERR_OPERATION_TIMEOUT, sys::VIR_ERR_AGENT_COMMAND_TIMEOUT] {
            assert!(classify(n).outcome_unknown, "{n}");
            assert_eq!(classify(n).code, ErrorCode::Unavailable, "{n}: reads are simply retryable");
        }
    }

    #[test]
    fn permanent_errors_are_not_retryable() {
        let permanent = [
            (sys::VIR_ERR_XML_ERROR, ErrorCode::InvalidSpec),
            (sys::VIR_ERR_CONFIG_UNSUPPORTED, ErrorCode::InvalidSpec),
            (sys::VIR_ERR_AUTH_FAILED, ErrorCode::Auth),
            (sys::VIR_ERR_ACCESS_DENIED, ErrorCode::Auth),
            (sys::VIR_ERR_DOM_EXIST, ErrorCode::Conflict),
            (sys::VIR_ERR_OPERATION_INVALID, ErrorCode::Conflict),
            (sys::VIR_ERR_NO_SUPPORT, ErrorCode::Unsupported),
            (sys::VIR_ERR_INTERNAL_ERROR, ErrorCode::Internal),
            (sys::VIR_ERR_OPERATION_FAILED, ErrorCode::Internal),
        ];
        for (n, code) in permanent {
            assert_eq!(classify(n).code, code, "{n}");
            assert!(!code.retryable(), "{n}");
        }
    }

    #[test]
    fn a_failed_connection_says_what_to_do() {
        assert_eq!(
            connect_words("qemu:///system", "Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied"),
            "cannot connect to libvirt at qemu:///system (db.yaml libvirt.uri): Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied; run as root, or add this user to the `libvirt` group: usermod -aG libvirt <user>"
        );
    }

    #[test]
    fn memory_qemu_could_not_get_is_told_apart() {
        for message in [
            "internal error: qemu unexpectedly closed the monitor: 2026-12-01T23:00:00.000000Z qemu-system-x86_64: cannot set up guest memory 'pc.ram': Cannot allocate memory",
            "internal error: process exited while connecting to monitor: Cannot allocate memory",
        ] {
            assert!(memory_refused(message), "{message}");
        }
        for message in ["Cannot get interface MTU on 'br0': No such device", "internal error: process exited"] {
            assert!(!memory_refused(message), "{message}");
        }
    }

    #[test]
    fn unknown_numbers_are_internal() {
        assert_eq!(classify(99_999), class(ErrorCode::Internal, false));
    }
}
