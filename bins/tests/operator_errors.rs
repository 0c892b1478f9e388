//! Clear words, never a panic: closed pipes, config files of the wrong shape or
//! out of range, parser errors in an operator's terms, odd names in the database.

mod common;
use common::{set_record_field, Root, WALLET};

/// Runs `bin` with a stdout whose reader is already gone.
fn with_closed_stdout(root: &Root, bin: &str, args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = root.std_cmd(bin).args(args).stdout(writer).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_stdout_is_not_a_panic_and_the_work_is_done() {
    let root = Root::new();
    root.create("one");
    root.create("two");
    let (code, stderr) = with_closed_stdout(&root, "blockhost-vm-list", &[]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    let (code, stderr) = with_closed_stdout(&root, "blockhost-vm-create", &["three", "--owner-wallet", WALLET, "--apply"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let db = root.db();
    assert_eq!(db["vms"]["three"]["status"], "active", "the create committed");
    assert!(db.get("pending_creates").is_none());
    let (code, stderr) = with_closed_stdout(&root, "blockhost-vm-gc", &[]);
    assert_eq!((code, stderr.as_str()), (0, ""));
}

fn refused(root: &Root, bin: &str, args: &[&str]) -> String {
    let run = root.run(bin, args);
    assert_eq!(run.code, 1, "{bin} {args:?}: {}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    run.stderr.trim_end().to_string()
}

#[test]
fn a_broker_allocation_of_the_wrong_shape_is_an_error_not_no_ipv6() {
    let root = Root::new();
    for (text, found) in [("\"2001:db8:7::/120\"", "a string"), ("120", "a number")] {
        root.write("etc/blockhost/broker-allocation.json", text);
        let line = refused(&root, "blockhost-vm-create", &["vm1", "--owner-wallet", WALLET, "--apply"]);
        let path = root.path("etc/blockhost/broker-allocation.json");
        assert_eq!(
            line,
            format!(
                "blockhost-vm-create: {}: not valid JSON: the top level must be an object ({{\"key\": value, ...}}), not {found}",
                path.display()
            )
        );
    }
    assert!(root.db_text().is_empty() || root.db()["vms"].as_object().unwrap().is_empty());
}

#[test]
fn a_vmid_range_beyond_any_vmid_is_refused_not_wrapped() {
    let root = Root::new();
    let yaml = std::fs::read_to_string(root.path("etc/blockhost/db.yaml")).unwrap();
    root.write("etc/blockhost/db.yaml", &format!("{yaml}vmid_range:\n  start: 18446744073709551614\n  end: 18446744073709551615\n"));
    let line = refused(&root, "blockhost-vm-create", &["vm1", "--owner-wallet", WALLET, "--apply"]);
    assert!(line.ends_with("db.yaml: key 'vmid_range': end must be at most 999999999 (the largest VMID), got 18446744073709551615"), "{line}");
}

#[test]
fn parser_errors_are_told_in_an_operators_words() {
    let root = Root::new();
    let yaml = std::fs::read_to_string(root.path("etc/blockhost/db.yaml")).unwrap();
    root.write("etc/blockhost/db.yaml", &format!("{yaml}bridge: br1\n"));
    let line = refused(&root, "blockhost-vm-list", &[]);
    let bridge_line = yaml.lines().count() + 1;
    assert!(
        line.ends_with(&format!("db.yaml: not valid YAML: line {bridge_line}, column 1: the key \"bridge\" appears twice")),
        "{line}"
    );
    root.write("etc/blockhost/db.yaml", &yaml);
    root.write("etc/blockhost/broker-allocation.json", "{\n  \"prefix\": \"2001:db8:7::/120\"\n  \"dns_zone\": \"x\"\n}");
    let line = refused(&root, "blockhost-vm-create", &["vm1", "--owner-wallet", WALLET, "--apply"]);
    assert!(line.ends_with("broker-allocation.json: not valid JSON: line 3, column 3: expected ',' or '}' after a value"), "{line}");
}

#[test]
fn list_never_prints_a_name_with_a_tab_or_newline_raw() {
    let root = Root::new();
    root.create("plain");
    let mut db = root.db();
    let record = db["vms"]["plain"].clone();
    db["vms"].as_object_mut().unwrap().insert("odd\tname\nx\\y".into(), record);
    std::fs::write(root.db_path(), serde_json::to_string_pretty(&db).unwrap()).unwrap();
    set_record_field(&root, "plain", "ip_address", serde_json::json!("10.20.0.10\t"));
    let run = root.run("blockhost-vm-list", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[1].starts_with("plain\tactive\t10.20.0.10\\t\t"), "{}", lines[1]);
    assert!(lines[2].starts_with("odd\\tname\\nx\\\\y\t"), "{}", lines[2]);
    let gc = root.run("blockhost-vm-gc", &["--execute"]);
    assert_eq!(gc.code, 0, "a record no create of ours made is left alone: {}", gc.stdout);
}

#[test]
fn names_that_differ_only_in_case_are_not_both_live() {
    let root = Root::new();
    root.create("web1");
    let line = refused(&root, "blockhost-vm-create", &["WEB1", "--owner-wallet", WALLET, "--apply"]);
    assert!(line.ends_with("VM WEB1 would share its hostname with VM web1 (names that differ only in case)"), "{line}");
    assert_eq!(root.run("blockhost-vm-destroy", &["web1"]).code, 0);
    root.create("WEB1");
}
