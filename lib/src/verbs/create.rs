//! `create`: validate, reserve the name and addresses atomically with a journal
//! entry, bootstrap, spawn, start, wait for the guest agent, register. Any
//! failure undoes every completed step in reverse; a killed create is undone by
//! the next create or gc.

use super::capacity::{shortfalls, Request};
use super::wait_notice::WaitNotice;
use super::{recover, ConsoleLog, Interrupt, Progress, Session, VerbError};
use crate::host::cloud_init::{self, BootstrapInput};
use crate::host::config::{address_pattern, network_mode, AuthDefaults, BrokerAllocation};
use crate::host::io_words::io_words;
use crate::host::process::ProcessId;
use crate::host::provisioning_lock::ProvisioningLock;
use crate::host::vmdb::{DbError, Document, PendingCreate, Registration};
use crate::host::{names, pools, timestamp};
use crate::provider::{CreateStep, NicSpec, VmSpec};
use serde_json::{json, Value};
use std::time::Duration;

pub const DEFAULT_AGENT_TIMEOUT_SECS: u64 = 180;

#[derive(Debug, Clone)]
pub struct CreateArgs {
    pub name: String,
    pub owner_wallet: String,
    pub cpu: u64,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub apply: bool,
    /// Content of `--cloud-init-content`, used verbatim as user-data.
    pub cloud_init_content: Option<String>,
    pub nft_token_id: Option<String>,
    pub expiry_days: u64,
    pub username: String,
}

/// The contract's result object.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateResult {
    pub vm_name: String,
    pub ip: String,
    pub ipv6: String,
    pub vmid: Value,
    pub nft_token_id: Value,
    pub username: String,
    pub dry_run: bool,
}

impl CreateResult {
    /// The result for a reservation: `vmid` is the numeric VMID when one was
    /// allocated, else the VM name (as the libvirt provisioner reports it).
    fn new(reserved: &PendingCreate, args: &CreateArgs, dry_run: bool) -> Self {
        Self {
            vm_name: reserved.name.clone(),
            ip: reserved.ip.clone(),
            ipv6: reserved.ipv6.clone().unwrap_or_default(),
            vmid: if reserved.vmid > 0 { json!(reserved.vmid) } else { json!(reserved.name) },
            nft_token_id: token_value(args.nft_token_id.as_deref()),
            username: args.username.clone(),
            dry_run,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "status": "ok",
            "vm_name": self.vm_name,
            "ip": self.ip,
            "ipv6": self.ipv6,
            "vmid": self.vmid,
            "nft_token_id": self.nft_token_id,
            "username": self.username,
        })
    }
}

/// A failed create: the error, plus any cleanup that itself failed.
#[derive(Debug)]
pub struct CreateFailure {
    pub error: VerbError,
    pub cleanup_errors: Vec<String>,
}

impl CreateFailure {
    pub fn message(&self) -> String {
        if self.cleanup_errors.is_empty() {
            self.error.to_string()
        } else {
            format!("{}; cleanup also failed: {}", self.error, self.cleanup_errors.join("; "))
        }
    }
}

impl From<VerbError> for CreateFailure {
    fn from(error: VerbError) -> Self {
        Self { error, cleanup_errors: Vec::new() }
    }
}

struct Checked {
    vcpus: u32,
    expiry_days: u32,
}

fn check_ranges(args: &CreateArgs) -> Result<Checked, VerbError> {
    let range = |what: &str, value: u64, min: u64, max: u64| {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(VerbError::Usage(format!("invalid {what} {value}: must be between {min} and {max}")))
        }
    };
    let vcpus = range("--cpu", args.cpu, 1, 256)? as u32;
    range("--memory (MiB)", args.memory_mib, 256, 4 * 1024 * 1024)?;
    range("--disk (GiB)", args.disk_gib, 1, 65_536)?;
    let expiry_days = range("--expiry-days", args.expiry_days, 1, 36_500)? as u32;
    Ok(Checked { vcpus, expiry_days })
}

/// The result's `nft_token_id`: an integer when the id is numeric, else the string.
fn token_value(id: Option<&str>) -> Value {
    match id {
        None => Value::Null,
        Some(id) => id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n)),
    }
}

/// What the preflight found usable: everything a create goes on with.
struct Ready {
    name: String,
    checked: Checked,
    mode: String,
    auth: AuthDefaults,
    broker: Option<BrokerAllocation>,
}

