//! blockhost-vm-update-gecos

use crate::entry::{note_bytes, open_session, Executable, Outcome};
use crate::manual::{Manual, STANDARD_EXIT};
use clap::Parser;
use provisioner::verbs::exit_code;
use provisioner::verbs::update_gecos;

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

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: STANDARD_EXIT,
        examples: &[("blockhost-vm-update-gecos web1 0x1234567890abcdef1234567890abcdef12345678 --nft-id 7", "sets the VM user's GECOS to wallet=...,nft=7")],
    };

    /// Nothing on stdout: the guest command's output goes to stderr and its exit code is ours.
    fn run(self) -> Outcome {
        let (change, output) = update_gecos::run(&open_session(false, false)?, &self.name, &self.wallet, &self.nft_id)?;
        note_bytes(&output.stdout);
        note_bytes(&output.stderr);
        if output.exit_code == 0 {
            crate::note!("GECOS of {} on {} set to {}", change.username, self.name, change.gecos);
        }
        Ok(exit_code::passed_through(output.exit_code))
    }
}
