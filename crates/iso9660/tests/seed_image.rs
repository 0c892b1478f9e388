//! The seed image read back by a minimal reader written independently of the
//! writer, and by `isoinfo` (genisoimage) where it is installed.

use iso9660::{build_seed_iso, SeedFile, SeedIsoError};
use std::collections::BTreeSet;

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