/// Every check that needs no change to the host, all of them run: the
/// arguments, the config files, the name free, the pools' capacity, the
/// backend reachable and what it needs (the template, the bridge), the host's
/// room for the VM (db.yaml `overcommit`). One problem is its own
/// error; several are `VerbError::Preflight`, each kept.
fn preflight(session: &Session, args: &CreateArgs, progress: Progress) -> Result<Ready, VerbError> {
    let mut problems: Vec<VerbError> = Vec::new();
    let mut keep = |result: Result<(), VerbError>| result.map_err(|e| problems.push(e)).is_ok();
    let name = names::vm_name(&args.name).map(str::to_string).map_err(VerbError::from);
    let name = name.map_err(|e| keep(Err(e))).ok();
    keep(names::username(&args.username).map(drop).map_err(Into::into));
    if let Some(id) = &args.nft_token_id {
        keep(names::token_id(id).map(drop).map_err(Into::into));
    }
    let checked = check_ranges(args).map_err(|e| keep(Err(e))).ok();
    keep(names::wallet(&args.owner_wallet, address_pattern(&session.paths).as_ref()).map(drop).map_err(Into::into));
    let mode = network_mode(&session.paths).map_err(|e| keep(Err(e.into()))).ok();
    let auth = AuthDefaults::load(&session.paths).map_err(|e| keep(Err(e.into()))).ok();
    let broker = BrokerAllocation::load(&session.paths).map_err(|e| keep(Err(e.into()))).ok();
    if let Some(name) = &name {
        let free_in_db = match session.db.read() {
            Ok(doc) => {
                if let Some(broker) = &broker {
                    keep(allocate(session, &mut doc.clone(), name, broker.as_ref()).map(drop).map_err(Into::into));
                }
                keep(check_name_free(&doc, name).map_err(Into::into))
            }
            Err(e) => keep(Err(e.into())),
        };
        // The backend is asked in any case: whether it answers is a check of its own.
        match session.backend.get(name) {
            Err(e) => keep(Err(e.into())),
            Ok(Some(_)) if free_in_db => keep(Err(unadopted(name))),
            Ok(_) => true,
        };
    }
    problems.extend(session.backend.preflight(&session.config.bridge, progress).into_iter().map(VerbError::from));
    if checked.is_some() {
        let request = Request { vcpus: args.cpu, memory_mib: args.memory_mib, disk_gib: args.disk_gib };
        match session.backend.host_capacity() {
            Ok(host) => problems.extend(host.iter().flat_map(|h| shortfalls(h, &session.config.overcommit, &request)).map(VerbError::Failed)),
            Err(e) => problems.push(e.into()),
        }
    }
    // An unreachable backend fails each check that asks it in the same words: told once.
    let mut told = std::collections::HashSet::new();
    problems.retain(|p| told.insert(p.to_string()));
    match (name, checked, mode, auth, broker) {
        (Some(name), Some(checked), Some(mode), Some(auth), Some(broker)) if problems.is_empty() => {
            Ok(Ready { name, checked, mode, auth, broker })
        }
        _ if problems.len() == 1 => Err(problems.remove(0)),
        _ => Err(VerbError::Preflight(problems)),
    }
}

pub fn run(session: &Session, args: &CreateArgs, interrupt: &Interrupt, progress: Progress) -> Result<CreateResult, CreateFailure> {
    let Ready { name, checked, mode, auth, broker } = preflight(session, args, progress)?;

    if !args.apply {
        let doc = session.db.read().map_err(VerbError::from)?;
        return dry_run(session, args, &doc, &name, broker.as_ref(), progress).map_err(Into::into);
    }

    let _lock = match ProvisioningLock::acquire(&session.paths.run_dir()) {
        Ok((lock, warnings)) => {
            warnings.iter().for_each(|w| progress(&format!("warning: {w}")));
            Some(lock)
        }
        Err(e) => {
            progress(&format!("warning: cannot take the provisioning lock in {}: {e}", session.paths.run_dir().display()));
            None
        }
    };
    recover::stale_creates(session, progress)?;
    check_available(session, &session.db.read().map_err(VerbError::from)?, &name)?;

    session.backend.step(CreateStep::Reserve).map_err(VerbError::from)?;
    let entry = reserve(session, &name, broker.as_ref())?;
    progress(&format!(
        "Reserved {name}: IPv4 {}{}",
        entry.ip,
        entry.ipv6.as_deref().map(|v| format!(", IPv6 {v}")).unwrap_or_default()
    ));

    let built = build(session, args, &checked, &entry, &mode, auth, broker.as_ref(), interrupt, progress);
    match built {
        Ok(()) => {
            progress(&format!("VM {name} created"));
            Ok(CreateResult::new(&entry, args, false))
        }
        Err(error) => {
            progress(&format!("Create of {name} failed: {error}; rolling back"));
            // A signal that came while a step was failing (a request the signal
            // could not cut short) stopped the create all the same: 128 + N.
            let error = interrupt.check().err().unwrap_or(error);
            let cleanup_errors = match recover::undo(session, &entry) {
                Ok(()) => Vec::new(),
                Err(e) => vec![format!("{e} (left for the next create or gc to undo)")],
            };
            Err(CreateFailure { error, cleanup_errors })
        }
    }
}

