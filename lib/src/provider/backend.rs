//! The façade verbs talk to. Every mutation goes through ambiguous-write
//! recovery here, so no verb can forget it: a timed-out write is accepted only
//! when the state read back shows it happened, and only idempotent writes are
//! ever repeated. Create steps pass the fault plan's step gate.

use super::faults::{FaultPlan, Faulty};
use super::recovery::resolve;
use super::*;
use std::path::PathBuf;

pub struct Backend {
    provider: Box<dyn Provider>,
    step_faults: Option<FaultPlan>,
    private_state_dir: Option<PathBuf>,
}

impl Backend {
    pub fn new(provider: Box<dyn Provider>) -> Self {
        Self {
            provider,
            step_faults: None,
            private_state_dir: None,
        }
    }

    /// Wraps the provider in the fault injector; `plan`'s step faults apply to creates.
    #[must_use]
    pub fn with_faults(self, plan: FaultPlan) -> Self {
        let provider = Box::new(Faulty::new(self.provider, plan.clone()));
        Self {
            provider,
            step_faults: Some(plan),
            ..self
        }
    }

    /// For a backend that keeps its own VM database (the mock): the database,
    /// caches and per-VM host files then live in `dir`.
    #[must_use]
    pub fn with_private_state(self, dir: PathBuf) -> Self {
        Self {
            private_state_dir: Some(dir),
            ..self
        }
    }

    pub fn private_state_dir(&self) -> Option<&Path> {
        self.private_state_dir.as_deref()
    }

