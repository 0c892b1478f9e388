//! The libvirt/KVM backend: domains defined from the deployment profile and
//! the current template, a qcow2 overlay and a NoCloud seed per VM, the QEMU
//! guest agent, bulk statistics and persistent throttles.

mod agent;
mod bridges;
mod capacity;
mod domain_xml;
mod errors;
mod ffi;
mod host_files;
mod pool;
pub mod profile;
mod stats;
mod template;
mod tuning;
mod vm_files;

use super::host_route::{self, RouteActions};
use super::module::{OpenContext, ProviderModule};
use super::*;
use crate::host::paths::HostPaths;
use crate::host::root_agent::RootAgent;
use domain_xml::{read_back, DomainPlan};
use errors::{connect_error, is_not_found, read_error, write_error};
use profile::Profile;
use std::cell::OnceCell;
use template_builder::TemplateStore;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::sys;
use vm_files::{VmFiles, VmRecord};
pub use template::build as build_template;

pub const MODULE: ProviderModule = ProviderModule { name: "libvirt", display_name: "libvirt/KVM + cloud-init", open };

const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on the in-guest figures of metrics of one VM, from the moment its
/// agent is first asked: what has not come by then is left out. A TCG guest
/// whose agent had just come up took 2.4 s for its exec and guest-get-fsinfo
/// (real-VM test `an_upstream_vm_is_adopted`, on a loaded 2-core host); 0.75 s
/// once booted.
const GUEST_STATS_BUDGET: Duration = Duration::from_secs(4);
/// Agents asked at once: libvirtd serves at most 5 requests of one client at a
/// time (`max_client_requests`), more would only wait in the daemon.
const GUEST_STATS_WORKERS: usize = 5;
const ROOT_AGENT_TIMEOUT: Duration = Duration::from_secs(30);
/// This package's own root agent actions (packaging/libvirt/root-agent-actions).
const ROUTE_ACTIONS: RouteActions = RouteActions { add: "libvirt-ip6-route-add", del: "libvirt-ip6-route-del" };

fn open(ctx: &OpenContext) -> Result<Backend, ProviderError> {
    Ok(Backend::new(Box::new(LibvirtProvider::new(ctx.paths, Profile::load(ctx.paths, ctx.config)?))))
}

pub struct LibvirtProvider {
    paths: HostPaths,
    profile: Profile,
    templates: TemplateStore,
    root_agent: RootAgent,
    /// Opened on first use, so verbs that need no hypervisor work without one.
    conn: OnceCell<Connect>,
}

impl LibvirtProvider {
    fn new(paths: &HostPaths, profile: Profile) -> Self {
        // libvirt's default handler prints every error; ours are returned instead.
        virt::error::clear_error_callback();
        Self {
            paths: paths.clone(),
            templates: template::store(paths, profile.accelerator),
            profile,
            root_agent: RootAgent::new(paths, ROOT_AGENT_TIMEOUT),
            conn: OnceCell::new(),
        }
    }