/// Early, friendly checks before anything is reserved: the name is free in the
/// database and unknown to the backend.
fn check_available(session: &Session, doc: &Document, name: &str) -> Result<(), VerbError> {
    check_name_free(doc, name)?;
    if session.backend.get(name)?.is_some() {
        return Err(unadopted(name));
    }
    Ok(())
}

/// A VM the database does not know is never adopted.
fn unadopted(name: &str) -> VerbError {
    VerbError::Failed(format!("a VM named {name} already exists in the backend but not in the database"))
}

/// The name must be unused: no record in any status, no create in progress, and
/// no live VM or create whose name differs only in case (hostnames ignore case).
fn check_name_free(doc: &Document, name: &str) -> Result<(), DbError> {
    if let Some(record) = doc.vm(name) {
        return Err(DbError::AlreadyExists(name.to_string(), record.status().to_string()));
    }
    if let Some(pending) = doc.pending(name) {
        return Err(DbError::CreateInProgress(name.to_string(), pending.owner.pid));
    }
    let live = doc.vms().filter(|r| r.status() != "destroyed").map(|r| r.name.to_string());
    let creating = doc.pending_all().into_iter().map(|p| p.name);
    if let Some(other) = live.chain(creating).find(|other| other.eq_ignore_ascii_case(name)) {
        return Err(DbError::CaseConflict(name.to_string(), other));
    }
    Ok(())
}

/// Allocates addresses (and a VMID when a range is configured) into `doc`.
fn allocate(
    session: &Session,
    doc: &mut Document,
    name: &str,
    broker: Option<&BrokerAllocation>,
) -> Result<PendingCreate, DbError> {
    let ip = pools::next_ipv4(doc, &session.config.ip_pool)?.to_string();
    let ipv6 = broker.map(|b| pools::next_ipv6(doc, b, &session.config.ipv6_pool)).transpose()?.map(|v| v.to_string());
    let vmid = session.config.vmid_range.map(|r| pools::allocate_vmid(doc, &r)).transpose()?.unwrap_or(0);
    Ok(PendingCreate {
        name: name.to_string(),
        owner: ProcessId::current(),
        ip,
        ipv6,
        vmid,
        started_at: timestamp::format(&timestamp::now()),
    })
}

fn reserve(session: &Session, name: &str, broker: Option<&BrokerAllocation>) -> Result<PendingCreate, VerbError> {
    Ok(session.db.update(|doc| {
        check_name_free(doc, name)?;
        let entry = allocate(session, doc, name, broker)?;
        doc.add_pending(&entry)?;
        Ok(entry)
    })?)
}

fn dry_run(
    session: &Session,
    args: &CreateArgs,
    doc: &Document,
    name: &str,
    broker: Option<&BrokerAllocation>,
    progress: Progress,
) -> Result<CreateResult, VerbError> {
    let mut scratch = doc.clone();
    let plan = allocate(session, &mut scratch, name, broker)?;
    progress(&format!(
        "Dry run (no --apply): would create {name} with {} vCPU, {} MiB, {} GiB on {}, IPv4 {}{}; nothing was allocated",
        args.cpu,
        args.memory_mib,
        args.disk_gib,
        session.backend.name(),
        plan.ip,
        plan.ipv6.as_deref().map(|v| format!(", IPv6 {v}")).unwrap_or_default()
    ));
    Ok(CreateResult::new(&plan, args, true))
}

