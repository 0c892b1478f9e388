//! The template disk's partition table: an MBR (msdos label) with one bootable
//! Linux partition starting at 1 MiB. BIOS GRUB (grub-pc) embeds its core
//! image in the gap between the MBR and that partition, and cloud-init's
//! growpart grows the partition to the end of a larger VM disk with sfdisk.

pub const SECTOR: u64 = 512;
/// Where the root partition starts: 1 MiB, as partitioning tools align it.
pub const ROOT_START: u64 = 1 << 20;

const ENTRY_OFFSET: usize = 446;
const DISK_ID_OFFSET: usize = 440;
const BOOTABLE: u8 = 0x80;
const LINUX: u8 = 0x83;

/// The first sector of a disk whose only partition starts at [`ROOT_START`]
/// and is `partition_bytes` long (a whole number of sectors). The boot code
/// area stays zero: grub-install writes it later.
pub fn mbr(partition_bytes: u64, disk_id: u32) -> Result<[u8; SECTOR as usize], String> {
    let first = ROOT_START / SECTOR;
    if partition_bytes == 0 || !partition_bytes.is_multiple_of(SECTOR) {
        return Err(format!("partition size {partition_bytes} is not a positive number of sectors"));
    }
    let sectors = u32::try_from(partition_bytes / SECTOR)
        .ok()
        .filter(|s| u64::from(*s) + first <= u64::from(u32::MAX))
        .ok_or_else(|| format!("partition size {partition_bytes} is past the 2 TiB an MBR can address"))?;
    let last = first + u64::from(sectors) - 1;
    let mut sector = [0u8; SECTOR as usize];
    sector[DISK_ID_OFFSET..DISK_ID_OFFSET + 4].copy_from_slice(&disk_id.to_le_bytes());
    let entry = &mut sector[ENTRY_OFFSET..ENTRY_OFFSET + 16];
    entry[0] = BOOTABLE;
    entry[1..4].copy_from_slice(&chs(first));
    entry[4] = LINUX;
    entry[5..8].copy_from_slice(&chs(last));
    entry[8..12].copy_from_slice(&(first as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&sectors.to_le_bytes());
    sector[510] = 0x55;
    sector[511] = 0xAA;
    Ok(sector)
}

/// An LBA as cylinder/head/sector bytes of the usual 255-head, 63-sector
/// geometry; past cylinder 1023 the maximum, as every tool writes it (readers
/// use the LBA fields).
fn chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let cylinder = lba / (HEADS * SECTORS);
    if cylinder > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let head = (lba / SECTORS) % HEADS;
    let sector = lba % SECTORS + 1;
    [head as u8, (sector as u8) | (((cylinder >> 8) as u8) << 6), cylinder as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bootable_linux_partition_at_1_mib() {
        let size = 2048u64 << 20;
        let mbr = mbr(size, 0xDEADBEEF).unwrap();
        assert_eq!(&mbr[..440], &[0u8; 440][..], "boot code left to grub-install");
        assert_eq!(&mbr[440..444], &[0xEF, 0xBE, 0xAD, 0xDE]);
        let entry = &mbr[446..462];
        assert_eq!(entry[0], 0x80);
        assert_eq!(entry[4], 0x83);
        assert_eq!(u32::from_le_bytes(entry[8..12].try_into().unwrap()), 2048);
        assert_eq!(u64::from(u32::from_le_bytes(entry[12..16].try_into().unwrap())), size / 512);
        assert_eq!(&mbr[462..510], &[0u8; 48][..], "no other partition");
        assert_eq!(&mbr[510..], &[0x55, 0xAA]);
    }

    #[test]
    fn chs_as_partitioning_tools_write_it() {
        // sfdisk's entry for a partition at 2048: 0/32/33.
        assert_eq!(chs(2048), [0x20, 0x21, 0x00]);
        assert_eq!(chs(0), [0, 1, 0]);
        // Cylinder 300 (> 255): its two high bits go into the sector byte.
        assert_eq!(chs(300 * 255 * 63), [0, 0x41, 0x2C]);
        assert_eq!(chs(1024 * 255 * 63), [0xFE, 0xFF, 0xFF]);
    }

    #[test]
    fn sizes_an_mbr_cannot_hold_are_refused() {
        assert!(mbr(0, 1).is_err());
        assert!(mbr(1000, 1).is_err());
        assert!(mbr(2 << 40, 1).is_err());
        assert!(mbr((u64::from(u32::MAX) - 2048) * 512, 1).is_ok());
    }

    #[test]
    fn partx_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        let size = 64u64 << 20;
        let file = std::fs::File::create(&raw).unwrap();
        file.set_len(ROOT_START + size).unwrap();
        drop(file);
        let mut bytes = std::fs::read(&raw).unwrap();
        bytes[..512].copy_from_slice(&mbr(size, 7).unwrap());
        std::fs::write(&raw, bytes).unwrap();
        let out = std::process::Command::new("partx").args(["--show", "--noheadings", "-o", "NR,START,SECTORS,TYPE"]).arg(&raw).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let got: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
        assert_eq!(got, ["1", "2048", &(size / 512).to_string(), "0x83"]);
    }
}
