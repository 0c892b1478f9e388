//! Deterministic ISO 9660 (ECMA-119) image writer for a cloud-init NoCloud
//! seed: one root directory holding a few small files, with Joliet (UCS-2
//! level 3) and Rock Ridge (RRIP 1991A) names so every reader sees the real
//! file names.
//!
//! Output depends only on the inputs. Every recorded date is the fixed instant
//! 1970-01-01 00:00:00 UTC, except the volume expiration and effective dates,
//! which are "not specified" (all digits zero). Identifiers other than the
//! volume label are blank. Files are owned by 0:0, mode 0444; the root
//! directory has mode 0555.
//!
//! Layout (2048-byte sectors):
//!
//! | sector | content |
//! | --- | --- |
//! | 0-15 | system area (zeros) |
//! | 16 | primary volume descriptor |
//! | 17 | Joliet supplementary volume descriptor |
//! | 18 | volume descriptor set terminator |
//! | 19, 20 | primary path tables (L, M) |
//! | 21, 22 | Joliet path tables (L, M) |
//! | 23 | Rock Ridge continuation area (the `ER` entry) |
//! | 24.. | primary root directory, then Joliet root directory |
//! | then | file data, in name order, each padded to whole sectors |
//!
//! Both directory trees point at the same file extents.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

const SECTOR: usize = 2048;
const MAX_NAME_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 32;

const PVD_SECTOR: u32 = 16;
const SVD_SECTOR: u32 = 17;
const TERMINATOR_SECTOR: u32 = 18;
const PRIMARY_L_TABLE: u32 = 19;
const PRIMARY_M_TABLE: u32 = 20;
const JOLIET_L_TABLE: u32 = 21;
const JOLIET_M_TABLE: u32 = 22;
const CONTINUATION_SECTOR: u32 = 23;
const PRIMARY_ROOT: u32 = 24;

/// 1970-01-01 00:00:00 UTC as a directory record date (years since 1900).
const RECORD_DATE: [u8; 7] = [70, 1, 1, 0, 0, 0, 0];
/// The same instant as a volume descriptor date.
const VOLUME_DATE: &[u8; 17] = b"1970010100000000\0";
const UNSPECIFIED_DATE: &[u8; 17] = b"0000000000000000\0";

const FILE_MODE: u32 = 0o100_444;
const DIR_MODE: u32 = 0o040_555;

const RRIP_ID: &[u8] = b"RRIP_1991A";
const RRIP_DESCRIPTOR: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const RRIP_SOURCE: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  \
SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

// Bits of the RRIP 1991A `RR` entry saying which entries a record carries.
const RR_PX: u8 = 0x01;
const RR_NM: u8 = 0x08;
const RR_TF: u8 = 0x80;

/// One file to put in the root directory of the seed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedFile<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

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

