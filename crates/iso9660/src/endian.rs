//! ECMA-119's both-byte-order numbers: little-endian then big-endian.

pub fn both16(v: u16) -> [u8; 4] {
    let (le, be) = (v.to_le_bytes(), v.to_be_bytes());
    [le[0], le[1], be[0], be[1]]
}

pub fn both32(v: u32) -> [u8; 8] {
    let (le, be) = (v.to_le_bytes(), v.to_be_bytes());
    [le[0], le[1], le[2], le[3], be[0], be[1], be[2], be[3]]
}
