use crate::host::{self, args, backend_vm, create_in, run_create, run_create_with, Host, WALLET};
use provisioner::host::vmdb::DbError;
use provisioner::provider::{ErrorCode, PowerState};
use provisioner::verbs::{Interrupt, VerbError};
use serde_json::{json, Value};

/// Nothing of `name` is left anywhere: no record, journal entry, address, VM or staged seed.
fn assert_nothing_left(h: &Host, name: &str) {
    assert_eq!(h.record(name), None, "record of {name}");
    assert_eq!(h.pending(), Value::Null, "journal");
    assert_eq!(h.allocated_ips(), Vec::<String>::new(), "allocated addresses");
    assert_eq!(h.allocated("allocated_ipv6"), Vec::<String>::new(), "allocated IPv6 addresses");
    assert_eq!(backend_vm(&h.session(), name), None, "VM in the backend");
    assert!(h.domain(name).is_none() && !h.seed_dir(name).exists(), "mock files of {name}");
}

#[test]
fn dry_run_plans_the_first_free_address_and_allocates_nothing() {
    let h = Host::new();
    let result = run_create(&h.session(), &args("vm-a", false)).unwrap();
    assert!(result.dry_run);
    assert_eq!((result.vm_name.as_str(), result.ip.as_str(), result.ipv6.as_str()), ("vm-a", "10.0.0.10", ""));
    assert_eq!(result.vmid, json!("vm-a"));
    assert_eq!(result.nft_token_id, Value::Null);
    assert_eq!(result.username, "admin");
    assert_nothing_left(&h, "vm-a");
    // A dry run after a real create plans the next address, still allocating nothing.
    h.create("vm-b");
    let plan = run_create(&h.session(), &args("vm-a", false)).unwrap();
    assert_eq!(plan.ip, "10.0.0.11");
    assert_eq!(h.allocated_ips(), ["10.0.0.10"]);
    assert_eq!(h.record("vm-a"), None);
}

#[test]
fn dry_run_refuses_a_taken_name() {
    let h = Host::new();
    h.create("vm-a");
    let err = run_create(&h.session(), &args("vm-a", false)).unwrap_err();
    assert!(matches!(err.error, VerbError::Db(DbError::AlreadyExists(ref n, ref s)) if n == "vm-a" && s == "active"), "{err:?}");
}

#[test]
fn apply_registers_the_record_and_runs_the_vm() {
    let h = Host::new();
    let before = chrono::Utc::now();
    let result = h.create("vm-a");
    assert!(!result.dry_run);
    assert_eq!((result.ip.as_str(), result.vmid.clone()), ("10.0.0.10", json!("vm-a")));
    let record = h.record("vm-a").expect("record");
    for (key, want) in [
        ("vm_name", "vm-a"),
        ("ip_address", "10.0.0.10"),
        ("ipv6_address", ""),
        ("status", "active"),
        ("owner", WALLET),
        ("wallet_address", WALLET),
        ("username", "admin"),
        ("network_mode", "broker"),
    ] {
        assert_eq!(record[key], json!(want), "{key}");
    }
    let created = host::parse_time(record["created_at"].as_str().unwrap());
    let expires = host::parse_time(record["expires_at"].as_str().unwrap());
    assert!(created >= before - chrono::Duration::seconds(1) && created <= chrono::Utc::now());
    assert_eq!(expires - created, chrono::Duration::days(30));
    assert_eq!(h.allocated_ips(), ["10.0.0.10"]);
    assert_eq!(h.pending(), Value::Null);
    let s = h.session();
    let vm = backend_vm(&s, "vm-a").expect("VM in the backend");
    assert_eq!((vm.state, vm.vcpus, vm.memory_mib), (PowerState::Running, 1, 512));
    let domain = h.domain("vm-a").unwrap();
    assert_eq!((domain["disk_gib"].clone(), domain["ipv4"].clone()), (json!(5), json!("10.0.0.10")));
    assert!(h.seed_dir("vm-a").join("user-data").exists(), "the bootstrap is staged");
}

