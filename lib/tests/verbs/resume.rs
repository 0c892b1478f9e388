use crate::host::{self, backend_vm, Host};
use chrono::{Duration, Utc};
use provisioner::provider::PowerState;
use provisioner::verbs::{power, resume, VerbError};

/// A created VM, stopped and recorded as suspended with the given expiry.
fn suspended(h: &Host, name: &str, expires_at: &str) {
    h.create(name);
    power::kill(&h.session(), name).unwrap();
    h.edit_db(|db| {
        db["vms"][name]["status"] = serde_json::json!("suspended");
        db["vms"][name]["suspended_at"] = serde_json::json!(host::days_ago(1));
        db["vms"][name]["expires_at"] = serde_json::json!(expires_at);
    });
}

fn expiry(h: &Host, name: &str) -> chrono::DateTime<Utc> {
    host::parse_time(&h.field(name, "expires_at").unwrap())
}

#[test]
fn a_future_expiry_is_kept() {
    let h = Host::new();
    let future = host::days_ahead(5);
    suspended(&h, "r", &future);
    let s = h.session();
    let plan = resume::plan(&s, "r", None, Utc::now()).unwrap();
    assert_eq!(plan.old_expiry, Some(host::parse_time(&future)));
    assert_eq!(plan.new_expiry, host::parse_time(&future));
    resume::run(&s, &plan).unwrap();
    assert_eq!(h.field("r", "expires_at").as_deref(), Some(future.as_str()), "the stored text is untouched");
    assert_eq!(h.field("r", "status").as_deref(), Some("active"));
    assert!(h.record("r").unwrap().get("suspended_at").is_none());
    assert_eq!(backend_vm(&s, "r").unwrap().state, PowerState::Running);
}

#[test]
fn a_past_expiry_becomes_now_plus_the_default() {
    let h = Host::with_db_yaml(&format!("{}default_expiry_days: 3\n", host::DB_YAML));
    suspended(&h, "r", &host::days_ago(2));
    let now = Utc::now();
    let plan = resume::plan(&h.session(), "r", None, now).unwrap();
    assert_eq!(plan.new_expiry, now + Duration::days(3));
    resume::run(&h.session(), &plan).unwrap();
    assert_eq!(expiry(&h, "r").timestamp(), (now + Duration::days(3)).timestamp());
}

#[test]
fn extend_days_counts_from_the_later_of_expiry_and_now() {
    let h = Host::new();
    let future = host::parse_time(&host::days_ahead(5));
    suspended(&h, "fut", &host::stamp(future));
    suspended(&h, "past", &host::days_ago(5));
    let now = Utc::now();
    let plan = resume::plan(&h.session(), "fut", Some(2), now).unwrap();
    assert_eq!(plan.new_expiry, future + Duration::days(2));
    resume::run(&h.session(), &plan).unwrap();
    assert_eq!(expiry(&h, "fut"), future + Duration::days(2));
    let plan = resume::plan(&h.session(), "past", Some(2), now).unwrap();
    assert_eq!(plan.new_expiry, now + Duration::days(2));
    assert!(plan.new_expiry > plan.old_expiry.unwrap(), "the expiry never moves backwards");
}

#[test]
fn an_expiry_exactly_now_is_renewed() {
    let h = Host::new();
    let now = host::parse_time(&host::stamp(Utc::now()));
    suspended(&h, "edge", &host::stamp(now));
    let plan = resume::plan(&h.session(), "edge", None, now).unwrap();
    assert_eq!(plan.new_expiry, now + Duration::days(30));
}

#[test]
fn a_record_without_expiry_gets_one() {
    let h = Host::new();
    suspended(&h, "noexp", "");
    h.edit_db(|db| {
        db["vms"]["noexp"].as_object_mut().unwrap().shift_remove("expires_at");
    });
    let now = Utc::now();
    let plan = resume::plan(&h.session(), "noexp", Some(1), now).unwrap();
    assert_eq!((plan.old_expiry, plan.new_expiry), (None, now + Duration::days(1)));
    resume::run(&h.session(), &plan).unwrap();
    assert!(h.field("noexp", "expires_at").is_some());
}

#[test]
fn only_suspended_records_are_resumed() {
    let h = Host::new();
    h.create("active");
    let s = h.session();
    let now = Utc::now();
    assert!(matches!(resume::plan(&s, "active", None, now), Err(VerbError::Failed(ref m)) if m.contains("not suspended (status: active)")));
    assert!(matches!(resume::plan(&s, "nope", None, now), Err(VerbError::NotFound(_))));
    assert!(matches!(resume::plan(&s, "active", Some(0), now), Err(VerbError::Usage(_))));
    assert!(matches!(resume::plan(&s, "bad/name", None, now), Err(VerbError::Invalid(_))));
}

#[test]
fn an_active_record_whose_domain_is_off_is_started_and_a_running_one_refused() {
    let h = Host::new();
    let future = host::days_ahead(5);
    h.create("off");
    h.edit_db(|db| db["vms"]["off"]["expires_at"] = serde_json::json!(future));
    power::kill(&h.session(), "off").unwrap();
    let s = h.session();
    let plan = resume::plan(&s, "off", None, Utc::now()).unwrap();
    assert!(plan.active_but_off);
    assert_eq!(plan.new_expiry, host::parse_time(&future), "the expiry rules are those of a suspended VM");
    resume::run(&s, &plan).unwrap();
    assert_eq!(backend_vm(&s, "off").unwrap().state, PowerState::Running);
    assert_eq!(h.field("off", "status").as_deref(), Some("active"));
    assert_eq!(h.field("off", "expires_at").as_deref(), Some(future.as_str()));
    let err = resume::plan(&s, "off", None, Utc::now()).unwrap_err();
    assert!(matches!(err, VerbError::Failed(ref m) if m == "VM off is not suspended (status: active)"), "{err:?}");
}

#[test]
fn a_vm_gone_from_the_backend_is_not_marked_active() {
    let h = Host::new();
    suspended(&h, "gone", &host::days_ahead(1));
    let plan = resume::plan(&h.session(), "gone", None, Utc::now()).unwrap();
    h.knobs("drift: vanish:gone\n");
    let err = resume::run(&h.session(), &plan).unwrap_err();
    assert!(matches!(err, VerbError::Failed(ref m) if m.contains("no longer exists")), "{err:?}");
    assert_eq!(h.field("gone", "status").as_deref(), Some("suspended"));
}

#[test]
fn a_vm_that_does_not_start_is_not_marked_active() {
    let h = Host::new();
    suspended(&h, "stuck", &host::days_ahead(1));
    let plan = resume::plan(&h.session(), "stuck", Some(3), Utc::now()).unwrap();
    h.knobs("ambiguous: start:lost\n");
    assert!(matches!(resume::run(&h.session(), &plan), Err(VerbError::Provider(_))));
    assert_eq!(h.field("stuck", "status").as_deref(), Some("suspended"));
    assert!(expiry(&h, "stuck") < plan.new_expiry, "the expiry is not extended either");
}
