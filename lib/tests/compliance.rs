//! The provider compliance suite: one set of contract tests that every provider
//! must pass, each skipping what the provider does not declare, through the
//! `Backend` façade the verbs use. The fault cases wrap the provider in the
//! fault injector, whatever the provider. A provider joins by adding one
//! `compliance!` line with a factory.

use provisioner::host::cloud_init::{self, BootstrapInput};
use provisioner::host::config::{AuthDefaults, DbConfig};
use provisioner::host::paths::HostPaths;
use provisioner::provider::faults::FaultPlan;
use provisioner::provider::module::OpenContext;
use provisioner::provider::registry;
use provisioner::provider::{Backend, CreateStep, ErrorCode, Limit, NicSpec, PowerState, ThrottleChange, VmSpec};
use std::time::{Duration, Instant};

#[cfg(feature = "libvirt")]
#[path = "support/libvirt_fixture.rs"]
mod libvirt_fixture;
#[cfg(feature = "proxmox")]
#[path = "support/pve_host.rs"]
mod pve_host;
#[cfg(feature = "proxmox")]
#[path = "support/pve_live.rs"]
mod pve_live;

/// A provider under test, what its environment cannot do, and whatever keeps
/// that environment alive.
pub struct Subject {
    pub backend: Backend,
    module: &'static str,
    /// The hypervisor only emulates VM states (libvirt's test driver): no
    /// guest that runs an agent, no counters, no resource controls.
    pub states_only: bool,
    /// The guest agent answers for a scripted guest (the PVE stand-in's), not
    /// an OS that booted the seed: nothing in it ran cloud-init.
    pub scripted_guest: bool,
    /// The bridge the VMs' NIC joins.
    pub bridge: String,
    /// Begins the name of every VM a case makes: unique per case where the
    /// hypervisor is shared with others (a real cluster).
    prefix: String,
    root: tempfile::TempDir,
    /// What the hypervisor needs kept alive (a stand-in server), dropped after the case's VMs are gone.
    _hypervisor: Option<Box<dyn std::any::Any>>,
}

