//! `--cloud-init-content <PATH>`: the operator's user-data, read only from a
//! regular file of at most [`MAX_BYTES`], so that a FIFO, a device, a directory
//! or a huge file is refused at once instead of blocking the create or
//! exhausting memory.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// 1 MiB: far above any real cloud-config, far below what would strain a host.
pub const MAX_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UserDataError {
    #[error("{path}: cannot read cloud-init content: {}", crate::host::io_words::io_words(.1), path = .0.display())]
    Io(PathBuf, std::io::Error),
    #[error("{path}: cloud-init content must be a regular file, not {1}", path = .0.display())]
    NotRegular(PathBuf, &'static str),
    #[error("{path}: cloud-init content is larger than the limit of {MAX_BYTES} bytes (1 MiB)", path = .0.display())]
    TooLarge(PathBuf),
    #[error("{path}: cloud-init content is not UTF-8 text", path = .0.display())]
    NotText(PathBuf),
}

pub fn read(path: &Path) -> Result<String, UserDataError> {
    let io = |e| UserDataError::Io(path.to_path_buf(), e);
    // Non-blocking: opening a FIFO without a writer must not wait.
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if let Some(what) = special_kind(meta.file_type()) {
        return Err(UserDataError::NotRegular(path.to_path_buf(), what));
    }
    if meta.len() > MAX_BYTES {
        return Err(UserDataError::TooLarge(path.to_path_buf()));
    }
    let mut bytes = Vec::new();
    // Bounded even if the file grows while it is read.
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(UserDataError::TooLarge(path.to_path_buf()));
    }
    String::from_utf8(bytes).map_err(|_| UserDataError::NotText(path.to_path_buf()))
}

/// What a file that is not a regular file is, in words; `None` for a regular file.
fn special_kind(kind: std::fs::FileType) -> Option<&'static str> {
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("a special file")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user-data");
        std::fs::write(&path, "x".repeat(MAX_BYTES as usize)).unwrap();
        assert_eq!(read(&path).unwrap().len() as u64, MAX_BYTES);
        std::fs::write(&path, "x".repeat(MAX_BYTES as usize + 1)).unwrap();
        assert!(matches!(read(&path), Err(UserDataError::TooLarge(_))));
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(read(&path), Err(UserDataError::NotText(_))));
        assert!(matches!(read(dir.path()), Err(UserDataError::NotRegular(_, "a directory"))));
        assert!(matches!(read(Path::new("/dev/null")), Err(UserDataError::NotRegular(_, "a character device"))));
    }
}
