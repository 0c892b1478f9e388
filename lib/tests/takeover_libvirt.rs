//! Taking over an upstream libvirt host: a domain defined the way the upstream
//! Python provisioner defines it (its XML shape, `vms/<name>.qcow2`,
//! `cloud-init/<name>/{user-data,network-config,cidata.iso}`, the older
//! `cloud-init/<name>.img`, no file of ours), on libvirt's in-process test
//! driver, run through our backend.
#![cfg(feature = "libvirt")]

#[path = "support/libvirt_fixture.rs"]
mod libvirt_fixture;

use provisioner::host::config::DbConfig;
use provisioner::host::paths::HostPaths;
use provisioner::provider::module::OpenContext;
use provisioner::provider::{registry, Backend, PowerState};
use std::path::Path;

const URI: &str = "test:///default";

/// Upstream's domain XML as the facts sheet describes it (type, machine and
/// devices; the test driver accepts the shape and emulates the states), with
/// the domain type `kind` (the test driver refuses `kvm` on some builds).
fn upstream_xml(name: &str, state: &Path, kind: &str) -> String {
    include_str!("fixtures/upstream/domain.xml")
        .replace("{name}", name)
        .replace("{state}", &state.display().to_string())
        .replace("<domain type='kvm'>", &format!("<domain type='{kind}'>"))
}

/// The files upstream's create leaves for `name`, and the defined, running
/// domain; and the connection that keeps the test driver's state alive (it
/// is discarded when its last connection closes).
fn adopt_upstream_vm(paths: &HostPaths, name: &str) -> (Vec<std::path::PathBuf>, virt::connect::Connect) {
    let state = paths.state_dir();
    let seed = state.join("cloud-init").join(name);
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::create_dir_all(state.join("vms")).unwrap();
    let files = vec![
        state.join("vms").join(format!("{name}.qcow2")),
        seed.join("user-data"),
        seed.join("network-config"),
        seed.join("cidata.iso"),
        state.join("cloud-init").join(format!("{name}.img")),
    ];
    for f in &files {
        std::fs::write(f, b"upstream").unwrap();
    }
    let conn = virt::connect::Connect::open(Some(URI)).unwrap();
    let domain = conn
        .define_domain_xml_flags(&upstream_xml(name, &state, "kvm"), 0)
        .or_else(|_| conn.define_domain_xml_flags(&upstream_xml(name, &state, "test"), 0))
        .unwrap();
    domain.create().unwrap();
    (files, conn)
}

fn backend(paths: &HostPaths) -> Backend {
    let config = DbConfig::load(paths, true).unwrap();
    (registry::find("libvirt").unwrap().open)(&OpenContext { paths, config: &config }).unwrap()
}

#[test]
fn an_upstream_domain_is_listed_read_powered_and_terminated_without_leftovers() {
    let root = tempfile::tempdir().unwrap();
    let paths = HostPaths::with_root(root.path());
    libvirt_fixture::write(&paths, URI, "br0");
    let name = "blockhost-up1";
    let (files, _conn) = adopt_upstream_vm(&paths, name);
    // A template and a VM of another name must survive.
    let template = paths.state_dir().join("templates/bookworm-test/disk.qcow2");
    let neighbour = paths.state_dir().join("vms/blockhost-up10.qcow2");
    std::fs::write(&neighbour, b"other").unwrap();
    let b = backend(&paths);

    let info = b.get(name).unwrap().expect("the upstream domain is seen");
    assert_eq!((info.state, info.vcpus, info.memory_mib), (PowerState::Running, 1, 2048));
    assert!(b.list().unwrap().iter().any(|v| v.name == name), "listed as ours: it has upstream's overlay");
    let stats = b.stats(None).unwrap();
    assert!(stats.iter().any(|s| s.name == name && s.state == Some(PowerState::Running)), "in the bulk statistics");
    assert_eq!(b.stats(Some(&[name.to_string()])).unwrap().len(), 1);
    b.power_off(name).unwrap();
    assert_eq!(b.get(name).unwrap().unwrap().state, PowerState::ShutOff);
    b.start(name).unwrap();

    let left = b.leftovers(name).unwrap();
    for f in [&files[0], &seed_dir(&paths, name), &files[4]] {
        assert!(left.contains(&f.display().to_string()), "{} not reported in {left:?}", f.display());
    }
    b.terminate(name).unwrap();
    assert_eq!(b.get(name).unwrap(), None);
    assert_eq!(b.leftovers(name).unwrap(), Vec::<String>::new());
    for f in &files {
        assert!(!f.exists(), "{} left behind", f.display());
    }
    assert!(template.exists() && neighbour.exists(), "only the VM's own files are removed");
    b.terminate(name).unwrap();
}

