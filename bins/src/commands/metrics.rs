//! blockhost-vm-metrics

use crate::{fail, open_session, parse};
use clap::Parser;
use provisioner::host::pyjson;
use provisioner::verbs::metrics;
use serde_json::{Map, Value};
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-metrics";

/// Print a VM's resource usage as one JSON object (or all VMs' keyed by name with --all).
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// VM name
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Every VM in one call: one JSON object keyed by VM name
    #[arg(long)]
    pub all: bool,
}

pub fn main() -> ExitCode {
    let args = match parse::<Args>(PROG, 2) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let session = match open_session(false, false) {
        Ok(session) => session,
        Err(e) => return fail(PROG, e),
    };
    let json = match args.name {
        Some(name) => metrics::one(&session, &name).map(|m| m.to_json()),
        None => metrics::all(&session)
            .map(|all| Value::Object(all.into_iter().map(|(n, m)| (n, m.to_json())).collect::<Map<_, _>>())),
    };
    match json {
        Ok(json) => {
            crate::out!("{}", pyjson::dumps(&json));
            ExitCode::SUCCESS
        }
        Err(e) => fail(PROG, e),
    }
}
