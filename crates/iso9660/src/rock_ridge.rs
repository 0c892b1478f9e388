//! System Use Sharing Protocol and Rock Ridge (RRIP 1991A) entries: the
//! POSIX names, modes and times of the primary tree.

use crate::endian::both32;
use crate::records::RECORD_DATE;

const RRIP_ID: &[u8] = b"RRIP_1991A";
const RRIP_DESCRIPTOR: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const RRIP_SOURCE: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  \
SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

// Bits of the RRIP 1991A `RR` entry saying which entries a record carries.
pub const RR_PX: u8 = 0x01;
pub const RR_NM: u8 = 0x08;
pub const RR_TF: u8 = 0x80;

/// Payloads here are at most 233 bytes (`ER`), so the length fits a byte.
fn su_entry(signature: &[u8; 2], payload: &[u8]) -> Vec<u8> {
    [signature, &[(4 + payload.len()) as u8, 1][..], payload].concat()
}

pub fn sp() -> Vec<u8> {
    su_entry(b"SP", &[0xBE, 0xEF, 0])
}

pub fn rr(flags: u8) -> Vec<u8> {
    su_entry(b"RR", &[flags])
}

pub fn ce(sector: u32, offset: u32, len: u32) -> Vec<u8> {
    su_entry(
        b"CE",
        &[both32(sector), both32(offset), both32(len)].concat(),
    )
}

/// RRIP 1991A `PX`: mode, links, uid, gid (no serial number).
pub fn px(mode: u32, links: u32) -> Vec<u8> {
    su_entry(
        b"PX",
        &[both32(mode), both32(links), both32(0), both32(0)].concat(),
    )
}

/// Modification, access and attribute-change times.
pub fn tf() -> Vec<u8> {
    su_entry(
        b"TF",
        &[&[0x0E][..], &RECORD_DATE, &RECORD_DATE, &RECORD_DATE].concat(),
    )
}

pub fn nm(name: &str) -> Vec<u8> {
    su_entry(b"NM", &[&[0][..], name.as_bytes()].concat())
}

pub fn er_entry() -> Vec<u8> {
    let header = [
        RRIP_ID.len() as u8,
        RRIP_DESCRIPTOR.len() as u8,
        RRIP_SOURCE.len() as u8,
        1,
    ];
    su_entry(
        b"ER",
        &[&header[..], RRIP_ID, RRIP_DESCRIPTOR, RRIP_SOURCE].concat(),
    )
}
