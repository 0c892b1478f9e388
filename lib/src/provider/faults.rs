//! Fault injection as a decorator: [`Faulty`] wraps any provider and makes its
//! calls slow, failing, unreachable or ambiguous as a [`FaultPlan`] says, so
//! the same faults exercise the mock, the libvirt test driver or a real host.
//! The plan's create-step faults are applied by the [`super::Backend`] façade.

use super::rng::SplitMix64;
use super::*;
use std::cell::RefCell;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPlan {
    /// Seed of the random transient failures.
    pub seed: u64,
    /// Sleep before every provider call.
    pub latency_ms: u64,
    /// Probability (0–1) that a call fails with a retryable `unavailable` error.
    pub error_rate: f64,
    /// Every call fails as if the hypervisor were down.
    pub unreachable: bool,
    /// The create step that fails.
    pub fail_step: Option<CreateStep>,
    /// The create step at which the process kills itself with SIGKILL.
    pub crash_step: Option<CreateStep>,
    /// Mutations reported as timed out: `(op, true)` after acting, `(op, false)` without acting.
    pub ambiguous: Vec<(String, bool)>,
}

impl FaultPlan {
    /// `Some(acted)` when `op` is configured to report an ambiguous failure.
    fn ambiguous(&self, op: &str) -> Option<bool> {
        self.ambiguous
            .iter()
            .find(|(o, _)| o == op)
            .map(|(_, acted)| *acted)
    }

    /// What comes before every call: the latency, then a failure as a down
    /// hypervisor's when the plan says it is unreachable.
    pub fn reach(&self, provider: &str) -> Result<(), ProviderError> {
        if self.latency_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.latency_ms));
        }
        if self.unreachable {
            return Err(ProviderError::new(
                ErrorCode::Unavailable,
                format!("cannot connect to the {provider} hypervisor (injected)"),
            ));
        }
        Ok(())
    }

    /// The fault configured for a create step, if any.
    pub fn at_step(&self, provider: &str, step: CreateStep) -> Result<(), ProviderError> {
        if self.crash_step == Some(step) {
            sys::kill_self();
        }
        if self.fail_step == Some(step) {
            return Err(ProviderError::new(
                ErrorCode::Internal,
                format!(
                    "{provider}: injected failure at create step {}",
                    step.as_str()
                ),
            ));
        }
        Ok(())
    }
}

pub struct Faulty {
    inner: Box<dyn Provider>,
    plan: FaultPlan,
    rng: RefCell<SplitMix64>,
}

impl Faulty {
    pub fn new(inner: Box<dyn Provider>, plan: FaultPlan) -> Self {
        let rng = RefCell::new(SplitMix64::new(plan.seed));
        Self { inner, plan, rng }
    }

    /// Latency, reachability and random transient errors, before every call.
    fn call(&self, op: &str) -> Result<(), ProviderError> {
        self.plan.reach(self.name())?;
        if self.plan.error_rate > 0.0 && self.rng.borrow_mut().next_f64() < self.plan.error_rate {
            return Err(ProviderError::new(
                ErrorCode::Unavailable,
                format!("{}: injected transient failure in {op}", self.name()),
            ));
        }
        Ok(())
    }

    /// A mutation: lost before acting, or reported as timed out after acting, as the plan says.
    fn mutate<T>(
        &self,
        op: &str,
        act: impl FnOnce() -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        self.call(op)?;
        let ambiguous = self.plan.ambiguous(op);
        if ambiguous == Some(false) {
            return Err(ProviderError::new(
                ErrorCode::Ambiguous,
                format!("{}: {op} timed out (injected, not performed)", self.name()),
            ));
        }
        let value = act()?;
        match ambiguous {
            Some(true) => Err(ProviderError::new(
                ErrorCode::Ambiguous,
                format!("{}: {op} timed out (injected, performed)", self.name()),
            )),
            _ => Ok(value),
        }
    }
}

impl Provider for Faulty {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn detect(&self) -> Result<(), ProviderError> {
        self.inner.detect()
    }

    fn get(&self, name: &str) -> Result<Option<VmInfo>, ProviderError> {
        self.call("get")?;
        self.inner.get(name)
    }

    fn list(&self) -> Result<Vec<VmInfo>, ProviderError> {
        self.call("list")?;
        self.inner.list()
    }

    fn stage_bootstrap(&self, name: &str, bootstrap: &Bootstrap) -> Result<(), ProviderError> {
        self.mutate("stage_bootstrap", || {
            self.inner.stage_bootstrap(name, bootstrap)
        })
    }

    fn spawn(&self, spec: &VmSpec) -> Result<VmInfo, ProviderError> {
        self.mutate("spawn", || self.inner.spawn(spec))
    }

    fn terminate(&self, name: &str) -> Result<(), ProviderError> {
        self.mutate("terminate", || self.inner.terminate(name))
    }

    fn leftovers(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        self.call("leftovers")?;
        self.inner.leftovers(name)
    }

    fn start(&self, name: &str) -> Result<(), ProviderError> {
        self.mutate("start", || self.inner.start(name))
    }

    fn shutdown(&self, name: &str) -> Result<(), ProviderError> {
        self.mutate("shutdown", || self.inner.shutdown(name))
    }

    fn power_off(&self, name: &str) -> Result<(), ProviderError> {
        self.mutate("power_off", || self.inner.power_off(name))
    }

    fn preflight(&self) -> Vec<ProviderError> {
        self.inner.preflight()
    }

    fn console_log(&self, name: &str) -> Option<std::path::PathBuf> {
        self.inner.console_log(name)
    }

    fn guest_ping(&self, name: &str) -> Result<bool, ProviderError> {
        self.call("guest_ping")?;
        self.inner.guest_ping(name)
    }

    fn guest_exec(
        &self,
        name: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, ProviderError> {
        self.call("guest_exec")?;
        self.inner.guest_exec(name, command, timeout)
    }

    fn stats(&self, names: Option<&[String]>) -> Result<Vec<RawStats>, ProviderError> {
        self.call("stats")?;
        self.inner.stats(names)
    }

    fn throttle(&self, name: &str, change: &ThrottleChange) -> Result<(), ProviderError> {
        self.mutate("throttle", || self.inner.throttle(name, change))
    }

    fn restore_host_state(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        self.mutate("restore_host_state", || self.inner.restore_host_state(name))
    }
}
