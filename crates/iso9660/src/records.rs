//! Directory records (ECMA-119 9.1) and the two root directories made of them.

use crate::endian::{both16, both32};
use crate::names::ecma_order;
use crate::rock_ridge::{ce, er_entry, nm, px, rr, sp, tf, RR_NM, RR_PX, RR_TF};
use crate::{to_u32, Entry, SeedIsoError, CONTINUATION_SECTOR, PRIMARY_ROOT, SECTOR};

/// 1970-01-01 00:00:00 UTC as a directory record date (years since 1900).
pub const RECORD_DATE: [u8; 7] = [70, 1, 1, 0, 0, 0, 0];

const FILE_MODE: u32 = 0o100_444;
const DIR_MODE: u32 = 0o040_555;

/// One directory record: a file, or a directory's `.` or `..`.
pub struct Record {
    id: Vec<u8>,
    extent: u32,
    size: u32,
    is_dir: bool,
    system_use: Vec<u8>,
}

impl Record {
    pub fn dot(extent: u32, size: u32, system_use: Vec<u8>) -> Self {
        Self {
            id: vec![0],
            extent,
            size,
            is_dir: true,
            system_use,
        }
    }

    fn dot_dot(extent: u32, size: u32, system_use: Vec<u8>) -> Self {
        Self {
            id: vec![1],
            extent,
            size,
            is_dir: true,
            system_use,
        }
    }

    /// Identifiers are padded to an even offset, the whole record to an even
    /// length; the longest possible record is well under 255 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(255);
        out.push(0); // length, set below
        out.push(0); // extended attribute record length
        out.extend_from_slice(&both32(self.extent));
        out.extend_from_slice(&both32(self.size));
        out.extend_from_slice(&RECORD_DATE);
        out.push(if self.is_dir { 0x02 } else { 0x00 });
        out.extend_from_slice(&[0, 0]); // file unit size, interleave gap
        out.extend_from_slice(&both16(1)); // volume sequence number
        out.push(self.id.len() as u8);
        out.extend_from_slice(&self.id);
        if self.id.len().is_multiple_of(2) {
            out.push(0);
        }
        out.extend_from_slice(&self.system_use);
        if out.len() % 2 == 1 {
            out.push(0);
        }
        out[0] = out.len() as u8;
        out
    }
}

/// The primary root directory with Rock Ridge entries. The `.` record
/// carries `SP` (which must come first) and a `CE` pointing at the `ER`
/// entry, which is too long to fit in the record itself.
pub fn primary_records(entries: &[Entry], root_size: u32) -> Vec<Record> {
    let dir_su =
        |extra: &[u8]| -> Vec<u8> { [extra, &rr(RR_PX | RR_TF), &px(DIR_MODE, 2), &tf()].concat() };
    let continuation = ce(CONTINUATION_SECTOR, 0, er_entry().len() as u32);
    let mut files: Vec<&Entry> = entries.iter().collect();
    files.sort_by(|a, b| ecma_order(&a.primary_id, &b.primary_id));

    let mut records = vec![
        Record::dot(
            PRIMARY_ROOT,
            root_size,
            dir_su(&[sp(), continuation].concat()),
        ),
        Record::dot_dot(PRIMARY_ROOT, root_size, dir_su(&[])),
    ];
    records.extend(files.into_iter().map(|entry| {
        Record {
            id: [&entry.primary_id[..], b";1"].concat(),
            extent: entry.extent,
            size: entry.size(),
            is_dir: false,
            system_use: [
                rr(RR_PX | RR_NM | RR_TF),
                nm(entry.name),
                px(FILE_MODE, 1),
                tf(),
            ]
            .concat(),
        }
    }));
    records
}

/// The Joliet root directory: UCS-2 big-endian names, no version suffix.
pub fn joliet_records(entries: &[Entry], root: u32, root_size: u32) -> Vec<Record> {
    let mut files: Vec<&Entry> = entries.iter().collect();
    files.sort_by(|a, b| ecma_order(&a.joliet_id, &b.joliet_id));

    let mut records = vec![
        Record::dot(root, root_size, Vec::new()),
        Record::dot_dot(root, root_size, Vec::new()),
    ];
    records.extend(files.into_iter().map(|entry| {
        Record {
            id: entry
                .joliet_id
                .iter()
                .flat_map(|u| u.to_be_bytes())
                .collect(),
            extent: entry.extent,
            size: entry.size(),
            is_dir: false,
            system_use: Vec::new(),
        }
    }));
    records
}

/// Lays records out so that none crosses a sector boundary; the result is a
/// whole number of sectors.
pub fn dir_bytes(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        let bytes = record.encode();
        let used = out.len() % SECTOR;
        if used + bytes.len() > SECTOR {
            out.resize(out.len() + SECTOR - used, 0);
        }
        out.extend_from_slice(&bytes);
    }
    out.resize(out.len().div_ceil(SECTOR) * SECTOR, 0);
    out
}

pub fn dir_size(records: &[Record]) -> Result<u32, SeedIsoError> {
    to_u32(dir_bytes(records).len())
}
