//! blockhost-vm-gc

use crate::entry::{open_session, stderr_progress, Executable, Outcome};
use crate::manual::Manual;
use clap::Parser;
use provisioner::verbs::exit_code::{FAILURE, SUCCESS};
use provisioner::verbs::gc::{self, GcOptions, Item, ItemResult, Report};
use provisioner::verbs::reconcile::Bounds;
use std::time::Duration;

pub const PROG: &str = "blockhost-vm-gc";

/// Suspend expired VMs, destroy VMs suspended longer than the grace period. Dry run unless --execute.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// Act; without it only report what would be done
    #[arg(long)]
    pub execute: bool,
    /// Run only phase 1 (suspend expired VMs)
    #[arg(long, conflicts_with = "destroy_only")]
    pub suspend_only: bool,
    /// Run only phase 2 (destroy VMs past the grace period)
    #[arg(long)]
    pub destroy_only: bool,
    /// Days a VM stays suspended before it is destroyed [default: db.yaml gc_grace_days, else 7]
    #[arg(long, value_name = "N")]
    pub grace_days: Option<u32>,
    /// Seconds to wait for each graceful shutdown before forcing the VM off
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub stop_timeout: u64,
    /// Use the mock backend and its own database
    #[arg(long)]
    pub mock: bool,
    /// Only move the upstream provisioner's /var/lib/blockhost/vm-db.json into the configured database (once; the package's postinst runs it)
    #[arg(long, conflicts_with_all = ["execute", "suspend_only", "destroy_only", "grace_days", "mock", "reconcile"])]
    pub migrate_upstream_db: bool,
    /// Only make every VM match the VM database after a host restart: active VMs running with their host route, suspended and destroyed VMs off; one line per VM (blockhost-reconcile.service runs it at boot)
    #[arg(long, conflicts_with_all = ["execute", "suspend_only", "destroy_only", "grace_days", "stop_timeout"])]
    pub reconcile: bool,
    /// With --reconcile: seconds each VM may take (a graceful stop is forced off when it is up)
    #[arg(long, requires = "reconcile", default_value_t = 60, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub vm_timeout: u64,
    /// With --reconcile: seconds the whole run may take; VMs not reached by then are reported as failed
    #[arg(long, requires = "reconcile", default_value_t = 300, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
}

/// `--migrate-upstream-db`: one line on stdout; a record kept from the
/// configured database over the old file's is named on stderr.
fn migrate_upstream_db() -> Outcome {
    use provisioner::host::config::DbConfig;
    use provisioner::host::paths::HostPaths;
    use provisioner::host::vmdb::{migrate, LockWait, Migration, UPSTREAM_DB_FILE};
    use provisioner::verbs::{database, VerbError};
    let paths = HostPaths::from_env();
    let config = DbConfig::load(&paths, false).map_err(VerbError::from)?;
    let db = database(paths.host(&config.db_file), &config, LockWait { notice: stderr_progress, ..LockWait::default() });
    match migrate(&paths.host(UPSTREAM_DB_FILE), &db).map_err(VerbError::from)? {
        Migration::SameFile(path) => crate::out!("Nothing to migrate: db.yaml names {} itself", path.display()),
        Migration::NoSource(path) => crate::out!("Nothing to migrate: no {}", path.display()),
        Migration::Done { from, to, kept_as, added, identical, differing } => {
            for name in &differing {
                crate::note!("{name} is in both files: the record in {} is kept (the other stays in {})", to.display(), kept_as.display());
            }
            crate::out!(
                "Migrated {} VM record(s) from {} to {} ({} already there); the old file is now {}",
                added.len(),
                from.display(),
                to.display(),
                identical.len() + differing.len(),
                kept_as.display()
            );
        }
    }
    Ok(SUCCESS)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "candidate" } else { "candidates" }
}

fn print_phase(title: &str, verb: &str, done: &str, skipped_by: &str, items: Option<&Vec<Item>>) {
    let Some(items) = items else {
        crate::out!("{title}: skipped ({skipped_by})");
        return;
    };
    crate::out!("{title}: {} {}", items.len(), plural(items.len()));
    for item in items {
        match &item.result {
            ItemResult::WouldDo => crate::out!("  {}: would {verb} ({})", item.name, item.reason),
            ItemResult::Done(None) => crate::out!("  {}: {done} ({})", item.name, item.reason),
            ItemResult::Done(Some(note)) => crate::out!("  {}: {done} ({}; {note})", item.name, item.reason),
            ItemResult::Failed(error) => crate::out!("  {}: FAILED ({}): {error}", item.name, item.reason),
        }
    }
}

pub fn print_report(report: &Report) {
    let mode = if report.execute { "execute" } else { "dry run" };
    crate::out!("VM garbage collection: {mode}, grace period {} days", report.grace_days);
    if !report.lost.is_empty() {
        print_phase("Lost", "destroy", "destroyed", "", Some(&report.lost));
    }
    print_phase("Suspend", "suspend", "suspended", "--destroy-only", report.suspend.as_ref());
    print_phase("Destroy", "destroy", "destroyed", "--suspend-only", report.destroy.as_ref());
    if report.execute {
        crate::out!("Processed: {}, errors: {}", report.processed(), report.errors());
    } else {
        crate::out!("Would process: {}", report.processed());
    }
}

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: &[
            ("0", "every due VM was handled (or, without --execute, listed)"),
            ("1", "a VM failed (the report, or its line with --reconcile, says which) or the run failed"),
            ("2", "the command line could not be parsed"),
        ],
        examples: &[
            ("blockhost-vm-gc", "what would be suspended and destroyed"),
            ("blockhost-vm-gc --execute", "suspends expired VMs, destroys those past the grace period"),
            ("blockhost-vm-gc --reconcile --vm-timeout 30", "at boot: active VMs running with their routes, the others off"),
        ],
    };

    /// Exit 1 when a VM failed; the report (or its line) says which.
    fn run(self) -> Outcome {
        if self.migrate_upstream_db {
            return migrate_upstream_db();
        }
        if self.reconcile {
            let bounds = Bounds { per_vm: Duration::from_secs(self.vm_timeout), overall: Duration::from_secs(self.timeout) };
            return super::reconcile::run(bounds, self.mock);
        }
        let options = GcOptions {
            execute: self.execute,
            suspend_only: self.suspend_only,
            destroy_only: self.destroy_only,
            grace_days: self.grace_days,
            stop_timeout: Duration::from_secs(self.stop_timeout),
        };
        let report = gc::run(&open_session(self.mock, false)?, &options, &mut stderr_progress)?;
        print_report(&report);
        Ok(if report.errors() == 0 { SUCCESS } else { FAILURE })
    }
}
