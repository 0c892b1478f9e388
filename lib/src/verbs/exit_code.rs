//! The contract's exit codes, and the one each verb error carries. The
//! executables' entry wrapper turns them into the process's exit status; no
//! other place decides a code.

use super::VerbError;
use crate::host::vmdb::DbError;

/// The verb did its work.
pub const SUCCESS: u8 = 0;
/// Any failure the contract does not name otherwise, including a request the
/// verb refuses once parsed (`VerbError::Usage`: throttle's out-of-range value
/// is exit 1 by the contract).
pub const FAILURE: u8 = 1;
/// The command line could not be parsed (unknown flag, missing argument, a
/// value of the wrong type).
pub const USAGE: u8 = 2;

/// A process stopped by `signal`: 128 + its number, as a shell reports it.
/// A number that does not fit is a plain failure.
pub fn signal(signal: i32) -> u8 {
    signal.checked_add(128).and_then(|code| u8::try_from(code).ok()).filter(|&code| code > 128).unwrap_or(FAILURE)
}

/// A code passed through from elsewhere (the guest's command): kept when it is
/// a valid exit code, else a plain failure.
pub fn passed_through(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(FAILURE)
}

impl VerbError {
    /// The exit code this error ends an executable with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Interrupted(number) | Self::Db(DbError::Interrupted(number)) => signal(*number),
            _ => FAILURE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::names::InvalidInput;
    use crate::provider::{ErrorCode, ProviderError};

    #[test]
    fn a_signal_is_128_plus_its_number() {
        assert_eq!(signal(15), 143);
        assert_eq!(signal(2), 130);
        assert_eq!(signal(9), 137);
        assert_eq!(signal(127), 255);
    }

    #[test]
    fn a_signal_number_without_a_code_is_a_failure() {
        for number in [0, -1, 128, i32::MAX, i32::MIN] {
            assert_eq!(signal(number), FAILURE, "{number}");
        }
    }

    #[test]
    fn a_passed_through_code_is_kept_when_it_is_one() {
        assert_eq!(passed_through(0), SUCCESS);
        assert_eq!(passed_through(3), 3);
        assert_eq!(passed_through(255), 255);
        for code in [-1, 256, i32::MAX, i32::MIN] {
            assert_eq!(passed_through(code), FAILURE, "{code}");
        }
    }

    #[test]
    fn an_interrupted_verb_or_lock_wait_carries_its_signal() {
        assert_eq!(VerbError::Interrupted(15).exit_code(), 143);
        assert_eq!(VerbError::Interrupted(2).exit_code(), 130);
        assert_eq!(VerbError::Db(DbError::Interrupted(15)).exit_code(), 143);
        assert_eq!(VerbError::Db(DbError::Interrupted(2)).exit_code(), 130);
    }

    #[test]
    fn every_other_error_is_a_failure_even_a_refused_request() {
        let errors = [
            VerbError::Usage("nothing to change".into()),
            VerbError::NotFound("vm1".into()),
            VerbError::Failed("no".into()),
            VerbError::Invalid(InvalidInput::VmName("a/b".into())),
            VerbError::Db(DbError::UnknownVm("vm1".into())),
            VerbError::Db(DbError::LockTimeout("vms.json".into(), 2.0, "PID 1".into())),
            VerbError::Provider(ProviderError::new(ErrorCode::Unavailable, "connection refused")),
        ];
        for error in errors {
            assert_eq!(error.exit_code(), FAILURE, "{error}");
        }
    }

    #[test]
    fn the_codes_are_the_contracts() {
        assert_eq!((SUCCESS, FAILURE, USAGE), (0, 1, 2));
    }
}