fn seed_dir(paths: &HostPaths, name: &str) -> std::path::PathBuf {
    paths.state_dir().join("cloud-init").join(name)
}

#[test]
fn the_domain_xml_an_interrupted_upstream_create_left_is_reported_and_removed() {
    // upstream's create died after writing vms/<name>.xml: the XML is removed as well.
    let root = tempfile::tempdir().unwrap();
    let paths = HostPaths::with_root(root.path());
    libvirt_fixture::write(&paths, URI, "br0");
    let name = "blockhost-up2";
    let (files, _conn) = adopt_upstream_vm(&paths, name);
    let xml = paths.state_dir().join("vms").join(format!("{name}.xml"));
    std::fs::write(&xml, upstream_xml(name, &paths.state_dir(), "kvm")).unwrap();
    let b = backend(&paths);
    assert!(b.leftovers(name).unwrap().contains(&xml.display().to_string()));
    b.terminate(name).unwrap();
    assert!(!xml.exists());
    assert!(files.iter().all(|f| !f.exists()));
}

/// The verbs over upstream's database (db.yaml naming `vm-db.json`, records
/// without our fields) and an upstream domain.
#[test]
fn the_verbs_run_on_upstreams_database_and_domain() {
    use provisioner::verbs::{destroy, list, power, status, Session};
    let root = tempfile::tempdir().unwrap();
    let paths = HostPaths::with_root(root.path());
    libvirt_fixture::write(&paths, URI, "br0");
    std::fs::write(
        paths.config_file("db.yaml"),
        format!("db_file: /var/lib/blockhost/vm-db.json\nstorage_pool: blockhost\nstorage_path: /var/lib/blockhost/vms\nbridge: br0\ngc_grace_days: 7\nip_pool: {{network: 192.168.122.0/24, start: 2, end: 254, gateway: 192.168.122.1}}\nlibvirt: {{uri: '{URI}', accelerator: tcg}}\n"),
    )
    .unwrap();
    std::fs::create_dir_all(paths.share_dir()).unwrap();
    std::fs::write(paths.manifest(), r#"{"name": "libvirt"}"#).unwrap();
    let upstream = include_str!("fixtures/upstream/vm-db.json");
    let db_file = paths.state_dir().join("vm-db.json");
    std::fs::write(&db_file, upstream).unwrap();
    let (files, _conn) = adopt_upstream_vm(&paths, "blockhost-001");
    let session = Session::open(paths.clone(), false, true).unwrap();

    assert_eq!(status::run(&session, "blockhost-001").word, status::ACTIVE);
    let rows = list::run(&session).unwrap().rows;
    let row = |n: &str| rows.iter().find(|r| r.name == n).map(|r| (r.status.clone(), r.ip.clone(), r.created.clone()));
    assert_eq!(row("blockhost-001"), Some(("active".into(), "192.168.122.200".into(), "2026-11-30".into())));
    assert_eq!(row("blockhost-003").map(|r| r.0), Some("destroyed".into()));
    assert!(matches!(power::kill(&session, "blockhost-001").unwrap(), power::Outcome::Done));
    assert_eq!(status::run(&session, "blockhost-001").word, "suspended");
    assert!(matches!(power::start(&session, "blockhost-001").unwrap(), power::Outcome::Done));
    assert_eq!(std::fs::read_to_string(&db_file).unwrap(), upstream, "power verbs leave the database alone");

    destroy::run(&session, "blockhost-001").unwrap();
    assert!(files.iter().all(|f| !f.exists()), "upstream's files removed");
    assert_eq!(session.backend.get("blockhost-001").unwrap(), None);
    let doc = session.db.read().unwrap();
    assert_eq!(doc.vm("blockhost-001").unwrap().status(), "destroyed");
    assert!(!doc.allocated("allocated_ips").contains(&"192.168.122.200"), "its address released");
    let after = std::fs::read_to_string(&db_file).unwrap();
    let record_002 = &upstream[upstream.find("    \"blockhost-002\"").unwrap()..upstream.find("    \"blockhost-003\"").unwrap()];
    assert!(after.contains(record_002), "the other records pass through byte for byte");
    destroy::run(&session, "blockhost-001").unwrap();
}
