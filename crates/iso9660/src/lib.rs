//! Deterministic ISO 9660 (ECMA-119) image writer for a cloud-init NoCloud
//! seed: one root directory holding a few small files, with Joliet (UCS-2
//! level 3) and Rock Ridge (RRIP 1991A) names so every reader sees the real
//! file names.
//!
//! ```
//! let files = [iso9660::SeedFile { name: "meta-data", data: b"instance-id: vm-1\n" }];
//! let image = iso9660::build_seed_iso("cidata", &files).unwrap();
//! assert_eq!(&image[0x8001..0x8006], b"CD001");
//! ```
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
#![forbid(unsafe_code)]

mod descriptors;
mod endian;
mod error;
mod names;
mod records;
mod rock_ridge;

pub use error::SeedIsoError;

use descriptors::{descriptor_header, path_table, volume_descriptor, VolumeInfo};
use names::{check_label, check_name, primary_id};
use records::{dir_bytes, dir_size, joliet_records, primary_records};
use rock_ridge::er_entry;
use std::collections::BTreeSet;

const SECTOR: usize = 2048;

const PVD_SECTOR: u32 = 16;
const SVD_SECTOR: u32 = 17;
const TERMINATOR_SECTOR: u32 = 18;
const PRIMARY_L_TABLE: u32 = 19;
const PRIMARY_M_TABLE: u32 = 20;
const JOLIET_L_TABLE: u32 = 21;
const JOLIET_M_TABLE: u32 = 22;
const CONTINUATION_SECTOR: u32 = 23;
const PRIMARY_ROOT: u32 = 24;

/// One file to put in the root directory of the seed image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedFile<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

/// Builds the ISO image bytes. The same inputs always give the same bytes,
/// whatever the order of `files`.
pub fn build_seed_iso(volume_label: &str, files: &[SeedFile]) -> Result<Vec<u8>, SeedIsoError> {
    check_label(volume_label)?;
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

fn to_u32(v: usize) -> Result<u32, SeedIsoError> {
    u32::try_from(v).map_err(|_| SeedIsoError::ImageTooLarge)
}

fn put(image: &mut [u8], sector: u32, bytes: &[u8]) {
    let at = sector as usize * SECTOR;
    image[at..at + bytes.len()].copy_from_slice(bytes);
}