/// Builds the ISO image bytes. The same inputs always give the same bytes,
/// whatever the order of `files`.
pub fn build_seed_iso(volume_label: &str, files: &[SeedFile]) -> Result<Vec<u8>, SeedIsoError> {
    let label_ok = (1..=MAX_LABEL_LEN).contains(&volume_label.len())
        && volume_label
            .bytes()
            .all(|b| b == b'_' || b.is_ascii_alphanumeric());
    if !label_ok {
        return Err(SeedIsoError::InvalidLabel(volume_label.to_string()));
    }
    if files.is_empty() {
        return Err(SeedIsoError::NoFiles);
    }
    for file in files {
        check_name(file.name)?;
        if u32::try_from(file.data.len()).is_err() {
            return Err(SeedIsoError::FileTooLarge(file.name.to_string()));
        }
    }

    let mut sorted: Vec<&SeedFile> = files.iter().collect();
    sorted.sort_by_key(|file| file.name);
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].name == pair[1].name) {
        return Err(SeedIsoError::DuplicateName(pair[0].name.to_string()));
    }

    let mut used_ids = BTreeSet::new();
    let mut entries: Vec<Entry> = sorted
        .iter()
        .map(|file| Entry {
            name: file.name,
            data: file.data,
            primary_id: primary_id(file.name, &mut used_ids),
            joliet_id: file.name.encode_utf16().collect(),
            extent: 0,
        })
        .collect();

    // Record lengths do not depend on extents, so sizing with zeros is exact.
    let primary_size = dir_size(&primary_records(&entries, 0))?;
    let joliet_size = dir_size(&joliet_records(&entries, 0, 0))?;
    let joliet_root = PRIMARY_ROOT
        .checked_add(primary_size / SECTOR as u32)
        .ok_or(SeedIsoError::ImageTooLarge)?;
    let mut next = joliet_root
        .checked_add(joliet_size / SECTOR as u32)
        .ok_or(SeedIsoError::ImageTooLarge)?;
    for entry in &mut entries {
        // An empty file takes no sector; it points at the next free one.
        entry.extent = next;
        let sectors = to_u32(entry.data.len().div_ceil(SECTOR))?;
        next = next
            .checked_add(sectors)
            .ok_or(SeedIsoError::ImageTooLarge)?;
    }
    let total_sectors = next;

    let image_len = (total_sectors as usize)
        .checked_mul(SECTOR)
        .ok_or(SeedIsoError::ImageTooLarge)?;
    let mut image = vec![0u8; image_len];
    let primary = VolumeInfo {
        label: volume_label,
        total_sectors,
        root: PRIMARY_ROOT,
        root_size: primary_size,
        l_table: PRIMARY_L_TABLE,
        m_table: PRIMARY_M_TABLE,
    };
    let joliet = VolumeInfo {
        root: joliet_root,
        root_size: joliet_size,
        l_table: JOLIET_L_TABLE,
        m_table: JOLIET_M_TABLE,
        ..primary
    };
    put(&mut image, PVD_SECTOR, &volume_descriptor(&primary, false));
    put(&mut image, SVD_SECTOR, &volume_descriptor(&joliet, true));
    put(&mut image, TERMINATOR_SECTOR, &descriptor_header(255));
    put(
        &mut image,
        PRIMARY_L_TABLE,
        &path_table(PRIMARY_ROOT, false),
    );
    put(&mut image, PRIMARY_M_TABLE, &path_table(PRIMARY_ROOT, true));
    put(&mut image, JOLIET_L_TABLE, &path_table(joliet_root, false));
    put(&mut image, JOLIET_M_TABLE, &path_table(joliet_root, true));
    put(&mut image, CONTINUATION_SECTOR, &er_entry());
    put(
        &mut image,
        PRIMARY_ROOT,
        &dir_bytes(&primary_records(&entries, primary_size)),
    );
    put(
        &mut image,
        joliet_root,
        &dir_bytes(&joliet_records(&entries, joliet_root, joliet_size)),
    );
    for entry in &entries {
        put(&mut image, entry.extent, entry.data);
    }
    Ok(image)
}

struct Entry<'a> {
    name: &'a str,
    data: &'a [u8],
    /// `BASE.EXT` without the `;1` version.
    primary_id: Vec<u8>,
    joliet_id: Vec<u16>,
    extent: u32,
}

impl Entry<'_> {
    /// Fits: file sizes were checked against u32 up front.
    fn size(&self) -> u32 {
        self.data.len() as u32
    }
}

fn check_name(name: &str) -> Result<(), SeedIsoError> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\' | ':' | ';' | '*' | '?'));
    if bad {
        Err(SeedIsoError::InvalidName(name.to_string()))
    } else {
        Ok(())
    }
}

