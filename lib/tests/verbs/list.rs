use crate::host::Host;
use provisioner::verbs::{destroy, list, power};
use serde_json::json;
use std::time::Duration;

#[test]
fn every_record_in_order_with_its_live_status() {
    let h = Host::new();
    assert_eq!(list::run(&h.session()).unwrap().rows, vec![]);
    for name in ["zeta", "alpha", "mid", "lost"] {
        h.create(name);
    }
    power::stop(&h.session(), "alpha", Duration::from_secs(5)).unwrap();
    destroy::run(&h.session(), "mid").unwrap();
    h.knobs("drift: vanish:lost\n");
    let rows = list::run(&h.session()).unwrap().rows;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let got: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r.name.as_str(), r.status.as_str(), r.ip.as_str())).collect();
    assert_eq!(
        got,
        [("zeta", "active", "10.0.0.10"), ("alpha", "suspended", "10.0.0.11"), ("mid", "destroyed", "10.0.0.12"), ("lost", "destroyed", "10.0.0.13")]
    );
    assert!(rows.iter().all(|r| r.created == today), "{rows:?}");
    assert_eq!(rows[0].to_json(), json!({"name": "zeta", "status": "active", "ip": "10.0.0.10", "created": today}));
}

#[test]
fn an_unreachable_backend_gives_unknown_except_for_destroyed_records() {
    let h = Host::new();
    h.create("a");
    h.create("b");
    destroy::run(&h.session(), "b").unwrap();
    h.knobs("unreachable: true\n");
    let listing = list::run(&h.session()).unwrap();
    let got: Vec<(&str, &str)> = listing.rows.iter().map(|r| (r.name.as_str(), r.status.as_str())).collect();
    assert_eq!(got, [("a", "unknown"), ("b", "destroyed")]);
    assert_eq!(listing.unknown_because.map(|e| e.message), Some("cannot connect to the mock hypervisor (injected)".to_string()));
}

#[test]
fn a_corrupt_database_is_an_error() {
    let h = Host::new();
    h.create("a");
    std::fs::write(h.db_path(), "[]").unwrap();
    assert!(matches!(list::run(&h.session()), Err(provisioner::verbs::VerbError::Db(_))));
}
