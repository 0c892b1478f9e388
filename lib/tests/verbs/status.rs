use crate::host::Host;
use provisioner::verbs::{destroy, power, status};
use std::time::Duration;

fn word(h: &Host, name: &str) -> &'static str {
    status::run(&h.session(), name).word
}

#[test]
fn status_follows_the_vm() {
    let h = Host::new();
    h.create("st");
    assert_eq!(status::run(&h.session(), "st"), status::Status { word: "active", reason: None });
    power::stop(&h.session(), "st", Duration::from_secs(5)).unwrap();
    assert_eq!(word(&h, "st"), "suspended");
    h.knobs("drift: pause:st\n");
    assert_eq!(word(&h, "st"), "suspended");
    h.knobs("");
    destroy::run(&h.session(), "st").unwrap();
    assert_eq!(status::run(&h.session(), "st"), status::Status { word: "destroyed", reason: None });
    assert_eq!(word(&h, "never-created"), "destroyed", "the backend answered: no such VM");
}

#[test]
fn a_destroyed_record_is_destroyed_even_if_the_backend_is_down() {
    let h = Host::new();
    h.create("gone");
    destroy::run(&h.session(), "gone").unwrap();
    h.create("alive");
    h.knobs("unreachable: true\n");
    assert_eq!(word(&h, "gone"), "destroyed");
    let s = status::run(&h.session(), "alive");
    assert_eq!(s.word, "unknown");
    assert!(s.reason.unwrap().contains("cannot connect"));
}

#[test]
fn a_record_the_backend_lost_is_destroyed_and_bad_names_unknown() {
    let h = Host::new();
    h.create("lost");
    h.knobs("drift: vanish:lost\n");
    assert_eq!(word(&h, "lost"), "destroyed");
    let s = status::run(&h.session(), "bad name");
    assert_eq!(s.word, "unknown");
    assert!(s.reason.is_some());
}

#[test]
fn an_unreadable_database_does_not_hide_the_backend() {
    let h = Host::new();
    h.create("vm");
    std::fs::write(h.db_path(), "{ corrupt").unwrap();
    assert_eq!(word(&h, "vm"), "active");
}