/// Maps a name to a unique 8.3 identifier of d-characters: the part before
/// the last dot (a leading dot does not count) becomes an upper-cased base of
/// at most 8 characters, the rest an extension of at most 3, and every other
/// character becomes `_`. On a clash the base ends in `_N` with the smallest
/// free N. Names must be fed in sorted order to stay deterministic.
fn primary_id(name: &str, used: &mut BTreeSet<Vec<u8>>) -> Vec<u8> {
    let (base, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot + 1..]),
        _ => (name, ""),
    };
    let d_chars = |s: &str, max: usize| -> Vec<u8> {
        s.chars()
            .take(max)
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' => c.to_ascii_uppercase() as u8,
                _ => b'_',
            })
            .collect()
    };
    let base = d_chars(base, 8);
    let ext = d_chars(ext, 3);
    let join = |base: &[u8]| [base, b".", &ext].concat();

    let mut id = join(&base);
    let mut n = 1u32;
    while used.contains(&id) {
        let suffix = format!("_{n}");
        let keep = base.len().min(8usize.saturating_sub(suffix.len()));
        id = join(&[&base[..keep], suffix.as_bytes()].concat());
        n += 1;
    }
    used.insert(id.clone());
    id
}

/// ECMA-119 9.3 order: by name, then by extension, each compared as if the
/// shorter one were padded with spaces.
fn ecma_order<T: Copy + Ord + From<u8>>(a: &[T], b: &[T]) -> Ordering {
    let split = |id: &[T]| -> (Vec<T>, Vec<T>) {
        match id.iter().rposition(|&c| c == T::from(b'.')) {
            Some(dot) => (id[..dot].to_vec(), id[dot + 1..].to_vec()),
            None => (id.to_vec(), Vec::new()),
        }
    };
    let padded = |x: &[T], y: &[T]| -> Ordering {
        let pad = T::from(b' ');
        (0..x.len().max(y.len()))
            .map(|i| {
                let l = x.get(i).copied().unwrap_or(pad);
                let r = y.get(i).copied().unwrap_or(pad);
                l.cmp(&r)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    };
    let (a_name, a_ext) = split(a);
    let (b_name, b_ext) = split(b);
    padded(&a_name, &b_name).then_with(|| padded(&a_ext, &b_ext))
}

struct Record {
    id: Vec<u8>,
    extent: u32,
    size: u32,
    is_dir: bool,
    system_use: Vec<u8>,
}

impl Record {
    fn dot(extent: u32, size: u32, system_use: Vec<u8>) -> Self {
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
    fn encode(&self) -> Vec<u8> {
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
fn primary_records(entries: &[Entry], root_size: u32) -> Vec<Record> {
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
fn joliet_records(entries: &[Entry], root: u32, root_size: u32) -> Vec<Record> {
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
fn dir_bytes(records: &[Record]) -> Vec<u8> {
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

fn dir_size(records: &[Record]) -> Result<u32, SeedIsoError> {
    to_u32(dir_bytes(records).len())
}

// System Use Sharing Protocol / Rock Ridge entries.

/// Payloads here are at most 233 bytes (`ER`), so the length fits a byte.
fn su_entry(signature: &[u8; 2], payload: &[u8]) -> Vec<u8> {
    [signature, &[(4 + payload.len()) as u8, 1][..], payload].concat()
}

fn sp() -> Vec<u8> {
    su_entry(b"SP", &[0xBE, 0xEF, 0])
}

fn rr(flags: u8) -> Vec<u8> {
    su_entry(b"RR", &[flags])
}

fn ce(sector: u32, offset: u32, len: u32) -> Vec<u8> {
    su_entry(
        b"CE",
        &[both32(sector), both32(offset), both32(len)].concat(),
    )
}

/// RRIP 1991A `PX`: mode, links, uid, gid (no serial number).
fn px(mode: u32, links: u32) -> Vec<u8> {
    su_entry(
        b"PX",
        &[both32(mode), both32(links), both32(0), both32(0)].concat(),
    )
}

/// Modification, access and attribute-change times.
fn tf() -> Vec<u8> {
    su_entry(
        b"TF",
        &[&[0x0E][..], &RECORD_DATE, &RECORD_DATE, &RECORD_DATE].concat(),
    )
}

fn nm(name: &str) -> Vec<u8> {
    su_entry(b"NM", &[&[0][..], name.as_bytes()].concat())
}

fn er_entry() -> Vec<u8> {
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

// Volume descriptors and path tables.

#[derive(Clone, Copy)]
struct VolumeInfo<'a> {
    label: &'a str,
    total_sectors: u32,
    root: u32,
    root_size: u32,
    l_table: u32,
    m_table: u32,
}

fn descriptor_header(kind: u8) -> Vec<u8> {
    let mut out = vec![0u8; SECTOR];
    out[0] = kind;
    out[1..6].copy_from_slice(b"CD001");
    out[6] = 1;
    out
}

fn volume_descriptor(info: &VolumeInfo, joliet: bool) -> Vec<u8> {
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
fn path_table(root: u32, big_endian: bool) -> [u8; PATH_TABLE_LEN] {
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

fn both16(v: u16) -> [u8; 4] {
    let (le, be) = (v.to_le_bytes(), v.to_be_bytes());
    [le[0], le[1], be[0], be[1]]
}

fn both32(v: u32) -> [u8; 8] {
    let (le, be) = (v.to_le_bytes(), v.to_be_bytes());
    [le[0], le[1], le[2], le[3], be[0], be[1], be[2], be[3]]
}

fn to_u32(v: usize) -> Result<u32, SeedIsoError> {
    u32::try_from(v).map_err(|_| SeedIsoError::ImageTooLarge)
}

fn put(image: &mut [u8], sector: u32, bytes: &[u8]) {
    let at = sector as usize * SECTOR;
    image[at..at + bytes.len()].copy_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_DATA: &[u8] = b"#cloud-config\nfinal_message: \"up after $UPTIME\"\n";
    const META_DATA: &[u8] = b"instance-id: vm-1\nlocal-hostname: vm-1\n";
    const NETWORK_CONFIG: &[u8] = b"version: 2\nethernets: {}\n";

    fn seed_files() -> Vec<SeedFile<'static>> {
        vec![
            SeedFile {
                name: "user-data",
                data: USER_DATA,
            },
            SeedFile {
                name: "meta-data",
                data: META_DATA,
            },
            SeedFile {
                name: "network-config",
                data: NETWORK_CONFIG,
            },
        ]
    }

    fn seed() -> Vec<u8> {
        build_seed_iso("cidata", &seed_files()).unwrap()
    }

    // A minimal reader, independent of the writer's helpers.

    fn sector(image: &[u8], n: u32) -> &[u8] {
        &image[n as usize * 2048..(n as usize + 1) * 2048]
    }

    fn both_endian_u32(b: &[u8]) -> u32 {
        let le = u32::from_le_bytes(b[0..4].try_into().unwrap());
        let be = u32::from_be_bytes(b[4..8].try_into().unwrap());
        assert_eq!(le, be, "both-endian field disagrees");
        le
    }

    #[derive(Debug)]
    struct Raw {
        id: Vec<u8>,
        extent: u32,
        size: u32,
        flags: u8,
        system_use: Vec<u8>,
    }

    fn parse_record(r: &[u8]) -> Raw {
        let id_len = r[32] as usize;
        let su_start = 33 + id_len + (id_len + 1) % 2;
        assert_eq!(r.len() % 2, 0, "odd record length");
        Raw {
            id: r[33..33 + id_len].to_vec(),
            extent: both_endian_u32(&r[2..10]),
            size: both_endian_u32(&r[10..18]),
            flags: r[25],
            system_use: r[su_start..].to_vec(),
        }
    }

    /// Records of the directory whose own record is at `vd[156..190]`.
    fn read_root(image: &[u8], vd_sector: u32) -> Vec<Raw> {
        let root = parse_record(&sector(image, vd_sector)[156..190]);
        assert_eq!(root.size % 2048, 0);
        let mut records = Vec::new();
        for s in 0..root.size / 2048 {
            let data = sector(image, root.extent + s);
            let mut at = 0;
            while at < 2048 && data[at] != 0 {
                let len = data[at] as usize;
                assert!(at + len <= 2048, "record crosses a sector boundary");
                records.push(parse_record(&data[at..at + len]));
                at += len;
            }
        }
        assert_eq!(records[0].id, [0]);
        assert_eq!(records[1].id, [1]);
        assert_eq!(records[0].extent, root.extent);
        assert_eq!(records[0].size, root.size);
        records
    }

    fn file_data<'a>(image: &'a [u8], r: &Raw) -> &'a [u8] {
        let start = r.extent as usize * 2048;
        &image[start..start + r.size as usize]
    }

    /// SUSP entries as (signature, payload).
    fn su_entries(su: &[u8]) -> Vec<([u8; 2], Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 4 <= su.len() {
            let len = su[at + 2] as usize;
            assert!(len >= 4 && at + len <= su.len(), "bad SUSP length");
            assert_eq!(su[at + 3], 1, "SUSP entry version");
            out.push(([su[at], su[at + 1]], su[at + 4..at + len].to_vec()));
            at += len;
        }
        out
    }

    fn su_find(su: &[u8], sig: &[u8; 2]) -> Option<Vec<u8>> {
        su_entries(su)
            .into_iter()
            .find(|(s, _)| s == sig)
            .map(|(_, p)| p)
    }

    fn joliet_files(image: &[u8]) -> Vec<(String, Vec<u8>)> {
        read_root(image, 17)[2..]
            .iter()
            .map(|r| {
                let units: Vec<u16> =
                    r.id.chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                (
                    String::from_utf16(&units).unwrap(),
                    file_data(image, r).to_vec(),
                )
            })
            .collect()
    }

    fn rock_ridge_files(image: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        read_root(image, 16)[2..]
            .iter()
            .map(|r| {
                let nm = su_find(&r.system_use, b"NM").expect("NM entry");
                assert_eq!(nm[0], 0, "NM flags");
                let px = su_find(&r.system_use, b"PX").expect("PX entry");
                (
                    String::from_utf8(nm[1..].to_vec()).unwrap(),
                    both_endian_u32(&px[0..8]),
                    file_data(image, r).to_vec(),
                )
            })
            .collect()
    }

    fn sorted_inputs(files: &[SeedFile]) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = files
            .iter()
            .map(|f| (f.name.to_string(), f.data.to_vec()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn output_is_deterministic_and_independent_of_input_order() {
        let a = seed();
        assert_eq!(a, seed());
        let mut reversed = seed_files();
        reversed.reverse();
        assert_eq!(a, build_seed_iso("cidata", &reversed).unwrap());
    }

    #[test]
    fn system_area_is_zero_and_size_is_whole_sectors() {
        let image = seed();
        assert!(image[..16 * 2048].iter().all(|&b| b == 0));
        assert_eq!(image.len() % 2048, 0);
        let pvd = sector(&image, 16);
        assert_eq!(both_endian_u32(&pvd[80..88]) as usize, image.len() / 2048);
        assert_eq!(
            both_endian_u32(&sector(&image, 17)[80..88]) as usize,
            image.len() / 2048
        );
    }

    #[test]
    fn volume_descriptors() {
        let image = seed();
        for (s, kind) in [(16, 1u8), (17, 2), (18, 255)] {
            let d = sector(&image, s);
            assert_eq!(d[0], kind);
            assert_eq!(&d[1..6], b"CD001");
            assert_eq!(d[6], 1);
        }
        assert_eq!(
            &image[0x8028..0x8028 + 32],
            b"cidata                          "
        );
        let pvd = sector(&image, 16);
        assert_eq!(&pvd[128..132], &[0x00, 0x08, 0x08, 0x00]);
        assert_eq!(&pvd[813..830], b"1970010100000000\0");
        assert_eq!(&pvd[847..864], b"0000000000000000\0");
        assert_eq!(pvd[881], 1);

        let svd = sector(&image, 17);
        assert_eq!(&svd[88..91], b"%/E");
        assert!(svd[91..120].iter().all(|&b| b == 0));
        let mut label = Vec::new();
        for c in "cidata"
            .encode_utf16()
            .chain(std::iter::repeat(0x20))
            .take(16)
        {
            label.extend_from_slice(&c.to_be_bytes());
        }
        assert_eq!(&svd[40..72], &label[..]);
        assert!(sector(&image, 18)[7..].iter().all(|&b| b == 0));
    }

    #[test]
    fn path_tables_point_at_the_roots() {
        let image = seed();
        for vd in [16, 17] {
            let d = sector(&image, vd);
            let root = parse_record(&d[156..190]).extent;
            assert_eq!(both_endian_u32(&d[132..140]), 10);
            let l = u32::from_le_bytes(d[140..144].try_into().unwrap());
            let m = u32::from_be_bytes(d[148..152].try_into().unwrap());
            let l_entry = &sector(&image, l)[..10];
            let m_entry = &sector(&image, m)[..10];
            assert_eq!(l_entry[0], 1);
            assert_eq!(u32::from_le_bytes(l_entry[2..6].try_into().unwrap()), root);
            assert_eq!(u16::from_le_bytes([l_entry[6], l_entry[7]]), 1);
            assert_eq!(m_entry[0], 1);
            assert_eq!(u32::from_be_bytes(m_entry[2..6].try_into().unwrap()), root);
            assert_eq!(u16::from_be_bytes([m_entry[6], m_entry[7]]), 1);
        }
    }

    #[test]
    fn joliet_round_trip() {
        let image = seed();
        assert_eq!(joliet_files(&image), sorted_inputs(&seed_files()));
    }

    #[test]
    fn rock_ridge_round_trip() {
        let image = seed();
        let mut got: Vec<_> = rock_ridge_files(&image)
            .into_iter()
            .map(|(name, mode, data)| {
                assert_eq!(mode, 0o100444);
                (name, data)
            })
            .collect();
        got.sort();
        assert_eq!(got, sorted_inputs(&seed_files()));
    }

    #[test]
    fn rock_ridge_root_entries() {
        let image = seed();
        let root = read_root(&image, 16);
        let dot = &root[0].system_use;
        assert_eq!(&dot[..7], b"SP\x07\x01\xBE\xEF\x00", "SP must come first");
        let px = su_find(dot, b"PX").unwrap();
        assert_eq!(both_endian_u32(&px[0..8]), 0o040555);

        let ce = su_find(dot, b"CE").unwrap();
        let (block, offset, len) = (
            both_endian_u32(&ce[0..8]),
            both_endian_u32(&ce[8..16]) as usize,
            both_endian_u32(&ce[16..24]) as usize,
        );
        let area = &sector(&image, block)[offset..offset + len];
        let er = su_find(area, b"ER").expect("ER in continuation area");
        let (id_len, des_len, src_len) = (er[0] as usize, er[1] as usize, er[2] as usize);
        assert_eq!(er[3], 1);
        assert_eq!(&er[4..4 + id_len], b"RRIP_1991A");
        assert_eq!(er.len(), 4 + id_len + des_len + src_len);
    }

    #[test]
    fn primary_names_are_unique_8_3_d_characters() {
        let files = [
            SeedFile {
                name: "user-data",
                data: b"1",
            },
            SeedFile {
                name: "user_data",
                data: b"2",
            },
            SeedFile {
                name: "USER.DATA",
                data: b"3",
            },
            SeedFile {
                name: "user-data.v1.txt",
                data: b"4",
            },
            SeedFile {
                name: "ünï cödé",
                data: b"5",
            },
            SeedFile {
                name: ".hidden",
                data: b"6",
            },
        ];
        let image = build_seed_iso("cidata", &files).unwrap();
        let ids: Vec<String> = read_root(&image, 16)[2..]
            .iter()
            .map(|r| String::from_utf8(r.id.clone()).unwrap())
            .collect();
        for id in &ids {
            let (name, version) = id.split_once(';').unwrap();
            assert_eq!(version, "1");
            let (base, ext) = name.split_once('.').unwrap();
            assert!((1..=8).contains(&base.len()) && ext.len() <= 3, "{id}");
            assert!(
                format!("{base}{ext}")
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{id}"
            );
        }
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), files.len());
        assert!(ids.contains(&"USER_DAT.;1".to_string()));
        assert!(ids.contains(&"USER_D_1.;1".to_string()));
        assert!(ids.contains(&"USER_DAT.TXT;1".to_string()));
        assert!(ids.contains(&"_HIDDEN.;1".to_string()));

        let mut rr: Vec<_> = rock_ridge_files(&image)
            .into_iter()
            .map(|(name, _, data)| (name, data))
            .collect();
        rr.sort();
        assert_eq!(rr, sorted_inputs(&files));
        assert_eq!(joliet_files(&image), sorted_inputs(&files));
    }

    #[test]
    fn records_follow_ecma_119_order() {
        let image = seed();
        let primary: Vec<Vec<u8>> = read_root(&image, 16)[2..]
            .iter()
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(
            primary,
            [&b"META_DAT.;1"[..], b"NETWORK_.;1", b"USER_DAT.;1"]
        );
        // The name part is compared before the extension, space-padded, so
        // "a.b" sorts before "a-c" although '.' > '-'.
        let utf16 = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        assert_eq!(ecma_order(&utf16("a.b"), &utf16("a-c")), Ordering::Less);
        assert_eq!(ecma_order(&utf16("a-c"), &utf16("a.b")), Ordering::Greater);
        assert_eq!(ecma_order(b"AB.", b"A.ZZZ"), Ordering::Greater);
        assert_eq!(ecma_order(b"A.B", b"A.B"), Ordering::Equal);
        let names: Vec<String> = joliet_files(&image).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["meta-data", "network-config", "user-data"]);
    }

    #[test]
    fn file_data_sits_at_its_extent_padded_with_zeros() {
        let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8 + 1).collect();
        let files = [
            SeedFile {
                name: "user-data",
                data: &big,
            },
            SeedFile {
                name: "meta-data",
                data: META_DATA,
            },
            SeedFile {
                name: "empty",
                data: b"",
            },
        ];
        let image = build_seed_iso("cidata", &files).unwrap();
        let mut used = BTreeSet::new();
        for r in &read_root(&image, 16)[2..] {
            assert_eq!(r.flags, 0);
            let start = r.extent as usize * 2048;
            let end = start + (r.size as usize).div_ceil(2048) * 2048;
            assert!(end <= image.len());
            assert!(image[start + r.size as usize..end].iter().all(|&b| b == 0));
            for s in r.extent..r.extent + r.size.div_ceil(2048) {
                assert!(used.insert(s), "sector {s} shared by two files");
            }
        }
        let expected = sorted_inputs(&files);
        assert_eq!(joliet_files(&image), expected);
        let mut rr: Vec<_> = rock_ridge_files(&image)
            .into_iter()
            .map(|(n, _, d)| (n, d))
            .collect();
        rr.sort();
        assert_eq!(rr, expected);
    }

    #[test]
    fn directories_spanning_several_sectors() {
        let names: Vec<String> = (0..60)
            .map(|i| format!("file-number-{i:02}-{}", "x".repeat(40)))
            .collect();
        let files: Vec<SeedFile> = names
            .iter()
            .map(|n| SeedFile {
                name: n,
                data: n.as_bytes(),
            })
            .collect();
        let image = build_seed_iso("cidata", &files).unwrap();
        let primary_root = parse_record(&sector(&image, 16)[156..190]);
        let joliet_root = parse_record(&sector(&image, 17)[156..190]);
        assert!(primary_root.size > 2048 && joliet_root.size > 2048);
        assert_eq!(joliet_files(&image), sorted_inputs(&files));
        assert_eq!(rock_ridge_files(&image).len(), files.len());
    }

    #[test]
    fn longest_name_and_label_are_accepted() {
        let name = "n".repeat(64);
        let label = "L".repeat(32);
        let image = build_seed_iso(
            &label,
            &[SeedFile {
                name: &name,
                data: b"x",
            }],
        )
        .unwrap();
        assert_eq!(&image[0x8028..0x8048], label.as_bytes());
        assert_eq!(joliet_files(&image), [(name.clone(), b"x".to_vec())]);
        assert_eq!(rock_ridge_files(&image)[0].0, name);
    }

    #[test]
    fn rejects_bad_input() {
        let ok = [SeedFile {
            name: "user-data",
            data: b"",
        }];
        assert_eq!(build_seed_iso("cidata", &[]), Err(SeedIsoError::NoFiles));
        for label in ["", "ci-data", "ci data", "cïdata", &"L".repeat(33)] {
            assert_eq!(
                build_seed_iso(label, &ok),
                Err(SeedIsoError::InvalidLabel(label.to_string()))
            );
        }
        let long = "n".repeat(65);
        for name in [
            "", "a/b", "/", "a\0b", ".", "..", "a\\b", "a;1", "tab\t", &long,
        ] {
            assert_eq!(
                build_seed_iso("cidata", &[SeedFile { name, data: b"" }]),
                Err(SeedIsoError::InvalidName(name.to_string()))
            );
        }
        let dup = [
            SeedFile {
                name: "meta-data",
                data: b"a",
            },
            SeedFile {
                name: "user-data",
                data: b"b",
            },
            SeedFile {
                name: "meta-data",
                data: b"c",
            },
        ];
        assert_eq!(
            build_seed_iso("cidata", &dup),
            Err(SeedIsoError::DuplicateName("meta-data".to_string()))
        );
    }

    #[test]
    fn errors_display_and_are_std_errors() {
        let err: Box<dyn std::error::Error> = Box::new(SeedIsoError::InvalidName("a/b".into()));
        assert!(err.to_string().contains("\"a/b\""));
        assert!(
            SeedIsoError::NoFiles
                .to_string()
                .contains("at least one file")
        );
    }

    /// Cross-checks with isoinfo (genisoimage), an independent ISO 9660 reader.
    #[test]
    fn isoinfo_reads_the_image() {
        use std::process::Command;
        if !testkit::require(testkit::on_path("isoinfo"), "isoinfo is not installed (apt-get install genisoimage)") {
            return;
        }
        let path = std::env::temp_dir().join(format!("seed-iso-test-{}.iso", std::process::id()));
        std::fs::write(&path, seed()).unwrap();
        let run = |args: &[&str]| -> Vec<u8> {
            let out = Command::new("isoinfo")
                .args(args)
                .arg("-i")
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "isoinfo {args:?} failed");
            out.stdout
        };
        let info = String::from_utf8_lossy(&run(&["-d"])).into_owned();
        let extracted = [
            run(&["-R", "-x", "/user-data"]),
            run(&["-J", "-x", "/network-config"]),
            run(&["-x", "/META_DAT.;1"]),
        ];
        std::fs::remove_file(&path).unwrap();
        assert!(info.contains("Volume id: cidata"), "{info}");
        assert!(info.contains("Joliet with UCS level 3 found"), "{info}");
        assert!(
            info.contains("Rock Ridge signatures version 1 found"),
            "{info}"
        );
        assert_eq!(extracted, [USER_DATA, NETWORK_CONFIG, META_DATA]);
    }
}
