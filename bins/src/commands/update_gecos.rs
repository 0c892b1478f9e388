//! blockhost-vm-update-gecos

use crate::{fail, open_session, parse};
use clap::Parser;
use provisioner::verbs::update_gecos;
use std::io::Write;
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-update-gecos";

/// Set the VM user's GECOS to wallet=<WALLET>,nft=<ID> through the guest agent.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    pub name: String,
    /// Owner wallet address
    pub wallet: String,
    /// NFT token id (numeric or string)
    #[arg(long, value_name = "ID")]
    pub nft_id: String,
}

pub fn main() -> ExitCode {
    let args = match parse::<Args>(PROG, 2) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match open_session(false, false).and_then(|s| update_gecos::run(&s, &args.name, &args.wallet, &args.nft_id)) {
        Ok((change, output)) => {
            let _ = std::io::stderr().write_all(&output.stdout);
            let _ = std::io::stderr().write_all(&output.stderr);
            if output.exit_code == 0 {
                crate::note!("GECOS of {} on {} set to {}", change.username, args.name, change.gecos);
            }
            ExitCode::from(u8::try_from(output.exit_code).unwrap_or(1))
        }
        Err(e) => fail(PROG, e),
    }
}