    fn conn(&self) -> Result<&Connect, ProviderError> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn);
        }
        let conn = Connect::open(Some(&self.profile.uri)).map_err(|e| connect_error(&self.profile.uri, &e))?;
        Ok(self.conn.get_or_init(|| conn))
    }

    fn lookup(&self, name: &str) -> Result<Option<Domain>, ProviderError> {
        match self.conn()?.lookup_domain_by_name(name) {
            Ok(domain) => Ok(Some(domain)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(read_error(&format!("looking up {name}"), &e)),
        }
    }

    fn domain(&self, name: &str) -> Result<Domain, ProviderError> {
        self.lookup(name)?.ok_or_else(|| ProviderError::not_found(name))
    }

    fn files(&self, name: &str) -> VmFiles {
        VmFiles::new(&self.paths, name)
    }

    /// A domain is ours when this provisioner (or the upstream one) made its disk.
    fn is_ours(&self, name: &str) -> bool {
        let files = self.files(name);
        files.record.exists() || files.overlay.exists()
    }

    fn info(name: &str, domain: &Domain) -> Result<VmInfo, ProviderError> {
        let context = format!("reading the state of {name}");
        let info = domain.info().map_err(|e| read_error(&context, &e))?;
        Ok(VmInfo {
            name: name.to_string(),
            state: stats::power_state(info.state.to_raw()),
            vcpus: info.nr_virt_cpu,
            memory_mib: info.max_mem / 1024,
        })
    }

    fn defined(name: &str, domain: &Domain, flags: sys::virDomainXMLFlags) -> Result<domain_xml::DefinedDomain, ProviderError> {
        let xml = domain.xml_desc(flags).map_err(|e| read_error(&format!("reading the definition of {name}"), &e))?;
        read_back(&xml).map_err(|e| ProviderError::new(ErrorCode::Internal, format!("{name}: {e}")))
    }

    fn define(&self, spec: &VmSpec, files: &VmFiles) -> Result<(), ProviderError> {
        let template = self.templates.current()?.ok_or_else(|| template::missing(&self.paths))?;
        host_files::create_overlay(&self.paths, &files.overlay, &template.image_path(), spec.disk_gib)?;
        let direct_io = host_files::choose_direct_io(&files.overlay, &template.image_path(), host_files::supports_direct_io, &mut |line| {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{line}");
        });
        VmRecord {
            bridge: spec.nic.as_ref().map(|n| n.bridge.clone()),
            ipv6: spec.nic.as_ref().and_then(|n| n.ipv6),
            mac: spec.nic.as_ref().map(|n| n.mac.clone()),
            template: template.dir.clone(),
        }
        .save(&files.record)?;
        let xml = DomainPlan {
            name: &spec.name,
            vcpus: spec.vcpus,
            memory_mib: spec.memory_mib,
            accelerator: self.profile.accelerator,
            machine: self.profile.machine.as_deref(),
            template: &template,
            overlay: &files.overlay,
            seed_iso: &files.seed_iso,
            console_log: &files.console_log,
            direct_io,
            nic: spec.nic.as_ref(),
            fingerprint: &domain_xml::fingerprint(spec),
        }
        .to_xml();
        let context = format!("defining {}", spec.name);
        let domain = self.conn()?.define_domain_xml_flags(&xml, sys::VIR_DOMAIN_DEFINE_VALIDATE).map_err(|e| write_error(&context, &e))?;
        domain.set_autostart(true).map_err(|e| write_error(&format!("enabling autostart of {}", spec.name), &e))
    }

    /// A failed start in the operator's words when it is a common mistake: a
    /// missing bridge, memory the host could not give.
    fn start_error(&self, name: &str, domain: &Domain, e: &virt::error::Error) -> ProviderError {
        let message = e.message();
        if let Some(error) = bridges::missing_in_start(message, self.conn().ok().map(bridges::list).as_ref()) {
            return error;
        }
        if errors::memory_refused(message) {
            let memory_mib = domain.info().map(|i| i.max_mem / 1024).unwrap_or(0);
            let free_mib = self.conn().ok().and_then(|c| capacity::host(c, &self.paths).ok()).and_then(|h| h.memory_free_mib);
            return ProviderError::memory_refused(name, memory_mib, free_mib);
        }
        write_error(&format!("starting {name}"), e)
    }

    fn undefine(name: &str, domain: &Domain) -> Result<(), ProviderError> {
        if domain.is_active().unwrap_or(true) {
            match domain.destroy() {
                Err(e) if errors::code(&e) != ErrorCode::Conflict => return Err(write_error(&format!("stopping {name}"), &e)),
                _ => {}
            }
        }
        let flags = sys::VIR_DOMAIN_UNDEFINE_NVRAM | sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE;
        let result = domain.undefine_flags(flags).or_else(|e| match errors::code(&e) {
            // Drivers without NVRAM support reject the flag itself.
            ErrorCode::Unsupported | ErrorCode::InvalidSpec => domain.undefine(),
            _ => Err(e),
        });
        match result {
            Err(e) if !is_not_found(&e) => Err(write_error(&format!("undefining {name}"), &e)),
            _ => Ok(()),
        }
    }
}

