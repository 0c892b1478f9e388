//! What the writer refuses, with a one-line message each.

use crate::names::{MAX_LABEL_LEN, MAX_NAME_LEN};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedIsoError {
    /// The label is not 1 to 32 characters of `[A-Za-z0-9_]`.
    InvalidLabel(String),
    NoFiles,
    /// Empty, `.` or `..`, longer than 64 bytes, or holding a control
    /// character or one of `/ \ : ; * ?` (not allowed in Joliet names).
    InvalidName(String),
    DuplicateName(String),
    /// Over 4 GiB - 1 bytes, the most one ISO 9660 extent can hold.
    FileTooLarge(String),
    /// The image would not fit in 2^32 sectors.
    ImageTooLarge,
}

impl fmt::Display for SeedIsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidLabel(label) => write!(
                f,
                "invalid volume label {label:?}: expected 1 to {MAX_LABEL_LEN} characters of [A-Za-z0-9_]"
            ),
            Self::NoFiles => write!(f, "a seed image needs at least one file"),
            Self::InvalidName(name) => write!(
                f,
                "invalid file name {name:?}: expected 1 to {MAX_NAME_LEN} bytes, not . or .., \
                 without control characters or any of / \\ : ; * ?"
            ),
            Self::DuplicateName(name) => write!(f, "duplicate file name {name:?}"),
            Self::FileTooLarge(name) => write!(f, "file {name:?} is larger than 4 GiB - 1"),
            Self::ImageTooLarge => write!(f, "image would exceed 2^32 sectors"),
        }
    }
}

impl std::error::Error for SeedIsoError {}
