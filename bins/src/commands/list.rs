//! blockhost-vm-list

use crate::entry::{open_session, Executable, Outcome};
use crate::manual::{Manual, STANDARD_EXIT};
use clap::{Parser, ValueEnum};
use provisioner::host::pyjson;
use provisioner::verbs::exit_code::SUCCESS;
use provisioner::verbs::list;
use serde_json::Value;

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

/// A table cell that cannot break the table: backslash, tab, newline and other
/// control characters escaped; a value kept raw from the database (see
/// `pyjson`) shown as its JSON text.
fn cell(value: &str) -> String {
    if let Some(json) = value.strip_prefix(pyjson::RAW) {
        return json.to_string();
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: STANDARD_EXIT,
        examples: &[("blockhost-vm-list --format json", "every VM as a JSON array")],
    };

    fn run(self) -> Outcome {
        let list::Listing { rows, unknown_because } = list::run(&open_session(false, false)?)?;
        if let Some(e) = unknown_because {
            crate::note!("warning: the status of every VM not destroyed is unknown: {e}");
        }
        if self.json || self.format == Format::Json {
            crate::out!("{}", pyjson::dumps(&Value::Array(rows.iter().map(list::Row::to_json).collect())));
        } else {
            crate::out!("NAME\tSTATUS\tIP\tCREATED");
            for row in rows {
                crate::out!("{}\t{}\t{}\t{}", cell(&row.name), cell(&row.status), cell(&row.ip), cell(&row.created));
            }
        }
        Ok(SUCCESS)
    }
}
