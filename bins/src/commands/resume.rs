//! blockhost-vm-resume

use crate::entry::{open_session, Executable, Outcome};
use crate::manual::{Manual, STANDARD_EXIT};
use clap::Parser;
use provisioner::host::timestamp;
use provisioner::verbs::exit_code::SUCCESS;
use provisioner::verbs::resume;

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

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: STANDARD_EXIT,
        examples: &[("blockhost-vm-resume web1 --extend-days 30", "starts web1 (also an active one found stopped) and extends its expiry")],
    };

    fn run(self) -> Outcome {
        let session = open_session(self.mock, false)?;
        let plan = resume::plan(&session, &self.name, self.extend_days, timestamp::now())?;
        if plan.active_but_off {
            crate::note!("VM {} is active in the database but its domain is off: starting it", plan.name);
        }
        if self.dry_run {
            crate::out!("Would resume {} (expires {})", plan.name, timestamp::format(&plan.new_expiry));
        } else {
            resume::run(&session, &plan)?;
            crate::out!("VM resumed: {} (expires {})", plan.name, timestamp::format(&plan.new_expiry));
        }
        Ok(SUCCESS)
    }
}
