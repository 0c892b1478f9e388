//! The provider compliance suite: one set of contract tests that every provider
//! must pass, each skipping what the provider does not declare. A provider joins
//! by adding one `compliance!` line with a factory.

use provisioner::host::cloud_init::{self, BootstrapInput};
use provisioner::host::config::{AuthDefaults, DbConfig};
use provisioner::host::paths::HostPaths;
use provisioner::provider::registry::{self, OpenContext};
use provisioner::provider::{recovery, ErrorCode, Limit, NicSpec, PowerState, Provider, ThrottleChange, VmSpec};
use std::time::{Duration, Instant};

#[path = "support/libvirt_fixture.rs"]
mod libvirt_fixture;

/// A provider under test, what its environment cannot do, and whatever keeps
/// that environment alive.
pub struct Subject {
    pub provider: Box<dyn Provider>,
    /// The hypervisor only emulates VM states (libvirt's test driver): no
    /// guest that runs an agent, no counters, no resource controls.
    pub states_only: bool,
    _root: tempfile::TempDir,
}

fn mock() -> Subject {
    let root = tempfile::tempdir().unwrap();
    let paths = HostPaths::with_root(root.path());
    let config = DbConfig::load(&paths, false).unwrap();
    let provider = (registry::find("mock").unwrap().open)(&OpenContext { paths: &paths, config: &config }).unwrap();
    Subject { provider, states_only: false, _root: root }
}

/// libvirt's in-process test driver, with a template whose image is a real
/// (empty) qcow2 so overlays can be made.
fn libvirt_test_driver() -> Subject {
    let root = tempfile::tempdir().unwrap();
    let paths = HostPaths::with_root(root.path());
    libvirt_fixture::write(&paths, "test:///default");
    let config = DbConfig::load(&paths, true).unwrap();
    let provider = (registry::find("libvirt").unwrap().open)(&OpenContext { paths: &paths, config: &config }).unwrap();
    Subject { provider, states_only: true, _root: root }
}