impl Subject {
    /// The name of the case's VM `what`.
    fn vm(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    /// A second handle on the same hypervisor and state, its provider wrapped
    /// in the fault injector with `plan`.
    fn with_faults(&self, plan: FaultPlan) -> Backend {
        open_backend(&HostPaths::with_root(self.root.path()), self.module).with_faults(plan)
    }
}

/// Every VM a case made is gone when the case ends, also on a hypervisor
/// that outlives the test (a real libvirtd).
impl Drop for Subject {
    fn drop(&mut self) {
        for vm in self.backend.list().unwrap_or_default() {
            if vm.name.starts_with(&self.prefix) {
                let _ = self.backend.terminate(&vm.name);
            }
        }
    }
}

fn open_backend(paths: &HostPaths, module: &str) -> Backend {
    let config = DbConfig::load(paths, module != "mock").unwrap();
    (registry::find(module).unwrap().open)(&OpenContext { paths, config: &config }).unwrap()
}

fn open(root: tempfile::TempDir, module: &'static str, states_only: bool, bridge: &str) -> Subject {
    let backend = open_backend(&HostPaths::with_root(root.path()), module);
    let prefix = "cmp-".to_string();
    Subject { backend, module, states_only, scripted_guest: false, bridge: bridge.into(), prefix, root, _hypervisor: None }
}

fn mock() -> Subject {
    open(tempfile::tempdir().unwrap(), "mock", false, "br0")
}

#[cfg(feature = "libvirt")]
/// libvirt's in-process test driver, with a template whose image is a real
/// (empty) qcow2 so overlays can be made.
fn libvirt_test_driver() -> Subject {
    let root = tempfile::tempdir().unwrap();
    libvirt_fixture::write(&HostPaths::with_root(root.path()), "test:///default", "br0");
    open(root, "libvirt", true, "br0")
}

#[cfg(feature = "libvirt")]
/// The private libvirtd of the real-VM stage (`scripts/e2e-libvirt.sh` sets
/// BLOCKHOST_E2E_URI and BLOCKHOST_E2E_TEMPLATES): real guests booted from
/// our template, with agents, counters and resource controls.
fn libvirt_real() -> Subject {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/e2e-libvirt.sh"));
    let (uri, templates) = (var("BLOCKHOST_E2E_URI"), var("BLOCKHOST_E2E_TEMPLATES"));
    // QEMU runs as libvirt-qemu there: the root must be traversable (a
    // tempdir is 0700), and the seed directory gets libvirt-qemu's group.
    let root = tempfile::tempdir_in(var("BLOCKHOST_E2E_RUN")).unwrap();
    std::fs::set_permissions(root.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let paths = HostPaths::with_root(root.path());
    libvirt_fixture::write_config(&paths, &uri, "e2ebr0");
    std::fs::write(paths.host("/etc/group"), "libvirt-qemu:x:64055:\n").unwrap();
    std::os::unix::fs::symlink(templates, paths.state_dir().join("templates")).unwrap();
    open(root, "libvirt", false, "e2ebr0")
}

#[cfg(feature = "proxmox")]
/// The three-node PVE stand-in; every case ends with no request refused by its schema check.
fn proxmox_standin() -> Subject {
    let root = tempfile::tempdir().unwrap();
    let standin = pve_host::write(&HostPaths::with_root(root.path()), "vmbr0", pve_host::Options::default());
    let mut subject = open(root, "proxmox", false, "vmbr0");
    subject._hypervisor = Some(Box::new(standin));
    subject.scripted_guest = true;
    subject
}

#[cfg(feature = "proxmox")]
/// A real Proxmox VE cluster named by the environment (`support/pve_live.rs`),
/// else a skip: no script can provide one. Its VMs' names carry a prefix of
/// their own, and they are destroyed when the case ends.
fn proxmox_live() -> Option<Subject> {
    let Some(bridge) = pve_live::configured() else {
        testkit::skip(pve_live::SKIP_REASON);
        return None;
    };
    let root = tempfile::tempdir().unwrap();
    pve_live::write(&HostPaths::with_root(root.path()), &bridge);
    let mut subject = open(root, "proxmox", false, &bridge);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    subject.prefix = format!("cmp-{:06x}-", (std::process::id() ^ nanos) & 0xff_ffff);
    Some(subject)
}

/// Runs `case` on the subject, unless its factory skipped.
fn run(case: fn(Subject), subject: impl Into<Option<Subject>>) {
    if let Some(subject) = subject.into() {
        case(subject);
    }
}

fn spec(s: &Subject, name: &str, vcpus: u32) -> VmSpec {
    let nic = NicSpec {
        bridge: s.bridge.clone(),
        ipv4: "10.0.0.5".parse().unwrap(),
        ipv4_prefix_len: 24,
        gateway: Some("10.0.0.1".parse().unwrap()),
        ipv6: None,
        ipv6_gateway: None,
        mac: cloud_init::mac_for(name, None),
    };
    let tmp = tempfile::tempdir().unwrap();
    let bootstrap = cloud_init::render(
        &HostPaths::with_root(tmp.path()),
        &BootstrapInput {
            name,
            username: "admin",
            wallet: "0xabc",
            nft_token_id: None,
            nic: Some(&nic),
            dns_zone: None,
            auth: AuthDefaults { otp_length: 6, otp_ttl_seconds: 300 },
            verbatim: None,
        },
    )
    .unwrap();
    VmSpec { name: name.into(), vmid: None, vcpus, memory_mib: 512, disk_gib: 2, nic: Some(nic), bootstrap }
}

fn create_running(s: &Subject, name: &str) {
    let p = &s.backend;
    let spec = spec(s, name, 1);
    p.stage_bootstrap(name, &spec.bootstrap).unwrap();
    p.spawn(&spec).unwrap();
    p.start(name).unwrap();
}

/// Waits until the guest agent answers, where there is a real guest: the
/// guest has booted and obeys ACPI.
fn wait_booted(s: &Subject, name: &str) {
    if s.states_only || !s.backend.capabilities().guest_agent {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    while !s.backend.guest_ping(name).unwrap_or(false) {
        assert!(Instant::now() < deadline, "guest agent of {name} never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_state(p: &Backend, name: &str, want: impl Fn(PowerState) -> bool) -> PowerState {
    let started = Instant::now();
    loop {
        let state = p.get(name).unwrap().expect("vm exists").state;
        if want(state) || started.elapsed() > Duration::from_secs(60) {
            return state;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn absent_vm_is_none_not_an_error(s: Subject) {
    assert_eq!(s.backend.get("never-created").unwrap(), None);
}

pub fn spawn_is_idempotent_by_name(s: Subject) {
    let idem = s.vm("idem");
    let p = &s.backend;
    if !p.capabilities().idempotent_spawn {
        return testkit::skip(&format!("{} does not declare idempotent spawn", p.name()));
    }
    let first = spec(&s, &idem, 1);
    p.stage_bootstrap(&idem, &first.bootstrap).unwrap();
    let a = p.spawn(&first).unwrap();
    let b = p.spawn(&first).unwrap();
    assert_eq!(a.name, b.name);
    assert_eq!(p.list().unwrap().iter().filter(|v| v.name == idem).count(), 1);
    let mut other = first.clone();
    other.vcpus = 2;
    assert_eq!(p.spawn(&other).unwrap_err().code, ErrorCode::Conflict);
}

pub fn terminate_is_idempotent_and_complete(s: Subject) {
    let term = s.vm("term");
    let p = &s.backend;
    create_running(&s, &term);
    assert!(p.list().unwrap().iter().any(|v| v.name == term));
    p.terminate(&term).unwrap();
    p.terminate(&term).unwrap();
    assert_eq!(p.get(&term).unwrap(), None);
    assert!(!p.list().unwrap().iter().any(|v| v.name == term));
}

pub fn power_cycle(s: Subject) {
    let power = s.vm("power");
    let p = &s.backend;
    create_running(&s, &power);
    assert_eq!(p.get(&power).unwrap().unwrap().state, PowerState::Running);
    wait_booted(&s, &power);
    p.shutdown(&power).unwrap();
    assert!(wait_state(p, &power, PowerState::is_off).is_off());
    p.start(&power).unwrap();
    assert_eq!(wait_state(p, &power, |s| s == PowerState::Running), PowerState::Running);
    p.power_off(&power).unwrap();
    assert!(p.get(&power).unwrap().unwrap().state.is_off());
    assert_eq!(p.start("never-created").unwrap_err().code, ErrorCode::NotFound);
}

pub fn guest_exec_passes_output_and_exit_codes(s: Subject) {
    let exec = s.vm("exec");
    let p = &s.backend;
    if !p.capabilities().guest_agent || s.states_only {
        return testkit::skip(&format!("{} has no guest agent here", p.name()));
    }
    create_running(&s, &exec);
    wait_booted(&s, &exec);
    let out = p.guest_exec(&exec, "echo compliance", Duration::from_secs(30)).unwrap();
    assert_eq!((out.exit_code, out.stdout.as_slice()), (0, b"compliance\n".as_slice()));
    assert_eq!(p.guest_exec(&exec, "exit 3", Duration::from_secs(30)).unwrap().exit_code, 3);
    if s.scripted_guest {
        return;
    }
    let passwd = p.guest_exec(&exec, "getent passwd admin", Duration::from_secs(30)).unwrap();
    assert!(String::from_utf8_lossy(&passwd.stdout).contains(":wallet=0xabc:"), "cloud-init created the user");
}

pub fn stats_in_one_call(s: Subject) {
    let stats_a = s.vm("stats-a");
    let stats_b = s.vm("stats-b");
    let p = &s.backend;
    if !p.capabilities().metrics {
        return testkit::skip(&format!("{} has no metrics", p.name()));
    }
    create_running(&s, &stats_a);
    create_running(&s, &stats_b);
    p.power_off(&stats_b).unwrap();
    let all = p.stats(None).unwrap();
    let a = all.iter().find(|r| r.name == stats_a).expect("a listed");
    assert_eq!(a.state, Some(PowerState::Running));
    if !s.states_only {
        assert_eq!((a.vcpus, a.memory_total_kib), (1, 512 * 1024));
    }
    assert!(all.iter().any(|r| r.name == stats_b && r.state == Some(PowerState::ShutOff)));
    let one = p.stats(Some(std::slice::from_ref(&stats_b))).unwrap();
    assert_eq!(one.len(), 1);
}

pub fn throttle_applies_and_resets(s: Subject) {
    let throttle = s.vm("throttle");
    let p = &s.backend;
    if !p.capabilities().throttle || s.states_only {
        return testkit::skip(&format!("{} cannot throttle here", p.name()));
    }
    create_running(&s, &throttle);
    let change = ThrottleChange { cpu_shares: Some(256), iops_read: Some(Limit::Set(100)), ..ThrottleChange::default() };
    p.throttle(&throttle, &change).unwrap();
    p.throttle(&throttle, &ThrottleChange::defaults()).unwrap();
    assert_eq!(p.throttle("never-created", &change).unwrap_err().code, ErrorCode::NotFound);
}

fn ambiguous(ops: &[(&str, bool)]) -> FaultPlan {
    FaultPlan { ambiguous: ops.iter().map(|(op, acted)| ((*op).to_string(), *acted)).collect(), ..FaultPlan::default() }
}

pub fn timed_out_writes_that_happened_are_confirmed(s: Subject) {
    let amb = s.vm("amb");
    let faulty = s.with_faults(ambiguous(&[("spawn", true), ("start", true), ("power_off", true), ("terminate", true)]));
    let spec = spec(&s, &amb, 1);
    s.backend.stage_bootstrap(&amb, &spec.bootstrap).unwrap();
    assert_eq!(faulty.spawn(&spec).unwrap().name, amb);
    faulty.start(&amb).unwrap();
    assert_eq!(s.backend.get(&amb).unwrap().unwrap().state, PowerState::Running);
    faulty.power_off(&amb).unwrap();
    assert!(s.backend.get(&amb).unwrap().unwrap().state.is_off());
    faulty.terminate(&amb).unwrap();
    assert_eq!((s.backend.get(&amb).unwrap(), s.backend.leftovers(&amb).unwrap()), (None, Vec::new()));
}

pub fn timed_out_writes_that_did_not_happen_are_reported(s: Subject) {
    let lost = s.vm("lost");
    let lost_spawn = s.vm("lost-spawn");
    create_running(&s, &lost);
    let faulty = s.with_faults(ambiguous(&[("spawn", false), ("power_off", false), ("terminate", false)]));
    assert_eq!(faulty.power_off(&lost).unwrap_err().code, ErrorCode::Ambiguous);
    assert_eq!(s.backend.get(&lost).unwrap().unwrap().state, PowerState::Running);
    assert_eq!(faulty.terminate(&lost).unwrap_err().code, ErrorCode::Ambiguous);
    assert!(s.backend.get(&lost).unwrap().is_some(), "a lost terminate left the VM");
    let other = spec(&s, &lost_spawn, 1);
    s.backend.stage_bootstrap(&lost_spawn, &other.bootstrap).unwrap();
    assert_eq!(faulty.spawn(&other).unwrap_err().code, ErrorCode::Ambiguous);
    assert_eq!(s.backend.get(&lost_spawn).unwrap(), None);
    s.backend.terminate(&lost_spawn).unwrap();
}

pub fn an_unreachable_hypervisor_fails_every_call(s: Subject) {
    let down = s.vm("down");
    create_running(&s, &down);
    let faulty = s.with_faults(FaultPlan { unreachable: true, ..FaultPlan::default() });
    let errors = [faulty.get(&down).unwrap_err(), faulty.list().unwrap_err(), faulty.power_off(&down).unwrap_err()];
    assert!(errors.iter().all(|e| e.code == ErrorCode::Unavailable), "{errors:?}");
    assert_eq!(faulty.terminate(&down).unwrap_err().code, ErrorCode::Unavailable);
    assert_eq!(s.backend.get(&down).unwrap().unwrap().state, PowerState::Running, "nothing was done");
}

pub fn create_steps_fail_where_the_plan_says(s: Subject) {
    let faulty = s.with_faults(FaultPlan { fail_step: Some(CreateStep::Spawn), ..FaultPlan::default() });
    faulty.step(CreateStep::Bootstrap).unwrap();
    let err = faulty.step(CreateStep::Spawn).unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal);
    assert_eq!(err.message, format!("{}: injected failure at create step spawn", s.backend.name()));
    s.backend.step(CreateStep::Spawn).unwrap();
}

macro_rules! compliance {
    ($(#[$attr:meta])* $provider:ident, $factory:expr) => {
        mod $provider {
            use super::*;
            #[test] $(#[$attr])*
            fn absent_vm_is_none_not_an_error() { super::run(super::absent_vm_is_none_not_an_error, $factory) }
            #[test] $(#[$attr])*
            fn spawn_is_idempotent_by_name() { super::run(super::spawn_is_idempotent_by_name, $factory) }
            #[test] $(#[$attr])*
            fn terminate_is_idempotent_and_complete() { super::run(super::terminate_is_idempotent_and_complete, $factory) }
            #[test] $(#[$attr])*
            fn power_cycle() { super::run(super::power_cycle, $factory) }
            #[test] $(#[$attr])*
            fn guest_exec_passes_output_and_exit_codes() { super::run(super::guest_exec_passes_output_and_exit_codes, $factory) }
            #[test] $(#[$attr])*
            fn stats_in_one_call() { super::run(super::stats_in_one_call, $factory) }
            #[test] $(#[$attr])*
            fn throttle_applies_and_resets() { super::run(super::throttle_applies_and_resets, $factory) }
            #[test] $(#[$attr])*
            fn timed_out_writes_that_happened_are_confirmed() { super::run(super::timed_out_writes_that_happened_are_confirmed, $factory) }
            #[test] $(#[$attr])*
            fn timed_out_writes_that_did_not_happen_are_reported() { super::run(super::timed_out_writes_that_did_not_happen_are_reported, $factory) }
            #[test] $(#[$attr])*
            fn an_unreachable_hypervisor_fails_every_call() { super::run(super::an_unreachable_hypervisor_fails_every_call, $factory) }
            #[test] $(#[$attr])*
            fn create_steps_fail_where_the_plan_says() { super::run(super::create_steps_fail_where_the_plan_says, $factory) }
        }
    };
}

compliance!(mock, mock());
#[cfg(feature = "libvirt")]
compliance!(libvirt_test_driver, libvirt_test_driver());
#[cfg(feature = "proxmox")]
compliance!(proxmox_standin, proxmox_standin());
#[cfg(feature = "proxmox")]
compliance!(proxmox_live, proxmox_live());
#[cfg(feature = "libvirt")]
compliance!(#[ignore = "real VMs: run by the real-VM stage (scripts/e2e-libvirt.sh)"] libvirt_real, libvirt_real());
