//! The provider error taxonomy. Every adapter maps its native errors onto these
//! codes in one table; whether an error is worth retrying follows from the code.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NotFound,
    Conflict,
    Capacity,
    Quota,
    Auth,
    RateLimit,
    InvalidSpec,
    Unavailable,
    /// A mutation whose outcome is unknown (timeout, dropped connection, 5xx):
    /// read back before concluding anything.
    Ambiguous,
    Unsupported,
    Internal,
}

impl ErrorCode {
    pub fn retryable(self) -> bool {
        matches!(self, Self::Capacity | Self::RateLimit | Self::Unavailable | Self::Ambiguous)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not-found",
            Self::Conflict => "conflict",
            Self::Capacity => "capacity",
            Self::Quota => "quota",
            Self::Auth => "auth",
            Self::RateLimit => "rate-limit",
            Self::InvalidSpec => "invalid-spec",
            Self::Unavailable => "unavailable",
            Self::Ambiguous => "ambiguous",
            Self::Unsupported => "unsupported",
            Self::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub code: ErrorCode,
    /// The provider's own message, kept for the operator.
    pub message: String,
}

impl ProviderError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn not_found(name: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("VM {name} not found"))
    }

    pub fn retryable(&self) -> bool {
        self.code.retryable()
    }

    /// The hypervisor could not give a starting VM its memory (QEMU's "cannot
    /// allocate memory"): what it asked for, what is free, what to do.
    pub fn memory_refused(name: &str, memory_mib: u64, free_mib: Option<u64>) -> Self {
        let free = free_mib.map_or_else(|| "an unknown amount".to_string(), |f| format!("{f} MiB"));
        Self::new(
            ErrorCode::Capacity,
            format!(
                "the hypervisor could not give {name} its {memory_mib} MiB of memory (the host has {free} free); ask for less --memory, stop a VM, or lower `overcommit.memory` in db.yaml so the preflight refuses what cannot start"
            ),
        )
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProviderError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_codes() {
        let retryable: Vec<_> = [
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::Capacity,
            ErrorCode::Quota,
            ErrorCode::Auth,
            ErrorCode::RateLimit,
            ErrorCode::InvalidSpec,
            ErrorCode::Unavailable,
            ErrorCode::Ambiguous,
            ErrorCode::Unsupported,
            ErrorCode::Internal,
        ]
        .into_iter()
        .filter(|c| c.retryable())
        .map(ErrorCode::as_str)
        .collect();
        assert_eq!(retryable, ["capacity", "rate-limit", "unavailable", "ambiguous"]);
    }
}