fn spec(name: &str, vcpus: u32) -> VmSpec {
    let nic = NicSpec {
        bridge: "br0".into(),
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
    VmSpec { name: name.into(), vcpus, memory_mib: 512, disk_gib: 2, nic: Some(nic), bootstrap }
}

fn create_running(p: &dyn Provider, name: &str) {
    let s = spec(name, 1);
    p.stage_bootstrap(name, &s.bootstrap).unwrap();
    recovery::spawn(p, &s).unwrap();
    p.start(name).unwrap();
}

fn wait_state(p: &dyn Provider, name: &str, want: impl Fn(PowerState) -> bool) -> PowerState {
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
    assert_eq!(s.provider.get("never-created").unwrap(), None);
}

pub fn spawn_is_idempotent_by_name(s: Subject) {
    let p = s.provider.as_ref();
    if !p.capabilities().idempotent_spawn {
        return eprintln!("skipped: {} does not declare idempotent spawn", p.name());
    }
    let first = spec("cmp-idem", 1);
    p.stage_bootstrap("cmp-idem", &first.bootstrap).unwrap();
    let a = p.spawn(&first).unwrap();
    let b = p.spawn(&first).unwrap();
    assert_eq!(a.name, b.name);
    assert_eq!(p.list().unwrap().iter().filter(|v| v.name == "cmp-idem").count(), 1);
    let mut other = first.clone();
    other.vcpus = 2;
    assert_eq!(p.spawn(&other).unwrap_err().code, ErrorCode::Conflict);
}

pub fn terminate_is_idempotent_and_complete(s: Subject) {
    let p = s.provider.as_ref();
    create_running(p, "cmp-term");
    assert!(p.list().unwrap().iter().any(|v| v.name == "cmp-term"));
    recovery::terminate(p, "cmp-term").unwrap();
    recovery::terminate(p, "cmp-term").unwrap();
    assert_eq!(p.get("cmp-term").unwrap(), None);
    assert!(!p.list().unwrap().iter().any(|v| v.name == "cmp-term"));
}

pub fn power_cycle(s: Subject) {
    let p = s.provider.as_ref();
    create_running(p, "cmp-power");
    assert_eq!(p.get("cmp-power").unwrap().unwrap().state, PowerState::Running);
    p.shutdown("cmp-power").unwrap();
    assert!(wait_state(p, "cmp-power", PowerState::is_off).is_off());
    p.start("cmp-power").unwrap();
    assert_eq!(wait_state(p, "cmp-power", |s| s == PowerState::Running), PowerState::Running);
    p.power_off("cmp-power").unwrap();
    assert!(p.get("cmp-power").unwrap().unwrap().state.is_off());
    assert_eq!(p.start("never-created").unwrap_err().code, ErrorCode::NotFound);
}

pub fn guest_exec_passes_output_and_exit_codes(s: Subject) {
    let p = s.provider.as_ref();
    if !p.capabilities().guest_agent || s.states_only {
        return eprintln!("skipped: {} has no guest agent here", p.name());
    }
    create_running(p, "cmp-exec");
    let deadline = Instant::now() + Duration::from_secs(240);
    while !p.guest_ping("cmp-exec").unwrap_or(false) {
        assert!(Instant::now() < deadline, "guest agent never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = p.guest_exec("cmp-exec", "echo compliance", Duration::from_secs(30)).unwrap();
    assert_eq!((out.exit_code, out.stdout.as_slice()), (0, b"compliance\n".as_slice()));
    assert_eq!(p.guest_exec("cmp-exec", "exit 3", Duration::from_secs(30)).unwrap().exit_code, 3);
    let passwd = p.guest_exec("cmp-exec", "getent passwd admin", Duration::from_secs(30)).unwrap();
    assert!(String::from_utf8_lossy(&passwd.stdout).contains(":wallet=0xabc:"), "cloud-init created the user");
}

pub fn stats_in_one_call(s: Subject) {
    let p = s.provider.as_ref();
    if !p.capabilities().metrics {
        return eprintln!("skipped: {} has no metrics", p.name());
    }
    create_running(p, "cmp-stats-a");
    create_running(p, "cmp-stats-b");
    p.power_off("cmp-stats-b").unwrap();
    let all = p.stats(None).unwrap();
    let a = all.iter().find(|r| r.name == "cmp-stats-a").expect("a listed");
    assert_eq!(a.state, Some(PowerState::Running));
    if !s.states_only {
        assert_eq!((a.vcpus, a.memory_total_kib), (1, 512 * 1024));
    }
    assert!(all.iter().any(|r| r.name == "cmp-stats-b" && r.state == Some(PowerState::ShutOff)));
    let one = p.stats(Some(&["cmp-stats-b".to_string()])).unwrap();
    assert_eq!(one.len(), 1);
}

pub fn throttle_applies_and_resets(s: Subject) {
    let p = s.provider.as_ref();
    if !p.capabilities().throttle || s.states_only {
        return eprintln!("skipped: {} cannot throttle here", p.name());
    }
    create_running(p, "cmp-throttle");
    let change = ThrottleChange { cpu_shares: Some(256), iops_read: Some(Limit::Set(100)), ..ThrottleChange::default() };
    p.throttle("cmp-throttle", &change).unwrap();
    p.throttle("cmp-throttle", &ThrottleChange::defaults()).unwrap();
    assert_eq!(p.throttle("never-created", &change).unwrap_err().code, ErrorCode::NotFound);
}

macro_rules! compliance {
    ($provider:ident, $factory:expr) => {
        mod $provider {
            use super::*;
            #[test]
            fn absent_vm_is_none_not_an_error() { super::absent_vm_is_none_not_an_error($factory) }
            #[test]
            fn spawn_is_idempotent_by_name() { super::spawn_is_idempotent_by_name($factory) }
            #[test]
            fn terminate_is_idempotent_and_complete() { super::terminate_is_idempotent_and_complete($factory) }
            #[test]
            fn power_cycle() { super::power_cycle($factory) }
            #[test]
            fn guest_exec_passes_output_and_exit_codes() { super::guest_exec_passes_output_and_exit_codes($factory) }
            #[test]
            fn stats_in_one_call() { super::stats_in_one_call($factory) }
            #[test]
            fn throttle_applies_and_resets() { super::throttle_applies_and_resets($factory) }
        }
    };
}

compliance!(mock, mock());
compliance!(libvirt_test_driver, libvirt_test_driver());
