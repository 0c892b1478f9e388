use crate::host::{backend_vm, Host};
use provisioner::provider::{ErrorCode, PowerState};
use provisioner::verbs::power::{self, Outcome};
use provisioner::verbs::VerbError;
use std::time::{Duration, Instant};

fn state(h: &Host, name: &str) -> PowerState {
    backend_vm(&h.session(), name).expect("VM exists").state
}

#[test]
fn stop_start_and_kill_reach_their_state_once() {
    let h = Host::new();
    h.create("p");
    let s = h.session();
    assert_eq!(power::start(&s, "p").unwrap(), Outcome::AlreadyThere);
    assert_eq!(power::stop(&s, "p", Duration::from_secs(5)).unwrap(), Outcome::Done);
    assert_eq!(state(&h, "p"), PowerState::ShutOff);
    assert_eq!(power::stop(&s, "p", Duration::from_secs(5)).unwrap(), Outcome::AlreadyThere);
    assert_eq!(power::kill(&s, "p").unwrap(), Outcome::AlreadyThere);
    assert_eq!(power::start(&s, "p").unwrap(), Outcome::Done);
    assert_eq!(state(&h, "p"), PowerState::Running);
    assert_eq!(power::kill(&s, "p").unwrap(), Outcome::Done);
    assert_eq!(state(&h, "p"), PowerState::ShutOff);
    // Power verbs do not touch the record.
    assert_eq!(h.field("p", "status").as_deref(), Some("active"));
}

#[test]
fn a_paused_vm_is_started_and_killed() {
    let h = Host::new();
    h.create("paused");
    // Drift is applied when a session opens: pause the VM once, then clear the knob.
    let pause = || {
        h.knobs("drift: pause:paused\n");
        let s = h.session();
        h.knobs("");
        s
    };
    let s = pause();
    assert_eq!(state(&h, "paused"), PowerState::Paused);
    assert_eq!(power::start(&s, "paused").unwrap(), Outcome::Done);
    assert_eq!(state(&h, "paused"), PowerState::Running);
    let s = pause();
    assert_eq!(power::kill(&s, "paused").unwrap(), Outcome::Done);
    assert_eq!(state(&h, "paused"), PowerState::ShutOff);
    let s = pause();
    let err = power::stop(&s, "paused", Duration::from_millis(300)).unwrap_err();
    assert!(err.to_string().contains("not running"), "a paused guest cannot be shut down gracefully: {err}");
}

#[test]
fn unknown_and_invalid_vms_are_errors() {
    let h = Host::new();
    let s = h.session();
    for result in [power::start(&s, "nope"), power::kill(&s, "nope"), power::stop(&s, "nope", Duration::from_secs(1))] {
        assert!(matches!(result, Err(VerbError::NotFound(ref n)) if n == "nope"), "{result:?}");
    }
    assert!(matches!(power::start(&s, "a b"), Err(VerbError::Invalid(_))));
}

#[test]
fn a_guest_that_ignores_shutdown_is_reported_running_after_the_bound() {
    let h = Host::new();
    h.create("stubborn");
    h.knobs("acpi: ignore\n");
    let s = h.session();
    let started = Instant::now();
    let err = power::stop(&s, "stubborn", Duration::from_millis(400)).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(matches!(err, VerbError::Failed(ref m) if m.contains("still running")), "{err:?}");
    assert_eq!(state(&h, "stubborn"), PowerState::Running, "stop never forces it off");
    assert_eq!(power::kill(&s, "stubborn").unwrap(), Outcome::Done);
    assert_eq!(state(&h, "stubborn"), PowerState::ShutOff);
}

#[test]
fn a_slow_guest_is_waited_for() {
    let h = Host::new();
    h.create("slow");
    h.knobs("shutdown_delay_ms: 500\n");
    let s = h.session();
    let started = Instant::now();
    assert_eq!(power::stop(&s, "slow", Duration::from_secs(10)).unwrap(), Outcome::Done);
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert_eq!(state(&h, "slow"), PowerState::ShutOff);
}

#[test]
fn ambiguous_power_changes_are_read_back() {
    let h = Host::new();
    h.create("amb");
    h.knobs("ambiguous: power_off, start, shutdown\n");
    let s = h.session();
    assert_eq!(power::kill(&s, "amb").unwrap(), Outcome::Done);
    assert_eq!(power::start(&s, "amb").unwrap(), Outcome::Done);
    assert_eq!(power::stop(&s, "amb", Duration::from_secs(5)).unwrap(), Outcome::Done);
    assert_eq!(state(&h, "amb"), PowerState::ShutOff);
    h.knobs("ambiguous: start:lost\n");
    let err = power::start(&h.session(), "amb").unwrap_err();
    assert!(matches!(err, VerbError::Provider(ref e) if e.code == ErrorCode::Ambiguous), "{err:?}");
    assert_eq!(state(&h, "amb"), PowerState::ShutOff);
    h.knobs("");
    power::start(&h.session(), "amb").unwrap();
    h.knobs("ambiguous: power_off:lost\n");
    let err = power::kill(&h.session(), "amb").unwrap_err();
    assert!(matches!(err, VerbError::Provider(ref e) if e.code == ErrorCode::Ambiguous), "{err:?}");
    assert_eq!(state(&h, "amb"), PowerState::Running);
}