#[test]
fn addresses_are_never_handed_out_twice_and_the_pool_runs_out() {
    let h = Host::new();
    let ips: Vec<String> = ["a1", "a2", "a3", "a4"].iter().map(|n| h.create(n).ip).collect();
    assert_eq!(ips, ["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13"]);
    let err = create_in(&h.session(), "a5").unwrap_err();
    assert!(matches!(err.error, VerbError::Db(DbError::PoolExhausted { pool: "IPv4", .. })), "{err:?}");
    assert_eq!(h.record("a5"), None);
    assert_eq!(backend_vm(&h.session(), "a5"), None);
    // A destroy gives its address back to the next create.
    provisioner::verbs::destroy::run(&h.session(), "a2").unwrap();
    assert_eq!(h.create("a5").ip, "10.0.0.11");
    let mut all = h.allocated_ips();
    all.sort();
    assert_eq!(all, ["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13"]);
}

#[test]
fn vmids_come_from_the_configured_range() {
    let h = Host::with_db_yaml(&format!("{}vmid_range: {{start: 100, end: 101}}\n", host::DB_YAML));
    assert_eq!(h.create("v1").vmid, json!(100));
    assert_eq!(h.create("v2").vmid, json!(101));
    assert_eq!(h.record("v2").unwrap()["vmid"], json!(101));
    assert_eq!(h.db()["next_vmid"], json!(102));
    let err = create_in(&h.session(), "v3").unwrap_err();
    assert!(matches!(err.error, VerbError::Db(DbError::PoolExhausted { pool: "VMID", .. })), "{err:?}");
    assert_eq!(h.allocated_ips().len(), 2, "the failed create released its address");
}

