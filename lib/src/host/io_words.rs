//! An I/O error in an operator's words: what the system said, and for the
//! mistakes an operator makes on a fresh host (not root and not in the group,
//! a full disk) the next step.

use std::io::{Error, ErrorKind};

/// The group that shares BlockHost's state with its components.
pub const GROUP: &str = "blockhost";

/// The error's words; a refused access or a full file system also says what to do.
pub fn io_words(error: &Error) -> String {
    match error.kind() {
        ErrorKind::PermissionDenied => {
            format!("permission denied (run as root, or add this user to the `{GROUP}` group: usermod -aG {GROUP} <user>)")
        }
        ErrorKind::StorageFull => "no space left on the device (ENOSPC): free space on that file system".to_string(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_access_and_a_full_disk_say_what_to_do_and_the_rest_is_kept() {
        let cases = [
            (
                Error::from_raw_os_error(libc::EACCES),
                "permission denied (run as root, or add this user to the `blockhost` group: usermod -aG blockhost <user>)",
            ),
            (Error::from_raw_os_error(libc::ENOSPC), "no space left on the device (ENOSPC): free space on that file system"),
            (Error::from_raw_os_error(libc::EISDIR), "Is a directory (os error 21)"),
        ];
        for (error, words) in cases {
            assert_eq!(io_words(&error), words);
        }
    }
}
