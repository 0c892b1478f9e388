//! blockhost-vm-create

use crate::entry::{open_session, stderr_progress, watch_signals, Executable, Failure, Outcome};
use crate::manual::Manual;
use clap::Parser;
use provisioner::host::cloud_init::user_data_file;
use provisioner::host::pyjson;
use provisioner::verbs::create::{self, CreateArgs};
use provisioner::verbs::exit_code::{FAILURE, SUCCESS};
use serde_json::json;
use std::path::PathBuf;

pub const PROG: &str = "blockhost-vm-create";

/// Create a VM, print the contract's result JSON (a `BLOCKHOST_RESULT: ` line, then the bare JSON).
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name (the primary key everywhere)
    pub name: String,
    /// Subscriber wallet address (owner of the VM)
    #[arg(long, value_name = "ADDRESS")]
    pub owner_wallet: String,
    /// vCPU count
    #[arg(long, default_value_t = 1)]
    pub cpu: u64,
    /// Memory in MiB
    #[arg(long, default_value_t = 2048, value_name = "MIB")]
    pub memory: u64,
    /// Disk size in GiB
    #[arg(long, default_value_t = 20, value_name = "GIB")]
    pub disk: u64,
    /// Actually create; without it, a dry run that allocates nothing
    #[arg(long)]
    pub apply: bool,
    /// User-data file used verbatim instead of the rendered template
    #[arg(long, value_name = "PATH")]
    pub cloud_init_content: Option<PathBuf>,
    /// NFT token id to echo in the result (numeric or string)
    #[arg(long, value_name = "ID")]
    pub nft_token_id: Option<String>,
    /// Subscription length in days [default: db.yaml default_expiry_days, else 30]
    #[arg(long, value_name = "DAYS")]
    pub expiry_days: Option<u64>,
    /// Login user created in the VM
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// Use the mock backend and its own database
    #[arg(long)]
    pub mock: bool,
    /// Legacy, accepted and ignored (minting belongs to the engine)
    #[arg(long)]
    pub no_mint: bool,
    /// Legacy, accepted and ignored
    #[arg(long)]
    pub skip_mint: bool,
    /// Legacy, accepted and ignored
    #[arg(long, value_name = "HEX")]
    pub user_signature: Option<String>,
    /// Legacy, accepted and ignored
    #[arg(long, value_name = "TEXT")]
    pub public_secret: Option<String>,
}

/// The contract: usage errors are failures like any other (exit 1), and every
/// failure is also the error JSON on stdout. SIGTERM or SIGINT undo the create
/// and exit 128 + signal.
impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: &[
            ("0", "the VM was created; without --apply, every preflight check passed"),
            ("1", "it failed or was refused (a bad argument too); each problem is a line on stderr, the error JSON on stdout"),
            ("128+N", "stopped by signal N (SIGTERM: 143); the create was undone"),
        ],
        examples: &[("blockhost-vm-create web1 --owner-wallet 0x1234567890abcdef1234567890abcdef12345678", "a preflight: every problem an --apply would meet, one line each; exit 0 when there is none"), ("blockhost-vm-create web1 --owner-wallet 0x1234567890abcdef1234567890abcdef12345678 --cpu 2 --memory 4096 --apply", "creates web1 and prints the result JSON"), ("blockhost-vm-create big1 --owner-wallet 0x1234567890abcdef1234567890abcdef12345678 --cpu 16 --memory 65536 --disk 500", "the preflight weighs the request against the host: with the running VMs, at most cpu x its CPUs in vCPUs, memory x its free memory and x its total memory, and all thin disks growing by at most disk x the free space; the ratios are db.yaml overcommit.cpu (default 4), overcommit.memory (1: no overcommit) and overcommit.disk (2)")],
    };
    const USAGE_EXIT: u8 = FAILURE;

    fn run(self) -> Outcome {
        let content = self.cloud_init_content.as_deref().map(user_data_file::read).transpose().map_err(Failure::new)?;
        let session = open_session(self.mock, true)?;
        watch_signals(&session.interrupt);
        let request = CreateArgs {
            name: self.name,
            owner_wallet: self.owner_wallet,
            cpu: self.cpu,
            memory_mib: self.memory,
            disk_gib: self.disk,
            apply: self.apply,
            cloud_init_content: content,
            nft_token_id: self.nft_token_id,
            expiry_days: self.expiry_days.unwrap_or(u64::from(session.config.default_expiry_days)),
            username: self.username,
        };
        let result = create::run(&session, &request, &session.interrupt, &mut stderr_progress)?;
        let json = pyjson::dumps(&result.to_json());
        crate::out!("BLOCKHOST_RESULT: {json}");
        crate::out!("{json}");
        Ok(SUCCESS)
    }

    /// The error JSON on stdout (several problems joined by `; `), a line on stderr for each.
    fn report(failure: &Failure) {
        let lines: Vec<&str> = failure.message.lines().collect();
        crate::out!("{}", pyjson::dumps(&json!({"status": "error", "error": lines.join("; ")})));
        for line in lines {
            crate::note!("{PROG}: {line}");
        }
    }
}
