use crate::host::{self, args, run_create, Host, WALLET};
use provisioner::verbs::{guest_exec, update_gecos, VerbError};
use std::time::Duration;

fn passwd(h: &Host, vm: &str, user: &str) -> String {
    let out = guest_exec::run(&h.session(), vm, &format!("getent passwd {user}"), Duration::from_secs(5)).unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_gecos_of_the_recorded_user_is_set_in_the_guest() {
    let h = Host::new();
    let mut a = args("g", true);
    a.username = "alice".into();
    run_create(&h.session(), &a).unwrap();
    let (change, output) = update_gecos::run(&h.session(), "g", WALLET, "42").unwrap();
    assert_eq!((change.username.as_str(), output.exit_code), ("alice", 0));
    assert_eq!(change.gecos, format!("wallet={WALLET},nft=42"));
    assert!(passwd(&h, "g", "alice").contains(&format!(":wallet={WALLET},nft=42:")), "{}", passwd(&h, "g", "alice"));
    assert_eq!(h.domain("g").unwrap()["users"]["alice"]["gecos"], serde_json::json!(format!("wallet={WALLET},nft=42")));
}

#[test]
fn without_a_record_the_default_user_is_changed() {
    let h = Host::new();
    h.create("g");
    h.edit_db(|db| {
        db["vms"]["g"].as_object_mut().unwrap().shift_remove("username");
    });
    let (change, _) = update_gecos::run(&h.session(), "g", "addr_x", "7").unwrap();
    assert_eq!(change.username, update_gecos::DEFAULT_USERNAME);
    assert!(passwd(&h, "g", "admin").contains(":wallet=addr_x,nft=7:"));
}

#[test]
fn bad_values_never_reach_the_guest() {
    let h = Host::new();
    h.create("g");
    let s = h.session();
    for (wallet, nft) in [("a'b", "1"), ("", "1"), (WALLET, "1;reboot"), (WALLET, "")] {
        assert!(matches!(update_gecos::run(&s, "g", wallet, nft), Err(VerbError::Invalid(_))), "{wallet:?} {nft:?}");
    }
    assert!(matches!(update_gecos::run(&s, "no such", WALLET, "1"), Err(VerbError::Invalid(_))));
    assert!(matches!(update_gecos::run(&s, "absent", WALLET, "1"), Err(VerbError::NotFound(_))));
    h.edit_db(|db| db["vms"]["g"]["username"] = serde_json::json!("x y"));
    assert!(matches!(update_gecos::run(&h.session(), "g", WALLET, "1"), Err(VerbError::Invalid(_))));
    let _ = host::WALLET;
}
