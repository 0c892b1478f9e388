mod common;
use common::{Root, BINARIES};

#[test]
fn every_executable_has_help_and_version() {
    let root = Root::new();
    for bin in BINARIES {
        let out = root.cmd(bin).arg("--help").output().unwrap();
        assert!(out.status.success(), "{bin} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"), "{bin}");
        let out = root.cmd(bin).arg("--version").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{bin} {}\n", env!("CARGO_PKG_VERSION")));
    }
}
