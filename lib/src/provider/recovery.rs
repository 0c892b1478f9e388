//! Ambiguous-write recovery: a timeout or dropped connection on a mutation does
//! not mean it failed. Read the state back and accept success only when the
//! desired end state is visible; never blindly retry a non-idempotent write.

use super::{ErrorCode, PowerState, Provider, ProviderError, VmInfo};

/// Returns `result` unless it is ambiguous; then `read_back` decides: `Some`
/// means the desired end state is visible and the write succeeded.
pub fn resolve<T>(
    result: Result<T, ProviderError>,
    read_back: impl FnOnce() -> Result<Option<T>, ProviderError>,
) -> Result<T, ProviderError> {
    match result {
        Err(e) if e.code == ErrorCode::Ambiguous => match read_back() {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(ProviderError::new(
                ErrorCode::Ambiguous,
                format!("{}; reading the state back did not confirm the change", e.message),
            )),
            Err(read_err) => Err(ProviderError::new(
                ErrorCode::Ambiguous,
                format!("{}; reading the state back failed: {}", e.message, read_err.message),
            )),
        },
        other => other,
    }
}

/// Terminate that treats "already gone" as success and confirms ambiguous
/// outcomes by checking that nothing of the VM is left (an absent VM alone does
/// not prove its disks or staged bootstrap are gone).
pub fn terminate(provider: &dyn Provider, name: &str) -> Result<(), ProviderError> {
    match provider.terminate(name) {
        Err(e) if e.code == ErrorCode::NotFound => Ok(()),
        result => resolve(result, || Ok(provider.leftovers(name)?.is_empty().then_some(()))),
    }
}

/// Spawn, confirming an ambiguous outcome by finding the VM.
pub fn spawn(provider: &dyn Provider, spec: &super::VmSpec) -> Result<VmInfo, ProviderError> {
    resolve(provider.spawn(spec), || provider.get(&spec.name))
}

/// A power operation, confirmed by the state it should lead to.
pub fn power(
    provider: &dyn Provider,
    name: &str,
    result: Result<(), ProviderError>,
    reached: impl Fn(PowerState) -> bool,
) -> Result<(), ProviderError> {
    resolve(result, || Ok(provider.get(name)?.filter(|vm| reached(vm.state)).map(|_| ())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ambiguous() -> Result<u32, ProviderError> {
        Err(ProviderError::new(ErrorCode::Ambiguous, "timed out"))
    }

    #[test]
    fn ambiguous_is_success_only_when_read_back_confirms() {
        assert_eq!(resolve(ambiguous(), || Ok(Some(7))), Ok(7));
        let err = resolve(ambiguous(), || Ok(None)).unwrap_err();
        assert_eq!(err.code, ErrorCode::Ambiguous);
        assert!(err.message.contains("did not confirm"));
        let err = resolve(ambiguous(), || Err(ProviderError::new(ErrorCode::Unavailable, "down"))).unwrap_err();
        assert!(err.message.contains("down"));
    }

    /// The mock in a scratch root with `knobs` (its knobs.yaml) and one
    /// running VM `vm1`.
    fn mock_with_a_vm(knobs: &str) -> (tempfile::TempDir, Box<dyn Provider>) {
        use crate::host::{config::DbConfig, paths::HostPaths};
        use crate::provider::registry::{self, OpenContext};
        let root = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(root.path());
        let dir = crate::provider::mock::state_dir(&paths);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("knobs.yaml"), knobs).unwrap();
        let config = DbConfig::load(&paths, false).unwrap();
        let provider = (registry::find("mock").unwrap().open)(&OpenContext { paths: &paths, config: &config }).unwrap();
        let bootstrap = super::super::Bootstrap {
            user_data: "#cloud-config\n".into(),
            meta_data: "instance-id: vm1\n".into(),
            network_config: "version: 2\n".into(),
            format: super::super::BootstrapFormat::CloudConfig,
            sha256: String::new(),
        };
        provider.stage_bootstrap("vm1", &bootstrap).unwrap();
        let spec = super::super::VmSpec { name: "vm1".into(), vcpus: 1, memory_mib: 256, disk_gib: 1, nic: None, bootstrap };
        provider.spawn(&spec).unwrap();
        provider.start("vm1").unwrap();
        (root, provider)
    }

    #[test]
    fn terminate_confirms_a_timed_out_terminate_only_when_nothing_is_left() {
        let (_root, p) = mock_with_a_vm("ambiguous: terminate:lost\n");
        let err = terminate(p.as_ref(), "vm1").unwrap_err();
        assert_eq!(err.code, ErrorCode::Ambiguous, "{err}");
        assert!(p.get("vm1").unwrap().is_some(), "the lost terminate left the VM");
        let (_root, p) = mock_with_a_vm("ambiguous: terminate\n");
        terminate(p.as_ref(), "vm1").unwrap();
        assert_eq!((p.get("vm1").unwrap(), p.leftovers("vm1").unwrap()), (None, Vec::new()));
    }

    #[test]
    fn power_confirms_by_the_state_reached() {
        let (_root, p) = mock_with_a_vm("ambiguous: power_off:lost\n");
        let err = power(p.as_ref(), "vm1", p.power_off("vm1"), PowerState::is_off).unwrap_err();
        assert_eq!(err.code, ErrorCode::Ambiguous, "{err}");
        let (_root, p) = mock_with_a_vm("ambiguous: power_off\n");
        power(p.as_ref(), "vm1", p.power_off("vm1"), PowerState::is_off).unwrap();
        assert!(p.get("vm1").unwrap().unwrap().state.is_off());
    }

    #[test]
    fn non_ambiguous_results_pass_through_without_read_back() {
        let called = std::cell::Cell::new(false);
        let read_back = || {
            called.set(true);
            Ok(Some(1))
        };
        let err = resolve(Err(ProviderError::new(ErrorCode::Conflict, "x")), read_back).unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict);
        assert_eq!(resolve(Ok(3), || Ok(Some(1))), Ok(3));
        assert!(!called.get());
    }
}
