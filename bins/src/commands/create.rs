//! blockhost-vm-create

use crate::{open_session, parse_with, stderr_progress};
use clap::Parser;
use provisioner::host::cloud_init::user_data_file;
use provisioner::host::pyjson;
use provisioner::host::vmdb::DbError;
use provisioner::verbs::create::{self, CreateArgs};
use provisioner::verbs::{Interrupt, VerbError};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

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

fn error_exit(message: &str, code: u8) -> ExitCode {
    crate::out!("{}", pyjson::dumps(&json!({"status": "error", "error": message})));
    crate::note!("{PROG}: {message}");
    ExitCode::from(code)
}

fn watch_signals(interrupt: &Interrupt) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) else { return };
    let flag = interrupt.flag();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            flag.store(signal, std::sync::atomic::Ordering::SeqCst);
        }
    });
}

pub fn main() -> ExitCode {
    let args = match parse_with::<Args>(|line| error_exit(&line, 1)) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let content = match &args.cloud_init_content {
        None => None,
        Some(path) => match user_data_file::read(path) {
            Ok(text) => Some(text),
            Err(e) => return error_exit(&e.to_string(), 1),
        },
    };
    let session = match open_session(args.mock, true) {
        Ok(session) => session,
        Err(e) => return error_exit(&e.to_string(), 1),
    };
    watch_signals(&session.interrupt);
    let request = CreateArgs {
        name: args.name,
        owner_wallet: args.owner_wallet,
        cpu: args.cpu,
        memory_mib: args.memory,
        disk_gib: args.disk,
        apply: args.apply,
        cloud_init_content: content,
        nft_token_id: args.nft_token_id,
        expiry_days: args.expiry_days.unwrap_or(u64::from(session.config.default_expiry_days)),
        username: args.username,
    };
    match create::run(&session, &request, &session.interrupt, &mut stderr_progress) {
        Ok(result) => {
            let json = pyjson::dumps(&result.to_json());
            crate::out!("BLOCKHOST_RESULT: {json}");
            crate::out!("{json}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let code = match failure.error {
                VerbError::Interrupted(signal) | VerbError::Db(DbError::Interrupted(signal)) => {
                    u8::try_from(128 + signal).unwrap_or(1)
                }
                _ => 1,
            };
            error_exit(&failure.message(), code)
        }
    }
}
