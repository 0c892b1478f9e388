use crate::host::Host;
use provisioner::provider::ErrorCode;
use provisioner::verbs::{guest_exec, power, VerbError};
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

#[test]
fn a_command_runs_in_the_guest_and_its_output_comes_back() {
    let h = Host::new();
    h.create("ge");
    let out = guest_exec::run(&h.session(), "ge", "hostname", T).unwrap();
    assert_eq!((out.exit_code, out.stdout.as_slice()), (0, b"ge\n".as_slice()));
    assert_eq!(guest_exec::run(&h.session(), "ge", "exit 3", T).unwrap().exit_code, 3);
}

#[test]
fn empty_commands_unknown_vms_and_stopped_guests_are_errors() {
    let h = Host::new();
    h.create("ge");
    let s = h.session();
    for blank in ["", "  \t"] {
        assert!(matches!(guest_exec::run(&s, "ge", blank, T), Err(VerbError::Usage(_))), "{blank:?}");
    }
    assert!(matches!(guest_exec::run(&s, "nope", "true", T), Err(VerbError::NotFound(ref n)) if n == "nope"));
    assert!(matches!(guest_exec::run(&s, "a b", "true", T), Err(VerbError::Invalid(_))));
    power::kill(&s, "ge").unwrap();
    let err = guest_exec::run(&s, "ge", "true", T).unwrap_err();
    assert!(matches!(err, VerbError::Provider(ref e) if e.code == ErrorCode::Conflict), "{err:?}");
    power::start(&s, "ge").unwrap();
    h.knobs("agent: dead\n");
    let err = guest_exec::run(&h.session(), "ge", "true", T).unwrap_err();
    assert!(matches!(err, VerbError::Provider(ref e) if e.code == ErrorCode::Unavailable), "{err:?}");
}
