//! `update-gecos`: sets the VM user's GECOS to `wallet=<wallet>,nft=<id>` in the
//! guest (libpam-web3 trusts it), within the engine's 30 s budget.

use super::{guest_exec, Session, VerbError};
use crate::host::names;
use crate::provider::ExecOutput;
use std::time::Duration;

pub const DEFAULT_USERNAME: &str = "admin";
const BUDGET: Duration = Duration::from_secs(25);

pub struct Change {
    pub username: String,
    pub gecos: String,
}

pub fn run(session: &Session, name: &str, wallet: &str, nft_id: &str) -> Result<(Change, ExecOutput), VerbError> {
    names::vm_name(name)?;
    names::wallet(wallet, None)?;
    names::token_id(nft_id)?;
    let username = session
        .db
        .read()?
        .vm(name)
        .and_then(|r| r.username().map(str::to_string))
        .unwrap_or_else(|| DEFAULT_USERNAME.to_string());
    names::username(&username)?;
    let gecos = format!("wallet={wallet},nft={nft_id}");
    // Every character of both values is validated as inert inside single quotes.
    let command = format!("usermod -c '{gecos}' '{username}'");
    let output = guest_exec::run(session, name, &command, BUDGET)?;
    Ok((Change { username, gecos }, output))
}
