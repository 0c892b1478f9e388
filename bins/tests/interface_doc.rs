//! PROVISIONER_INTERFACE.md against the executables' clap definitions: each
//! executable's argument table lists exactly its long flags (with their value
//! names) and positional arguments (`<X>` required, `[X]` optional, `...`
//! repeated), nothing more and nothing less.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Section heading "### `<program>`" → the first cells of its table rows.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../PROVISIONER_INTERFACE.md");
    let text = std::fs::read_to_string(path).expect("PROVISIONER_INTERFACE.md");
    let mut sections = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("### `").and_then(|rest| rest.strip_suffix('`')) {
            assert!(sections.insert(name.to_string(), BTreeSet::new()).is_none(), "{name} documented twice");
            current = Some(name.to_string());
        } else if line.starts_with("## ") || line.starts_with("### ") {
            current = None;
        } else if let (Some(name), Some(row)) = (&current, line.strip_prefix("| `")) {
            let cell = row.split_once("` |").map(|(cell, _)| cell).unwrap_or_else(|| panic!("{name}: bad row {line}"));
            assert!(sections.get_mut(name).unwrap().insert(cell.to_string()), "{name}: {cell} listed twice");
        }
    }
    sections
}

/// How the document writes each argument of `command`.
fn expected(mut command: clap::Command) -> BTreeSet<String> {
    command.build();
    command
        .get_arguments()
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .map(|arg| {
            let value = arg.get_value_names().and_then(|names| names.first()).map(|n| n.to_string());
            let repeated = arg.get_num_args().is_some_and(|n| n.max_values() > 1);
            if arg.is_positional() {
                let name = value.unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
                let dots = if repeated { "..." } else { "" };
                if arg.is_required_set() { format!("<{name}>{dots}") } else { format!("[{name}]{dots}") }
            } else {
                let long = arg.get_long().unwrap_or_else(|| panic!("{} has no long flag", arg.get_id()));
                match (arg.get_action().takes_values(), value) {
                    (true, Some(value)) => format!("--{long} <{value}>"),
                    (true, None) => format!("--{long} <{}>", arg.get_id().as_str().to_uppercase()),
                    (false, _) => format!("--{long}"),
                }
            }
        })
        .collect()
}

#[test]
fn every_executable_is_documented_exactly() {
    let mut doc = documented();
    let mut problems = Vec::new();
    for (name, command, _) in blockhost_cli::commands::all() {
        let Some(documented) = doc.remove(name) else {
            problems.push(format!("{name} has no section"));
            continue;
        };
        let expected = expected(command);
        let missing: Vec<_> = expected.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&expected).collect();
        if !missing.is_empty() || !unknown.is_empty() {
            problems.push(format!("{name}: undocumented {missing:?}; documented but not accepted {unknown:?}"));
        }
    }
    problems.extend(doc.keys().map(|name| format!("section for {name}, which does not exist")));
    assert!(problems.is_empty(), "PROVISIONER_INTERFACE.md:\n{}", problems.join("\n"));
}

#[test]
fn the_parser_sees_every_table() {
    let doc = documented();
    assert_eq!(doc.len(), 15);
    assert!(doc["blockhost-vm-create"].contains("--owner-wallet <ADDRESS>"));
    assert!(doc["blockhost-vm-guest-exec"].contains("<COMMAND>..."));
    assert!(doc["blockhost-vm-metrics"].contains("[NAME]"));
    assert!(doc["blockhost-vm-gc"].contains("--vm-timeout <SECS>"), "the reconcile mode's table is gc's");
    assert!(doc["blockhost-provisioner-detect"].is_empty());
}
