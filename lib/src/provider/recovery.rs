//! Ambiguous-write recovery: a timeout or dropped connection on a mutation does
//! not mean it failed. Read the state back and accept success only when the
//! desired end state is visible; never blindly retry a non-idempotent write.

use super::{ErrorCode, ProviderError};

/// Returns `result` unless it is ambiguous; then `read_back` decides: `Some`
/// means the desired end state is visible and the write succeeded.
pub fn resolve<T>(
    result: Result<T, ProviderError>,
    read_back: impl FnOnce() -> Result<Option<T>, ProviderError>,
) -> Result<T, ProviderError> {
    match result {
        Err(e) if e.code == ErrorCode::Ambiguous => match read_back() {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(ProviderError::new(
                ErrorCode::Ambiguous,
                format!("{}; reading the state back did not confirm the change", e.message),
            )),
            Err(read_err) => Err(ProviderError::new(
                ErrorCode::Ambiguous,
                format!("{}; reading the state back failed: {}", e.message, read_err.message),
            )),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ambiguous() -> Result<u32, ProviderError> {
        Err(ProviderError::new(ErrorCode::Ambiguous, "timed out"))
    }

    #[test]
    fn ambiguous_is_success_only_when_read_back_confirms() {
        assert_eq!(resolve(ambiguous(), || Ok(Some(7))), Ok(7));
        let err = resolve(ambiguous(), || Ok(None)).unwrap_err();
        assert_eq!(err.code, ErrorCode::Ambiguous);
        assert!(err.message.contains("did not confirm"));
        let err = resolve(ambiguous(), || Err(ProviderError::new(ErrorCode::Unavailable, "down"))).unwrap_err();
        assert!(err.message.contains("down"));
    }

    #[test]
    fn non_ambiguous_results_pass_through_without_read_back() {
        let called = std::cell::Cell::new(false);
        let read_back = || {
            called.set(true);
            Ok(Some(1))
        };
        let err = resolve(Err(ProviderError::new(ErrorCode::Conflict, "x")), read_back).unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict);
        assert_eq!(resolve(Ok(3), || Ok(Some(1))), Ok(3));
        assert!(!called.get());
    }
}