#[allow(clippy::too_many_arguments)]
fn build(
    session: &Session,
    args: &CreateArgs,
    checked: &Checked,
    entry: &PendingCreate,
    mode: &str,
    auth: AuthDefaults,
    broker: Option<&BrokerAllocation>,
    interrupt: &Interrupt,
    progress: Progress,
) -> Result<(), VerbError> {
    let backend = &session.backend;
    let step = |s: CreateStep| -> Result<(), VerbError> {
        interrupt.check()?;
        backend.step(s)?;
        Ok(())
    };
    let name = entry.name.as_str();
    let ipv4 = entry.ip.parse().map_err(|_| VerbError::Failed(format!("bad reserved address {}", entry.ip)))?;
    let ipv6 = entry.ipv6.as_deref().and_then(|v| v.parse().ok());
    let nic = NicSpec {
        bridge: session.config.bridge.clone(),
        ipv4,
        ipv4_prefix_len: session.config.ip_pool.prefix_len,
        gateway: session.config.ip_pool.gateway,
        ipv6,
        ipv6_gateway: ipv6.and(broker.map(BrokerAllocation::gateway)),
        mac: cloud_init::mac_for(name, Some(ipv4)),
    };

    step(CreateStep::Bootstrap)?;
    let bootstrap = cloud_init::render(
        &session.paths,
        &BootstrapInput {
            name,
            username: &args.username,
            wallet: &args.owner_wallet,
            nft_token_id: args.nft_token_id.as_deref(),
            nic: Some(&nic),
            dns_zone: broker.and_then(|b| b.dns_zone.as_deref()),
            auth,
            verbatim: args.cloud_init_content.clone(),
        },
    )?;
    backend.stage_bootstrap(name, &bootstrap)?;
    progress(&format!("Bootstrap staged ({}, sha256 {})", bootstrap.format.as_str(), bootstrap.sha256));

    step(CreateStep::Spawn)?;
    let spec = VmSpec {
        name: name.to_string(),
        vmid: u32::try_from(entry.vmid).ok().filter(|id| *id > 0),
        vcpus: checked.vcpus,
        memory_mib: args.memory_mib,
        disk_gib: args.disk_gib,
        nic: Some(nic),
        bootstrap,
    };
    backend.spawn(&spec)?;
    progress(&format!("VM {name} defined"));

    step(CreateStep::Start)?;
    backend.start(name)?;
    progress(&format!("VM {name} started"));

    step(CreateStep::WaitAgent)?;
    if backend.capabilities().guest_agent {
        wait_for_agent(session, name, interrupt, progress)?;
    }

    step(CreateStep::Register)?;
    let registration = Registration {
        name: name.to_string(),
        vmid: entry.vmid,
        ip: entry.ip.clone(),
        ipv6: entry.ipv6.clone(),
        owner: args.owner_wallet.clone(),
        expiry_days: checked.expiry_days,
        purpose: String::new(),
        wallet_address: Some(args.owner_wallet.clone()),
        username: Some(args.username.clone()),
        network_mode: mode.to_string(),
    };
    session.db.update(|doc| {
        doc.finish_pending(name, true);
        doc.register_vm(&registration, timestamp::now())
    })?;
    Ok(())
}

/// The guest-agent wait bound: db.yaml `agent_timeout_seconds`, default 180 s.
fn agent_timeout(session: &Session) -> Duration {
    let secs = session.config.raw.get("agent_timeout_seconds").and_then(Value::as_u64).unwrap_or(DEFAULT_AGENT_TIMEOUT_SECS);
    Duration::from_secs(secs)
}

/// Moves the guest's console log out of the way of the rollback, to
/// `<state>/failed-creates/<name>.console.log`, for the operator to read. A
/// move, not a copy: the log belongs to the hypervisor's user (libvirt-qemu)
/// and the engine's user may not read it, but may rename it in its directory.
fn keep_console_log(session: &Session, name: &str) -> ConsoleLog {
    let Some(log) = session.backend.console_log(name) else { return ConsoleLog::None };
    let kept = session.state_dir().join("failed-creates").join(format!("{name}.console.log"));
    let moved = kept.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::rename(&log, &kept));
    match moved {
        Ok(_) => ConsoleLog::Kept(kept),
        Err(e) => ConsoleLog::NotKept(kept, format!("{}: {}", log.display(), io_words(&e))),
    }
}

fn wait_for_agent(session: &Session, name: &str, interrupt: &Interrupt, progress: Progress) -> Result<(), VerbError> {
    let timeout = agent_timeout(session);
    progress(&format!("Waiting up to {} s for the guest agent of {name}", timeout.as_secs()));
    let mut notice = WaitNotice::new(format!("the guest agent of {name}"), timeout, session.notice_every);
    loop {
        interrupt.check()?;
        match session.backend.guest_ping(name) {
            Ok(true) => {
                progress(&format!("Guest agent answered after {:.1} s", notice.elapsed().as_secs_f64()));
                return Ok(());
            }
            Ok(false) => {}
            Err(e) if e.retryable() => {}
            Err(e) => return Err(e.into()),
        }
        if notice.elapsed() >= timeout {
            return Err(VerbError::AgentSilent { name: name.to_string(), secs: timeout.as_secs(), console_log: keep_console_log(session, name) });
        }
        notice.tick(progress);
        std::thread::sleep(Duration::from_millis(200).min(timeout.saturating_sub(notice.elapsed())));
    }
}
