use crate::host::Host;
use provisioner::provider::{ErrorCode, Limit, ThrottleChange};
use provisioner::verbs::throttle::{self, ThrottleArgs};
use provisioner::verbs::{power, VerbError};
use serde_json::{json, Value};

fn limits(h: &Host, name: &str) -> Value {
    h.domain(name).expect("VM file")["throttle"].clone()
}

#[test]
fn limits_are_applied_and_read_back() {
    let h = Host::new();
    h.create("t");
    let change = throttle::change_from(&ThrottleArgs {
        cpu_shares: Some(512),
        cpu_quota: Some(50),
        bandwidth_in: Some(1000),
        bandwidth_out: Some(2000),
        iops_read: Some(300),
        iops_write: Some(400),
        reset: false,
    })
    .unwrap();
    throttle::run(&h.session(), "t", &change).unwrap();
    assert_eq!(
        limits(&h, "t"),
        json!({"cpu_shares": 512, "cpu_quota_percent": 50, "bandwidth_in_kbps": 1000, "bandwidth_out_kbps": 2000, "iops_read": 300, "iops_write": 400})
    );
    // 0 lifts one limit and leaves the others.
    let lift = throttle::change_from(&ThrottleArgs { bandwidth_in: Some(0), ..Default::default() }).unwrap();
    assert_eq!(lift.bandwidth_in_kbps, Some(Limit::Unlimited));
    throttle::run(&h.session(), "t", &lift).unwrap();
    let after = limits(&h, "t");
    assert_eq!((after["bandwidth_in_kbps"].clone(), after["iops_write"].clone()), (Value::Null, json!(400)));
    // --reset restores the creation defaults.
    let reset = throttle::change_from(&ThrottleArgs { reset: true, ..Default::default() }).unwrap();
    assert_eq!(reset, ThrottleChange::defaults());
    throttle::run(&h.session(), "t", &reset).unwrap();
    assert_eq!(
        limits(&h, "t"),
        json!({"cpu_shares": 1024, "cpu_quota_percent": null, "bandwidth_in_kbps": null, "bandwidth_out_kbps": null, "iops_read": null, "iops_write": null})
    );
}

#[test]
fn the_range_bounds_are_accepted() {
    for args in [
        ThrottleArgs { cpu_shares: Some(1), ..Default::default() },
        ThrottleArgs { cpu_shares: Some(10_000), ..Default::default() },
        ThrottleArgs { cpu_quota: Some(1), ..Default::default() },
        ThrottleArgs { cpu_quota: Some(100), ..Default::default() },
        ThrottleArgs { bandwidth_out: Some(throttle::MAX_KBPS), ..Default::default() },
        ThrottleArgs { iops_read: Some(throttle::MAX_IOPS), ..Default::default() },
    ] {
        assert!(throttle::change_from(&args).is_ok(), "{args:?}");
    }
    assert!(matches!(throttle::change_from(&ThrottleArgs { cpu_quota: Some(0), ..Default::default() }), Err(VerbError::Usage(_))));
    assert_eq!(
        throttle::describe(&throttle::change_from(&ThrottleArgs { bandwidth_out: Some(5), iops_read: Some(0), ..Default::default() }).unwrap()),
        ["Bandwidth outbound set to 5 kbps", "IOPS read limit removed (unlimited)"]
    );
}

#[test]
fn a_stopped_vm_keeps_persistent_limits() {
    let h = Host::new();
    h.create("off");
    power::kill(&h.session(), "off").unwrap();
    let change = ThrottleChange { iops_write: Some(Limit::Set(7)), ..Default::default() };
    throttle::run(&h.session(), "off", &change).unwrap();
    assert_eq!(limits(&h, "off")["iops_write"], json!(7));
}

#[test]
fn unknown_invalid_and_unreachable_vms_are_errors() {
    let h = Host::new();
    let change = ThrottleChange { cpu_shares: Some(10), ..Default::default() };
    assert!(matches!(throttle::run(&h.session(), "nope", &change), Err(VerbError::NotFound(_))));
    assert!(matches!(throttle::run(&h.session(), "", &change), Err(VerbError::Invalid(_))));
    h.create("t");
    h.knobs("unreachable: true\n");
    let err = throttle::run(&h.session(), "t", &change).unwrap_err();
    assert!(matches!(err, VerbError::Provider(ref e) if e.code == ErrorCode::Unavailable), "{err:?}");
    h.knobs("");
    assert_eq!(limits(&h, "t")["cpu_shares"], json!(1024));
}
