//! blockhost-vm-resume

use crate::{fail, open_session, parse};
use clap::Parser;
use provisioner::host::timestamp;
use provisioner::verbs::resume;
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-resume";

/// Start a suspended VM and mark it active; the expiry never moves backwards.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    pub name: String,
    /// Extend the subscription by N days from max(expiry, now)
    #[arg(long, value_name = "N")]
    pub extend_days: Option<u32>,
    /// Show what would be done
    #[arg(long)]
    pub dry_run: bool,
    /// Use the mock backend and its own database
    #[arg(long)]
    pub mock: bool,
}

pub fn main() -> ExitCode {
    let args = match parse::<Args>(PROG, 2) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let session = match open_session(args.mock, false) {
        Ok(session) => session,
        Err(e) => return fail(PROG, e),
    };
    let plan = match resume::plan(&session, &args.name, args.extend_days, timestamp::now()) {
        Ok(plan) => plan,
        Err(e) => return fail(PROG, e),
    };
    if args.dry_run {
        crate::out!("Would resume {} (expires {})", plan.name, timestamp::format(&plan.new_expiry));
        return ExitCode::SUCCESS;
    }
    match resume::run(&session, &plan) {
        Ok(()) => {
            crate::out!("VM resumed: {} (expires {})", plan.name, timestamp::format(&plan.new_expiry));
            ExitCode::SUCCESS
        }
        Err(e) => fail(PROG, e),
    }
}
