//! blockhost-vm-list

use crate::{fail, open_session, parse};
use clap::{Parser, ValueEnum};
use provisioner::host::pyjson;
use provisioner::verbs::list;
use serde_json::Value;
use std::process::ExitCode;

pub const PROG: &str = "blockhost-vm-list";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// List every VM: NAME, STATUS, IP, CREATED (tab-separated) or a JSON array.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Same as --format json
    #[arg(long)]
    pub json: bool,
}

pub fn main() -> ExitCode {
    let args = match parse::<Args>(PROG, 2) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let rows = match open_session(false, false).and_then(|s| list::run(&s)) {
        Ok(rows) => rows,
        Err(e) => return fail(PROG, e),
    };
    if args.json || args.format == Format::Json {
        println!("{}", pyjson::dumps(&Value::Array(rows.iter().map(list::Row::to_json).collect())));
    } else {
        println!("NAME\tSTATUS\tIP\tCREATED");
        for row in rows {
            println!("{}\t{}\t{}\t{}", row.name, row.status, row.ip, row.created);
        }
    }
    ExitCode::SUCCESS
}
