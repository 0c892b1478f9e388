//! The backing file name and the virtual size recorded in a qcow2 header
//! (QEMU's qcow2 format: magic `QFI\xfb`, then big-endian version, backing
//! file offset (u64 at byte 8), its size (u32 at byte 16), cluster bits (u32)
//! and the virtual size (u64 at byte 24)).

use super::error::TemplateError;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"QFI\xfb";
const HEADER_LEN: usize = 20;
/// QEMU refuses backing file names longer than 1023 bytes.
const MAX_NAME_LEN: u32 = 1023;

/// The backing file of the qcow2 image at `path`, as written in its header
/// (absolute or relative to the image's directory); `None` without one.
pub fn backing_file(path: &Path) -> Result<Option<PathBuf>, TemplateError> {
    let corrupt = |reason: &str| TemplateError::Corrupt { path: path.to_path_buf(), reason: reason.to_string() };
    let mut file = std::fs::File::open(path).map_err(TemplateError::io(path))?;
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header).map_err(|_| corrupt("too short for a qcow2 header"))?;
    if &header[..4] != MAGIC {
        return Err(corrupt("not a qcow2 image"));
    }
    let offset = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
    let size = u32::from_be_bytes(header[16..20].try_into().unwrap_or_default());
    if offset == 0 || size == 0 {
        return Ok(None);
    }
    if size > MAX_NAME_LEN {
        return Err(corrupt("backing file name too long"));
    }
    let mut name = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(offset)).map_err(TemplateError::io(path))?;
    file.read_exact(&mut name).map_err(|_| corrupt("backing file name past the end of the file"))?;
    Ok(Some(PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(name))))
}

/// The size the guest sees of the qcow2 image at `path`, in bytes.
pub fn virtual_size(path: &Path) -> Result<u64, TemplateError> {
    let corrupt = |reason: &str| TemplateError::Corrupt { path: path.to_path_buf(), reason: reason.to_string() };
    let mut header = [0u8; 32];
    let mut file = std::fs::File::open(path).map_err(TemplateError::io(path))?;
    file.read_exact(&mut header).map_err(|_| corrupt("too short for a qcow2 header"))?;
    if &header[..4] != MAGIC {
        return Err(corrupt("not a qcow2 image"));
    }
    Ok(u64::from_be_bytes(header[24..32].try_into().unwrap_or_default()))
}

/// The backing file as a path: a relative name is relative to the image's directory.
pub fn resolved_backing_file(path: &Path) -> Result<Option<PathBuf>, TemplateError> {
    Ok(backing_file(path)?.map(|name| match path.parent() {
        Some(dir) if name.is_relative() => dir.join(name),
        _ => name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(offset: u64, size: u32) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&3u32.to_be_bytes());
        bytes.extend_from_slice(&offset.to_be_bytes());
        bytes.extend_from_slice(&size.to_be_bytes());
        bytes
    }

    #[test]
    fn reads_the_name_at_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.qcow2");
        let mut bytes = header(32, 9);
        bytes.resize(32, 0);
        bytes.extend_from_slice(b"base.qcow2-and-more");
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(backing_file(&path).unwrap(), Some(PathBuf::from("base.qcow")));
        assert_eq!(resolved_backing_file(&path).unwrap(), Some(dir.path().join("base.qcow")));
    }

    #[test]
    fn the_virtual_size_is_the_u64_at_byte_24() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.qcow2");
        let mut bytes = header(0, 0);
        bytes.extend_from_slice(&16u32.to_be_bytes());
        bytes.extend_from_slice(&(20u64 << 30).to_be_bytes());
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(virtual_size(&path).unwrap(), 20 << 30);
        std::fs::write(&path, &bytes[..31]).unwrap();
        assert!(matches!(virtual_size(&path), Err(TemplateError::Corrupt { .. })));
    }

    #[test]
    fn no_backing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.qcow2");
        std::fs::write(&path, header(0, 0)).unwrap();
        assert_eq!(backing_file(&path).unwrap(), None);
    }

    #[test]
    fn rejects_what_is_not_qcow2() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raw.qcow2");
        std::fs::write(&path, vec![0u8; 512]).unwrap();
        assert!(matches!(backing_file(&path), Err(TemplateError::Corrupt { .. })));
        std::fs::write(&path, b"QFI").unwrap();
        assert!(matches!(backing_file(&path), Err(TemplateError::Corrupt { .. })));
        std::fs::write(&path, header(4096, 10)).unwrap();
        assert!(matches!(backing_file(&path), Err(TemplateError::Corrupt { .. })));
        std::fs::write(&path, header(32, 5000)).unwrap();
        assert!(matches!(backing_file(&path), Err(TemplateError::Corrupt { .. })));
    }
}