#[test]
fn ipv6_addresses_come_from_the_broker_prefix() {
    let h = Host::new();
    h.write_config("broker-allocation.json", r#"{"prefix": "fd00:1:2:3::/64", "dns_zone": "vm.example.org"}"#);
    let a = h.create("six-a");
    let b = h.create("six-b");
    assert_eq!((a.ipv6.as_str(), b.ipv6.as_str()), ("fd00:1:2:3::3", "fd00:1:2:3::4"));
    assert_eq!(h.field("six-a", "ipv6_address").as_deref(), Some("fd00:1:2:3::3"));
    assert_eq!(h.allocated("allocated_ipv6"), ["fd00:1:2:3::3", "fd00:1:2:3::4"]);
    assert_eq!(h.domain("six-b").unwrap()["ipv6"], json!("fd00:1:2:3::4"));
    provisioner::verbs::destroy::run(&h.session(), "six-a").unwrap();
    assert_eq!(h.allocated("allocated_ipv6"), ["fd00:1:2:3::4"]);
    assert_eq!(h.create("six-c").ipv6, "fd00:1:2:3::3");
}

#[test]
fn the_token_id_is_a_number_when_numeric_else_a_string() {
    let h = Host::new();
    let s = h.session();
    for (id, want) in [(Some("42"), json!(42)), (Some("abc-7"), json!("abc-7")), (None, Value::Null)] {
        let mut a = args("tok", false);
        a.nft_token_id = id.map(str::to_string);
        assert_eq!(run_create(&s, &a).unwrap().nft_token_id, want, "{id:?}");
    }
    let mut a = args("tok", true);
    a.nft_token_id = Some("7".into());
    let r = run_create(&s, &a).unwrap();
    assert_eq!(r.to_json()["nft_token_id"], json!(7));
    assert_eq!(r.to_json()["status"], json!("ok"));
}

#[test]
fn names_taken_in_any_form_are_refused_before_anything_is_reserved() {
    let h = Host::new();
    h.create("taken");
    let err = create_in(&h.session(), "taken").unwrap_err();
    assert!(matches!(err.error, VerbError::Db(DbError::AlreadyExists(..))), "{err:?}");
    let err = create_in(&h.session(), "TAKEN").unwrap_err();
    assert!(matches!(err.error, VerbError::Db(DbError::CaseConflict(ref a, ref b)) if a == "TAKEN" && b == "taken"), "{err:?}");
    // A destroyed record keeps its name: no second VM under it.
    provisioner::verbs::destroy::run(&h.session(), "taken").unwrap();
    let err = create_in(&h.session(), "taken").unwrap_err();
    assert!(matches!(err.error, VerbError::Db(DbError::AlreadyExists(_, ref s)) if s == "destroyed"), "{err:?}");
    // ...but a destroyed record does not block another case of the name.
    h.create("Taken");
    // A VM the backend has and the database does not is never adopted.
    h.edit_db(|db| {
        db["vms"].as_object_mut().unwrap().shift_remove("Taken");
    });
    let err = create_in(&h.session(), "Taken").unwrap_err();
    assert!(matches!(err.error, VerbError::Failed(ref m) if m.contains("already exists in the backend")), "{err:?}");
    assert_eq!(h.record("Taken"), None);
    assert!(backend_vm(&h.session(), "Taken").is_some(), "the foreign VM is left alone");
}

#[test]
fn a_create_in_progress_blocks_the_name() {
    let h = Host::new();
    h.create("other");
    let me = std::process::id();
    h.edit_db(|db| {
        db["pending_creates"] = json!({"busy": {"pid": me, "pid_start_ticks": 0, "started_at": host::days_ago(0), "ip_address": "10.0.0.11", "ipv6_address": "", "vmid": 0}});
        db["allocated_ips"].as_array_mut().unwrap().push(json!("10.0.0.11"));
    });
    let err = create_in(&h.session(), "busy").unwrap_err();
    assert!(matches!(err.error, VerbError::Db(DbError::CreateInProgress(ref n, pid)) if n == "busy" && pid == me), "{err:?}");
    let err = create_in(&h.session(), "BUSY").unwrap_err();
    assert!(matches!(err.error, VerbError::Db(DbError::CaseConflict(..))), "{err:?}");
    // The address of the create under way is not handed out.
    assert_eq!(h.create("third").ip, "10.0.0.12");
}

#[test]
fn arguments_out_of_range_are_usage_errors_and_the_bounds_are_accepted() {
    let h = Host::new();
    let s = h.session();
    let with = |f: &dyn Fn(&mut provisioner::verbs::create::CreateArgs)| {
        let mut a = args("rng", false);
        f(&mut a);
        run_create(&s, &a)
    };
    for bad in [
        with(&|a| a.cpu = 0),
        with(&|a| a.cpu = 257),
        with(&|a| a.memory_mib = 255),
        with(&|a| a.memory_mib = 4 * 1024 * 1024 + 1),
        with(&|a| a.disk_gib = 0),
        with(&|a| a.disk_gib = 65_537),
        with(&|a| a.expiry_days = 0),
        with(&|a| a.expiry_days = 36_501),
    ] {
        let err = bad.unwrap_err();
        assert!(host::is_usage(&err.error), "{err:?}");
    }
    for good in [
        with(&|a| a.cpu = 256),
        with(&|a| a.cpu = 1),
        with(&|a| a.memory_mib = 256),
        with(&|a| a.memory_mib = 4 * 1024 * 1024),
        with(&|a| a.disk_gib = 1),
        with(&|a| a.disk_gib = 65_536),
        with(&|a| a.expiry_days = 1),
        with(&|a| a.expiry_days = 36_500),
    ] {
        assert!(good.is_ok(), "{:?}", good.unwrap_err());
    }
    for bad in [
        with(&|a| a.name = "-bad".into()),
        with(&|a| a.username = "Bad User".into()),
        with(&|a| a.nft_token_id = Some("1 2".into())),
        with(&|a| a.owner_wallet = "a'b".into()),
    ] {
        assert!(matches!(bad.unwrap_err().error, VerbError::Invalid(_)));
    }
    assert_eq!(h.db(), json!({}), "a refused create writes nothing");
}

#[test]
fn expiry_days_and_vcpus_reach_the_record_and_the_vm() {
    let h = Host::new();
    let mut a = args("sized", true);
    a.cpu = 3;
    a.expiry_days = 2;
    run_create(&h.session(), &a).unwrap();
    let created = host::parse_time(&h.field("sized", "created_at").unwrap());
    let expires = host::parse_time(&h.field("sized", "expires_at").unwrap());
    assert_eq!(expires - created, chrono::Duration::days(2));
    assert_eq!(backend_vm(&h.session(), "sized").unwrap().vcpus, 3);
}

#[test]
fn the_engine_address_pattern_is_enforced() {
    let h = Host::new();
    std::fs::create_dir_all(h.paths.share_dir()).unwrap();
    std::fs::write(h.paths.share_dir().join("engine.json"), r#"{"constraints": {"address_pattern": "^addr_[a-z0-9]+$"}}"#).unwrap();
    let err = run_create(&h.session(), &args("w", false)).unwrap_err();
    assert!(matches!(err.error, VerbError::Invalid(_)), "{err:?}");
    let mut a = args("w", false);
    a.owner_wallet = "addr_test1".into();
    assert!(run_create(&h.session(), &a).is_ok());
}

#[test]
fn a_missing_network_mode_is_a_config_error() {
    let h = Host::new();
    std::fs::remove_file(h.paths.config_file("network-mode")).unwrap();
    let err = run_create(&h.session(), &args("nm", false)).unwrap_err();
    assert!(matches!(err.error, VerbError::Config(_)), "{err:?}");
}

#[test]
fn a_failure_at_any_step_leaves_nothing_behind() {
    for step in ["reserve", "bootstrap", "spawn", "start", "wait_agent", "register"] {
        let h = Host::new();
        h.knobs(&format!("fail_step: {step}\n"));
        let err = create_in(&h.session(), "doomed").unwrap_err();
        assert!(
            matches!(err.error, VerbError::Provider(ref e) if e.code == ErrorCode::Internal && e.message.contains(step)),
            "{step}: {err:?}"
        );
        assert!(err.cleanup_errors.is_empty(), "{step}: {:?}", err.cleanup_errors);
        assert_nothing_left(&h, "doomed");
        // The address is free again for the next create.
        h.knobs("");
        assert_eq!(h.create("next").ip, "10.0.0.10", "{step}");
    }
}

#[test]
fn a_dead_guest_agent_fails_the_create_within_the_bound_and_undoes_it() {
    let h = Host::with_db_yaml(&format!("{}agent_timeout_seconds: 1\n", host::DB_YAML));
    h.knobs("agent: dead\n");
    let started = std::time::Instant::now();
    let err = create_in(&h.session(), "mute").unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        err.message(),
        "the guest agent of mute did not answer within 1 s (db.yaml agent_timeout_seconds); this backend keeps no console log of the guest"
    );
    assert!(took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_secs(10), "{took:?}");
    assert_nothing_left(&h, "mute");
}

#[test]
fn a_silent_agent_says_where_the_console_log_was_kept_or_why_not() {
    use provisioner::verbs::ConsoleLog;
    let silent = |console_log| VerbError::AgentSilent { name: "vm1".into(), secs: 180, console_log }.to_string();
    let kept = std::path::PathBuf::from("/var/lib/blockhost/failed-creates/vm1.console.log");
    assert_eq!(
        silent(ConsoleLog::Kept(kept.clone())),
        "the guest agent of vm1 did not answer within 180 s (db.yaml agent_timeout_seconds); the guest's console log is kept at /var/lib/blockhost/failed-creates/vm1.console.log"
    );
    assert_eq!(
        silent(ConsoleLog::NotKept(kept, "/var/lib/blockhost/vms/vm1.console.log: No such file or directory (os error 2)".into())),
        "the guest agent of vm1 did not answer within 180 s (db.yaml agent_timeout_seconds); its console log could not be kept at /var/lib/blockhost/failed-creates/vm1.console.log: /var/lib/blockhost/vms/vm1.console.log: No such file or directory (os error 2)"
    );
}

#[test]
fn a_slow_guest_agent_is_waited_for() {
    let h = Host::new();
    h.knobs("agent_delay_ms: 700\n");
    let started = std::time::Instant::now();
    h.create("slow");
    assert!(started.elapsed() >= std::time::Duration::from_millis(650));
    assert_eq!(h.field("slow", "status").as_deref(), Some("active"));
}

#[test]
fn a_long_agent_wait_is_told_every_interval_with_the_time_waited_and_the_bound() {
    let h = Host::new();
    h.knobs("agent_delay_ms: 700\n");
    let mut session = h.session();
    session.notice_every = std::time::Duration::from_millis(200);
    let mut lines = Vec::new();
    provisioner::verbs::create::run(&session, &args("slow", true), &Interrupt::default(), &mut |l: &str| lines.push(l.to_string())).unwrap();
    let told: Vec<&String> = lines.iter().filter(|l| l.starts_with("Still waiting for the guest agent of slow: ")).collect();
    assert!((2..=4).contains(&told.len()), "about one line per 200 ms of a 700 ms wait: {lines:?}");
    assert!(told.iter().all(|l| l.ends_with(" s of 180 s")), "{told:?}");
}

#[test]
fn an_unreachable_backend_fails_before_anything_is_reserved() {
    let h = Host::new();
    h.knobs("unreachable: true\n");
    let err = create_in(&h.session(), "far").unwrap_err();
    assert!(matches!(err.error, VerbError::Provider(ref e) if e.code == ErrorCode::Unavailable), "{err:?}");
    assert_eq!(h.record("far"), None);
    assert_eq!(h.allocated_ips(), Vec::<String>::new());
}

#[test]
fn ambiguous_writes_that_happened_count_as_done() {
    let h = Host::new();
    h.knobs("ambiguous: spawn, start\n");
    h.create("amb");
    assert_eq!(h.field("amb", "status").as_deref(), Some("active"));
    assert_eq!(backend_vm(&h.session(), "amb").unwrap().state, PowerState::Running);
}

#[test]
fn an_ambiguous_write_that_did_not_happen_fails_and_is_undone() {
    for op in ["spawn", "start"] {
        let h = Host::new();
        h.knobs(&format!("ambiguous: {op}:lost\n"));
        let err = create_in(&h.session(), "lost").unwrap_err();
        assert!(matches!(err.error, VerbError::Provider(ref e) if e.code == ErrorCode::Ambiguous), "{op}: {err:?}");
        assert_nothing_left(&h, "lost");
    }
}

#[test]
fn a_failed_undo_is_reported_and_left_in_the_journal() {
    let h = Host::new();
    h.knobs("fail_step: wait_agent\nambiguous: terminate:lost\n");
    let err = create_in(&h.session(), "stuck").unwrap_err();
    assert!(matches!(err.error, VerbError::Provider(ref e) if e.code == ErrorCode::Internal), "{err:?}");
    assert_eq!(err.cleanup_errors.len(), 1, "{err:?}");
    assert!(err.message().contains("cleanup also failed") && err.message().contains("left for the next create or gc"), "{}", err.message());
    assert!(h.pending().get("stuck").is_some(), "the journal keeps the entry");
    assert_eq!(h.allocated_ips(), ["10.0.0.10"], "its address stays reserved");
    assert!(backend_vm(&h.session(), "stuck").is_some());
}

#[test]
fn an_interrupted_create_is_undone() {
    let h = Host::new();
    let interrupt = Interrupt::default();
    interrupt.flag().store(15, std::sync::atomic::Ordering::SeqCst);
    let err = run_create_with(&h.session(), &args("int", true), &interrupt).unwrap_err();
    assert!(matches!(err.error, VerbError::Interrupted(15)), "{err:?}");
    assert_nothing_left(&h, "int");
}

#[test]
fn a_killed_create_is_undone_by_the_next_create() {
    let h = Host::new();
    h.create("ghost");
    // Turn the finished create back into the journal entry of a create whose process died.
    let dead = testkit::dead_pid();
    h.edit_db(|db| {
        db["vms"].as_object_mut().unwrap().shift_remove("ghost");
        db["pending_creates"] = json!({"ghost": {"pid": dead, "pid_start_ticks": 1, "started_at": host::days_ago(0), "ip_address": "10.0.0.10", "ipv6_address": "", "vmid": 0}});
    });
    assert_eq!(h.create("fresh").ip, "10.0.0.10", "the dead create's address was released first");
    assert_eq!(backend_vm(&h.session(), "ghost"), None, "the dead create's VM is gone");
    assert_eq!(h.pending(), Value::Null);
    assert_eq!(h.allocated_ips(), ["10.0.0.10"]);
}

#[test]
fn verbatim_user_data_is_staged_as_given() {
    let h = Host::new();
    let mut a = args("verb", true);
    a.cloud_init_content = Some("#cloud-config\nusers:\n  - name: alice\n".into());
    run_create(&h.session(), &a).unwrap();
    let staged = std::fs::read_to_string(h.seed_dir("verb").join("user-data")).unwrap();
    assert_eq!(staged, "#cloud-config\nusers:\n  - name: alice\n");
    assert_eq!(h.domain("verb").unwrap()["bootstrap_format"], json!("verbatim"));
}

#[test]
fn a_vm_that_vanishes_while_its_agent_is_awaited_fails_at_once() {
    let h = Host::with_db_yaml(&format!("{}agent_timeout_seconds: 20\n", host::DB_YAML));
    h.knobs("agent_delay_ms: 20000\n");
    let domain = h.mock_dir().join("domains/vanish.json");
    let remover = std::thread::spawn(move || {
        // The VM disappears behind our back once it runs (the create then awaits its agent).
        for _ in 0..400 {
            let running = std::fs::read_to_string(&domain).is_ok_and(|t| t.contains("\"power\": \"running\""));
            if running && std::fs::remove_file(&domain).is_ok() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        false
    });
    let started = std::time::Instant::now();
    let err = create_in(&h.session(), "vanish").unwrap_err();
    assert!(remover.join().unwrap(), "the VM file appeared");
    assert!(matches!(err.error, VerbError::Provider(ref e) if e.code == ErrorCode::NotFound), "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "a lost VM is not waited for: {:?}", started.elapsed());
    assert_nothing_left(&h, "vanish");
}

#[test]
fn transient_failures_of_the_agent_ping_are_retried() {
    // Random transient failures of every backend call (seeded, so each seed is
    // one fixed sequence): a create may fail at a step, but never because one
    // ping of the guest agent failed transiently.
    let mut created = 0;
    for seed in 0..40 {
        let h = Host::new();
        h.knobs(&format!("seed: {seed}\nerror_rate: 0.3\n"));
        match create_in(&h.session(), "flaky") {
            Ok(_) => created += 1,
            Err(err) => {
                assert!(!err.message().contains("guest_ping"), "seed {seed}: {}", err.message());
                h.knobs("");
                if err.cleanup_errors.is_empty() {
                    assert_nothing_left(&h, "flaky");
                } else {
                    assert!(h.pending().get("flaky").is_some(), "seed {seed}: a failed undo stays journalled");
                }
            }
        }
    }
    assert!(created > 0);
}
