//! Every executable's `--help` ends with its manual (exit status, files,
//! environment, examples), the same entries its man page is made from, and
//! each example runs that executable.

mod common;
use common::Root;

#[test]
fn every_help_ends_with_its_manual_and_every_example_is_its_own() {
    let root = Root::new();
    for (name, _, manual) in blockhost_cli::commands::all() {
        assert!(!manual.exit_status.is_empty() && !manual.examples.is_empty(), "{name}");
        for (example, _) in manual.examples {
            assert_eq!(example.split(' ').next(), Some(name), "{name}: {example}");
        }
        let run = root.run(name, &["--help"]);
        assert_eq!(run.code, 0, "{name}");
        assert!(run.stdout.trim_end().ends_with(&manual.help_text()), "{name}: {}", run.stdout);
        assert!(run.stdout.contains("\n\nEXIT STATUS:\n"), "{name}: {}", run.stdout);
    }
}
