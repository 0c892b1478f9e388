use crate::host::{self, Host};
use provisioner::host::vmdb::DbError;
use provisioner::verbs::{destroy, VerbError};
use std::time::{Duration, Instant};

/// Holds the VM database's lock file the way another writer would.
fn hold_db_lock(h: &Host) -> std::fs::File {
    let mut path = h.db_path().into_os_string();
    path.push(".lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
    file.lock().unwrap();
    file
}

#[test]
fn the_session_waits_for_the_database_lock_as_db_yaml_says() {
    let h = Host::with_db_yaml(&format!("{}db_lock_timeout_seconds: 1\n", host::DB_YAML));
    h.create("v");
    let _held = hold_db_lock(&h);
    let started = Instant::now();
    let err = destroy::run(&h.session(), "v").unwrap_err();
    assert!(matches!(err, VerbError::Db(DbError::LockTimeout(_, secs, _)) if secs == 1.0), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "the configured bound, not the default: {:?}", started.elapsed());
    assert_eq!(h.field("v", "status").as_deref(), Some("active"));
}

#[test]
fn a_signal_ends_the_wait_for_the_database_lock() {
    let h = Host::new();
    h.create("v");
    let _held = hold_db_lock(&h);
    let session = h.session();
    session.interrupt.flag().store(15, std::sync::atomic::Ordering::SeqCst);
    let started = Instant::now();
    let err = destroy::run(&session, "v").unwrap_err();
    assert!(matches!(err, VerbError::Db(DbError::Interrupted(15))), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_mock_keeps_its_database_and_state_in_its_own_directory() {
    let h = Host::new();
    h.create("v");
    let s = h.session();
    assert_eq!(s.db.path(), h.db_path());
    assert_eq!(s.state_dir(), h.mock_dir());
    assert_eq!(s.metrics_dir(), h.mock_dir().join("metrics"));
    assert!(!h.paths.host("/var/lib/blockhost/vms.json").exists(), "never the production database");
}

#[test]
fn a_config_file_that_cannot_be_read_is_an_error_not_a_default() {
    let h = Host::new();
    // A directory where a config file belongs: it exists, but reading it fails.
    std::fs::create_dir(h.paths.config_file("broker-allocation.json")).unwrap();
    let err = crate::host::run_create(&h.session(), &crate::host::args("v", false)).unwrap_err();
    assert!(matches!(err.error, VerbError::Config(ref e) if e.to_string().contains("broker-allocation.json")), "{err:?}");
    std::fs::remove_file(h.paths.config_file("db.yaml")).unwrap();
    std::fs::create_dir(h.paths.config_file("db.yaml")).unwrap();
    let err = provisioner::verbs::Session::open(h.paths.clone(), true, false).err().expect("db.yaml unreadable");
    assert!(matches!(err, VerbError::Config(_)), "{err:?}");
}
