//! Volume descriptors (primary, Joliet supplementary, terminator) and the
//! path tables they point at.

use crate::endian::{both16, both32};
use crate::records::Record;
use crate::SECTOR;

/// 1970-01-01 00:00:00 UTC as a volume descriptor date.
const VOLUME_DATE: &[u8; 17] = b"1970010100000000\0";
const UNSPECIFIED_DATE: &[u8; 17] = b"0000000000000000\0";

#[derive(Clone, Copy)]
pub struct VolumeInfo<'a> {
    pub label: &'a str,
    pub total_sectors: u32,
    pub root: u32,
    pub root_size: u32,
    pub l_table: u32,
    pub m_table: u32,
}

pub fn descriptor_header(kind: u8) -> Vec<u8> {
    let mut out = vec![0u8; SECTOR];
    out[0] = kind;
    out[1..6].copy_from_slice(b"CD001");
    out[6] = 1;
    out
}

pub fn volume_descriptor(info: &VolumeInfo, joliet: bool) -> Vec<u8> {
    let mut d = descriptor_header(if joliet { 2 } else { 1 });
    let text = |d: &mut Vec<u8>, range: std::ops::Range<usize>, value: &str| {
        put_text(&mut d[range], value, joliet)
    };
    text(&mut d, 8..40, ""); // system identifier
    text(&mut d, 40..72, info.label);
    d[80..88].copy_from_slice(&both32(info.total_sectors));
    if joliet {
        d[88..91].copy_from_slice(b"%/E"); // UCS-2 level 3
    }
    d[120..124].copy_from_slice(&both16(1)); // volume set size
    d[124..128].copy_from_slice(&both16(1)); // volume sequence number
    d[128..132].copy_from_slice(&both16(SECTOR as u16));
    d[132..140].copy_from_slice(&both32(PATH_TABLE_LEN as u32));
    d[140..144].copy_from_slice(&info.l_table.to_le_bytes());
    d[148..152].copy_from_slice(&info.m_table.to_be_bytes());
    d[156..190].copy_from_slice(&Record::dot(info.root, info.root_size, Vec::new()).encode());
    // Volume set, publisher, data preparer, application, copyright,
    // abstract and bibliographic identifiers.
    for range in [
        190..318,
        318..446,
        446..574,
        574..702,
        702..739,
        739..776,
        776..813,
    ] {
        text(&mut d, range, "");
    }
    d[813..830].copy_from_slice(VOLUME_DATE); // creation
    d[830..847].copy_from_slice(VOLUME_DATE); // modification
    d[847..864].copy_from_slice(UNSPECIFIED_DATE); // expiration
    d[864..881].copy_from_slice(UNSPECIFIED_DATE); // effective
    d[881] = 1; // file structure version
    d
}

/// Writes `value` space-padded: ASCII for the primary descriptor, UCS-2
/// big-endian (truncated to fit) for Joliet, where an odd-length field keeps
/// a trailing zero byte.
fn put_text(field: &mut [u8], value: &str, joliet: bool) {
    if joliet {
        let units = value.encode_utf16().chain(std::iter::repeat(0x0020));
        for (pair, unit) in field.chunks_exact_mut(2).zip(units) {
            pair.copy_from_slice(&unit.to_be_bytes());
        }
    } else {
        let bytes = value.bytes().chain(std::iter::repeat(b' '));
        for (slot, byte) in field.iter_mut().zip(bytes) {
            *slot = byte;
        }
    }
}

const PATH_TABLE_LEN: usize = 10;

/// A path table holding only the root directory (number 1, its own parent).
pub fn path_table(root: u32, big_endian: bool) -> [u8; PATH_TABLE_LEN] {
    let (extent, parent) = if big_endian {
        (root.to_be_bytes(), 1u16.to_be_bytes())
    } else {
        (root.to_le_bytes(), 1u16.to_le_bytes())
    };
    let mut entry = [0u8; PATH_TABLE_LEN];
    entry[0] = 1; // identifier length; the identifier is a single zero byte
    entry[2..6].copy_from_slice(&extent);
    entry[6..8].copy_from_slice(&parent);
    entry
}