    pub fn name(&self) -> &'static str {
        self.provider.name()
    }

    pub fn capabilities(&self) -> Capabilities {
        self.provider.capabilities()
    }

    pub fn detect(&self) -> Result<(), ProviderError> {
        self.provider.detect()
    }

    /// Where a create is about to go next; the fault plan may fail or kill it here.
    pub fn step(&self, step: CreateStep) -> Result<(), ProviderError> {
        self.step_faults
            .as_ref()
            .map_or(Ok(()), |plan| plan.at_step(self.name(), step))
    }

    pub fn get(&self, name: &str) -> Result<Option<VmInfo>, ProviderError> {
        self.provider.get(name)
    }

    pub fn list(&self) -> Result<Vec<VmInfo>, ProviderError> {
        self.provider.list()
    }

    pub fn leftovers(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        self.provider.leftovers(name)
    }

    pub fn preflight(&self) -> Vec<ProviderError> {
        self.provider.preflight()
    }

    pub fn console_log(&self, name: &str) -> Option<std::path::PathBuf> {
        self.provider.console_log(name)
    }

    pub fn guest_ping(&self, name: &str) -> Result<bool, ProviderError> {
        self.provider.guest_ping(name)
    }

    pub fn guest_exec(
        &self,
        name: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, ProviderError> {
        self.provider.guest_exec(name, command, timeout)
    }

    pub fn stats(&self, names: Option<&[String]>) -> Result<Vec<RawStats>, ProviderError> {
        self.provider.stats(names)
    }

    /// Staging writes the same files again, so a timed-out staging is repeated once.
    pub fn stage_bootstrap(&self, name: &str, bootstrap: &Bootstrap) -> Result<(), ProviderError> {
        self.once_more_if_ambiguous(|| self.provider.stage_bootstrap(name, bootstrap))
    }

    /// Confirms an ambiguous spawn by finding the VM.
    pub fn spawn(&self, spec: &VmSpec) -> Result<VmInfo, ProviderError> {
        resolve(self.provider.spawn(spec), || self.provider.get(&spec.name))
    }

    /// "Already gone" is success; an ambiguous outcome is confirmed only when
    /// nothing of the VM is left (an absent VM alone does not prove its disks
    /// or staged bootstrap are gone).
    pub fn terminate(&self, name: &str) -> Result<(), ProviderError> {
        match self.provider.terminate(name) {
            Err(e) if e.code == ErrorCode::NotFound => Ok(()),
            result => resolve(result, || {
                Ok(self.provider.leftovers(name)?.is_empty().then_some(()))
            }),
        }
    }

    pub fn start(&self, name: &str) -> Result<(), ProviderError> {
        self.power(name, self.provider.start(name), |s| {
            s == PowerState::Running
        })
    }

    pub fn power_off(&self, name: &str) -> Result<(), ProviderError> {
        self.power(name, self.provider.power_off(name), PowerState::is_off)
    }

    /// Sends the graceful shutdown request. Its effect takes the guest's time,
    /// so a timed-out request is accepted; the caller waits on the power state.
    pub fn shutdown(&self, name: &str) -> Result<(), ProviderError> {
        resolve(self.provider.shutdown(name), || Ok(Some(())))
    }

    /// Throttles set absolute values, so a timed-out change is repeated once.
    pub fn throttle(&self, name: &str, change: &ThrottleChange) -> Result<(), ProviderError> {
        self.once_more_if_ambiguous(|| self.provider.throttle(name, change))
    }

    /// Re-applying host state is idempotent, so a timed-out one is repeated once.
    pub fn restore_host_state(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        match self.provider.restore_host_state(name) {
            Err(e) if e.code == ErrorCode::Ambiguous => self.provider.restore_host_state(name),
            result => result,
        }
    }

    /// A power operation, confirmed by the state it should lead to.
    fn power(
        &self,
        name: &str,
        result: Result<(), ProviderError>,
        reached: impl Fn(PowerState) -> bool,
    ) -> Result<(), ProviderError> {
        resolve(result, || {
            Ok(self
                .provider
                .get(name)?
                .filter(|vm| reached(vm.state))
                .map(|_| ()))
        })
    }

    fn once_more_if_ambiguous(
        &self,
        write: impl Fn() -> Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        match write() {
            Err(e) if e.code == ErrorCode::Ambiguous => write(),
            result => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{config::DbConfig, paths::HostPaths};
    use crate::provider::module::OpenContext;
    use std::cell::Cell;

    fn open_mock(paths: &HostPaths) -> Backend {
        let config = DbConfig::load(paths, false).unwrap();
        (crate::provider::mock::MODULE.open)(&OpenContext {
            paths,
            config: &config,
        })
        .unwrap()
    }

    /// The mock in a scratch root with one running VM `vm1`, then opened with `knobs` (its knobs.yaml).
    fn mock_with_a_vm(knobs: &str) -> (tempfile::TempDir, Backend) {
        let root = tempfile::tempdir().unwrap();
        let paths = HostPaths::with_root(root.path());
        let setup = open_mock(&paths);
        setup.stage_bootstrap("vm1", &bootstrap()).unwrap();
        setup.spawn(&spec("vm1")).unwrap();
        setup.start("vm1").unwrap();
        std::fs::write(
            crate::provider::mock::state_dir(&paths).join("knobs.yaml"),
            knobs,
        )
        .unwrap();
        (root, open_mock(&paths))
    }

    fn spec(name: &str) -> VmSpec {
        VmSpec {
            name: name.into(),
            vcpus: 1,
            memory_mib: 256,
            disk_gib: 1,
            nic: None,
            bootstrap: bootstrap(),
        }
    }

    #[test]
    fn terminate_confirms_a_timed_out_terminate_only_when_nothing_is_left() {
        let (_root, b) = mock_with_a_vm("ambiguous: terminate:lost\n");
        let err = b.terminate("vm1").unwrap_err();
        assert_eq!(err.code, ErrorCode::Ambiguous, "{err}");
        assert!(
            b.get("vm1").unwrap().is_some(),
            "the lost terminate left the VM"
        );
        let (_root, b) = mock_with_a_vm("ambiguous: terminate\n");
        b.terminate("vm1").unwrap();
        assert_eq!(
            (b.get("vm1").unwrap(), b.leftovers("vm1").unwrap()),
            (None, Vec::new())
        );
        b.terminate("vm1").unwrap();
    }

    #[test]
    fn power_confirms_by_the_state_reached() {
        let (_root, b) = mock_with_a_vm("ambiguous: power_off:lost\n");
        assert_eq!(b.power_off("vm1").unwrap_err().code, ErrorCode::Ambiguous);
        assert_eq!(b.get("vm1").unwrap().unwrap().state, PowerState::Running);
        let (_root, b) = mock_with_a_vm("ambiguous: power_off, start\n");
        b.power_off("vm1").unwrap();
        assert!(b.get("vm1").unwrap().unwrap().state.is_off());
        b.start("vm1").unwrap();
        assert_eq!(b.get("vm1").unwrap().unwrap().state, PowerState::Running);
    }

    #[test]
    fn a_timed_out_shutdown_request_is_accepted_and_the_guest_goes_down() {
        let (_root, b) = mock_with_a_vm("ambiguous: shutdown\n");
        b.shutdown("vm1").unwrap();
        assert!(b.get("vm1").unwrap().unwrap().state.is_off());
    }

    #[test]
    fn spawn_confirms_by_finding_the_vm() {
        let (_root, b) = mock_with_a_vm("ambiguous: spawn:lost\n");
        assert_eq!(
            b.spawn(&spec("vm2")).unwrap_err().code,
            ErrorCode::Ambiguous
        );
        assert_eq!(b.get("vm2").unwrap(), None);
        let (_root, b) = mock_with_a_vm("ambiguous: spawn\n");
        assert_eq!(b.spawn(&spec("vm3")).unwrap().name, "vm3");
        assert!(b.get("vm3").unwrap().is_some());
    }

    fn bootstrap() -> Bootstrap {
        Bootstrap {
            user_data: "#cloud-config\n".into(),
            meta_data: String::new(),
            network_config: String::new(),
            format: BootstrapFormat::CloudConfig,
            sha256: String::new(),
        }
    }

    /// Times out the first `timeouts` idempotent writes (after doing them), counting every attempt.
    struct TimesOut {
        timeouts: Cell<u32>,
        attempts: Cell<u32>,
    }

    impl TimesOut {
        fn write(&self) -> Result<(), ProviderError> {
            self.attempts.set(self.attempts.get() + 1);
            if self.timeouts.get() == 0 {
                return Ok(());
            }
            self.timeouts.set(self.timeouts.get() - 1);
            Err(ProviderError::new(ErrorCode::Ambiguous, "timed out"))
        }
    }

    fn unused<T>() -> Result<T, ProviderError> {
        Err(ProviderError::new(
            ErrorCode::Internal,
            "not used by this test",
        ))
    }

    impl Provider for std::rc::Rc<TimesOut> {
        fn name(&self) -> &'static str {
            "times-out"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::default()
        }
        fn detect(&self) -> Result<(), ProviderError> {
            Ok(())
        }
        fn get(&self, _: &str) -> Result<Option<VmInfo>, ProviderError> {
            unused()
        }
        fn list(&self) -> Result<Vec<VmInfo>, ProviderError> {
            unused()
        }
        fn stage_bootstrap(&self, _: &str, _: &Bootstrap) -> Result<(), ProviderError> {
            self.write()
        }
        fn spawn(&self, _: &VmSpec) -> Result<VmInfo, ProviderError> {
            unused()
        }
        fn terminate(&self, _: &str) -> Result<(), ProviderError> {
            unused()
        }
        fn leftovers(&self, _: &str) -> Result<Vec<String>, ProviderError> {
            unused()
        }
        fn start(&self, _: &str) -> Result<(), ProviderError> {
            unused()
        }
        fn shutdown(&self, _: &str) -> Result<(), ProviderError> {
            unused()
        }
        fn power_off(&self, _: &str) -> Result<(), ProviderError> {
            unused()
        }
        fn guest_ping(&self, _: &str) -> Result<bool, ProviderError> {
            unused()
        }
        fn guest_exec(&self, _: &str, _: &str, _: Duration) -> Result<ExecOutput, ProviderError> {
            unused()
        }
        fn stats(&self, _: Option<&[String]>) -> Result<Vec<RawStats>, ProviderError> {
            unused()
        }
        fn throttle(&self, _: &str, _: &ThrottleChange) -> Result<(), ProviderError> {
            self.write()
        }
    }

    fn times_out(timeouts: u32) -> (std::rc::Rc<TimesOut>, Backend) {
        let counter = std::rc::Rc::new(TimesOut {
            timeouts: Cell::new(timeouts),
            attempts: Cell::new(0),
        });
        (counter.clone(), Backend::new(Box::new(counter)))
    }

    #[test]
    fn idempotent_writes_are_repeated_once_after_a_timeout_and_no_more() {
        let (counter, b) = times_out(1);
        b.throttle("vm", &ThrottleChange::defaults()).unwrap();
        assert_eq!(counter.attempts.get(), 2);
        let (counter, b) = times_out(1);
        b.stage_bootstrap("vm", &bootstrap()).unwrap();
        assert_eq!(counter.attempts.get(), 2);
        let (counter, b) = times_out(2);
        assert_eq!(
            b.throttle("vm", &ThrottleChange::defaults())
                .unwrap_err()
                .code,
            ErrorCode::Ambiguous
        );
        assert_eq!(counter.attempts.get(), 2);
        let (counter, b) = times_out(0);
        b.stage_bootstrap("vm", &bootstrap()).unwrap();
        assert_eq!(counter.attempts.get(), 1);
    }

    #[test]
    fn only_a_backend_with_faults_fails_create_steps() {
        let plan = FaultPlan {
            fail_step: Some(CreateStep::Start),
            ..FaultPlan::default()
        };
        let (_counter, b) = times_out(0);
        b.step(CreateStep::Start).unwrap();
        let b = b.with_faults(plan);
        b.step(CreateStep::Spawn).unwrap();
        assert_eq!(
            b.step(CreateStep::Start).unwrap_err().message,
            "times-out: injected failure at create step start"
        );
    }
}
