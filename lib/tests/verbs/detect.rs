use crate::host::Host;
use provisioner::verbs::detect;

#[test]
fn the_mock_platform_is_always_usable() {
    assert!(detect::run(&Host::new().session()).is_ok());
}