impl Provider for LibvirtProvider {
    fn name(&self) -> &'static str {
        MODULE.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            guest_agent: true,
            metrics: true,
            throttle: true,
            persistent_throttle: true,
            idempotent_spawn: true,
            custom_networking: true,
            ..Capabilities::default()
        }
    }

    fn detect(&self) -> Result<(), ProviderError> {
        let uri = &self.profile.uri;
        let driver = self.conn()?.driver_type().map_err(|e| read_error(&format!("asking libvirt at {uri} for its driver"), &e))?;
        if driver.eq_ignore_ascii_case("QEMU") {
            Ok(())
        } else {
            Err(ProviderError::new(ErrorCode::Unsupported, format!("libvirt at {uri} drives {driver}, not QEMU (db.yaml libvirt.uri)")))
        }
    }

    fn preflight(&self, bridge: &str, warn: &mut dyn FnMut(&str)) -> Vec<ProviderError> {
        let mut problems: Vec<ProviderError> = template::preflight(&self.paths, &self.templates).err().into_iter().collect();
        let checked = self.conn().and_then(|conn| bridges::check(bridge, &self.profile.uri, &bridges::list(conn)));
        match checked {
            Ok(warning) => warning.iter().for_each(|w| warn(w)),
            Err(e) => problems.push(e),
        }
        problems
    }

    fn host_capacity(&self) -> Result<Option<HostCapacity>, ProviderError> {
        capacity::host(self.conn()?, &self.paths).map(Some)
    }

    fn get(&self, name: &str) -> Result<Option<VmInfo>, ProviderError> {
        self.lookup(name)?.map(|d| Self::info(name, &d)).transpose()
    }

    fn list(&self) -> Result<Vec<VmInfo>, ProviderError> {
        let domains = self.conn()?.list_all_domains(0).map_err(|e| read_error("listing domains", &e))?;
        let mut out = Vec::new();
        for domain in domains {
            let name = domain.name().map_err(|e| read_error("listing domains", &e))?;
            if !self.is_ours(&name) {
                continue;
            }
            match Self::info(&name, &domain) {
                Ok(info) => out.push(info),
                // Undefined between the listing and the query.
                Err(e) if e.code == ErrorCode::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn stage_bootstrap(&self, name: &str, bootstrap: &Bootstrap) -> Result<(), ProviderError> {
        host_files::write_seed(&self.paths, &self.files(name), bootstrap)
    }

    fn spawn(&self, spec: &VmSpec) -> Result<VmInfo, ProviderError> {
        if let Some(domain) = self.lookup(&spec.name)? {
            let defined = Self::defined(&spec.name, &domain, sys::VIR_DOMAIN_XML_INACTIVE)?;
            if defined.fingerprint != Some(domain_xml::fingerprint(spec)) {
                return Err(ProviderError::new(ErrorCode::Conflict, format!("a domain named {} already exists", spec.name)));
            }
            return Self::info(&spec.name, &domain);
        }
        self.define(spec, &self.files(&spec.name))?;
        Self::info(&spec.name, &self.domain(&spec.name)?)
    }

    fn terminate(&self, name: &str) -> Result<(), ProviderError> {
        let files = self.files(name);
        let record = VmRecord::load(&files.record)?;
        // The definition says where the disks are (upstream's domains too);
        // those that are this VM's own files go with it.
        let mut disks = Vec::new();
        if let Some(domain) = self.lookup(name)? {
            if let Ok(defined) = Self::defined(name, &domain, sys::VIR_DOMAIN_XML_INACTIVE) {
                disks = vm_files::per_vm_disks(&self.paths, name, &defined.disk_files);
            }
            Self::undefine(name, &domain)?;
        }
        for path in disks.iter().chain(files.all().into_iter().filter(|p| **p != files.record)) {
            host_files::remove(path)?;
        }
        if let Some(record) = record {
            if let Some(route) = record.route() {
                host_route::remove(&self.root_agent, &ROUTE_ACTIONS, name, &route);
            }
        }
        host_files::remove(&files.record)
    }

    fn leftovers(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        let files = self.files(name);
        let mut left = Vec::new();
        if self.lookup(name)?.is_some() {
            left.push(format!("libvirt domain {name}"));
        }
        for path in files.all() {
            if path.exists() {
                left.push(path.display().to_string());
            }
        }
        Ok(left)
    }

    fn start(&self, name: &str) -> Result<(), ProviderError> {
        let domain = self.domain(name)?;
        domain.create().map_err(|e| self.start_error(name, &domain, &e))?;
        if let Some(record) = VmRecord::load(&self.files(name).record)? {
            if let Some(route) = record.route() {
                host_route::add(&self.root_agent, &ROUTE_ACTIONS, name, &route);
            }
        }
        Ok(())
    }

    fn shutdown(&self, name: &str) -> Result<(), ProviderError> {
        self.domain(name)?.shutdown().map_err(|e| write_error(&format!("shutting down {name}"), &e))
    }

    fn power_off(&self, name: &str) -> Result<(), ProviderError> {
        self.domain(name)?.destroy().map_err(|e| write_error(&format!("powering off {name}"), &e))
    }

    fn restore_host_state(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        self.domain(name)?;
        match VmRecord::load(&self.files(name).record)? {
            Some(record) => record.route().map_or(Ok(Vec::new()), |route| host_route::restore(&self.root_agent, &ROUTE_ACTIONS, name, &route)),
            None => Ok(Vec::new()),
        }
    }

    fn console_log(&self, name: &str) -> Option<std::path::PathBuf> {
        Some(self.files(name).console_log)
    }

    fn guest_ping(&self, name: &str) -> Result<bool, ProviderError> {
        agent::ping(&self.domain(name)?, PING_TIMEOUT)
    }

    fn guest_exec(&self, name: &str, command: &str, timeout: Duration) -> Result<ExecOutput, ProviderError> {
        agent::exec(&self.domain(name)?, command, timeout)
    }

    fn stats(&self, names: Option<&[String]>) -> Result<Vec<RawStats>, ProviderError> {
        let flags = sys::VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT;
        let (records, domains) = match names {
            None => {
                let all = ffi::all_domain_stats(self.conn()?, stats::METRICS_GROUPS, flags)
                    .map_err(|e| read_error("reading domain statistics", &e))?;
                (all.into_iter().filter(|r| self.is_ours(&r.domain)).collect(), Vec::new())
            }
            Some(names) => {
                let mut domains = Vec::new();
                for name in names {
                    domains.extend(self.lookup(name)?);
                }
                let records = ffi::domain_list_stats(&domains, stats::METRICS_GROUPS, flags)
                    .map_err(|e| read_error("reading domain statistics", &e))?;
                (records, domains)
            }
        };
        let mut out: Vec<RawStats> = records.iter().map(stats::raw_stats).collect();
        stats::add_instances(&mut out, &records);
        self.add_guest_stats(&mut out, &domains)?;
        Ok(out)
    }

    fn throttle(&self, name: &str, change: &ThrottleChange) -> Result<(), ProviderError> {
        let domain = self.domain(name)?;
        let running = Self::info(name, &domain)?.state == PowerState::Running;
        let defined = Self::defined(name, &domain, sys::VIR_DOMAIN_XML_INACTIVE)?;
        tuning::apply(&domain, running, defined.macs.first().map(String::as_str), change)
    }
}

impl LibvirtProvider {
    /// Asks the running VMs' agents a few at a time, each within its own
    /// budget: a dead agent costs its own VM the budget and delays no other. `known` are domains already looked up; the others are looked up here.
    fn add_guest_stats(&self, stats: &mut [RawStats], known: &[Domain]) -> Result<(), ProviderError> {
        let conn = self.conn()?;
        let domain_of = |name: &str| match known.iter().find(|d| d.name().is_ok_and(|n| n == name)) {
            Some(domain) => Some(domain.clone()),
            None => conn.lookup_domain_by_name(name).ok(),
        };
        let (indexes, domains): (Vec<usize>, Vec<Domain>) = stats
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state == Some(PowerState::Running))
            .filter_map(|(i, s)| domain_of(&s.name).map(|d| (i, d)))
            .unzip();
        let guests = pool::run(domains, GUEST_STATS_WORKERS, GUEST_STATS_BUDGET, |domain, deadline| agent::guest_stats(&domain, deadline));
        for (i, guest) in indexes.into_iter().zip(guests) {
            stats[i].guest = guest.flatten();
        }
        Ok(())
    }
}
