//! Command-line front ends of the provisioner verbs: argument parsing (clap),
//! printing the contract's outputs, and exit codes. The logic is in the library.

pub mod commands;

/// `eprintln!` that never panics: a reader that closed stderr (or a full
/// disk behind it) must not turn a contract exit code into a panic's 101.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that never panics: a reader that closed stdout (`| head -1`, an
/// engine that stopped reading) must not turn a verb that did its work into a
/// panic's 101. What cannot be written is dropped; the exit code stays the verb's.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use clap::Parser;
use provisioner::host::paths::HostPaths;
use provisioner::verbs::{Session, VerbError};
use std::process::ExitCode;

/// Parses argv; `Err` carries the exit code once help or version was printed,
/// or once `on_usage_error` has reported a usage error (given as one line).
pub fn parse_with<A: Parser>(on_usage_error: impl FnOnce(String) -> ExitCode) -> Result<A, ExitCode> {
    A::try_parse().map_err(|err| {
        use clap::error::ErrorKind;
        match err.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = err.print();
                ExitCode::SUCCESS
            }
            _ => on_usage_error(usage_line(&err)),
        }
    })
}

/// Parses argv, reporting a usage error as `<prog>: <message>` with `usage_exit`.
pub fn parse<A: Parser>(prog: &str, usage_exit: u8) -> Result<A, ExitCode> {
    parse_with(|line| {
        note!("{prog}: {line}");
        ExitCode::from(usage_exit)
    })
}

/// Clap's message as one line without its `error: ` prefix: the first paragraph,
/// so "required arguments were not provided:" keeps the argument names.
pub fn usage_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let paragraph: Vec<&str> =
        text.lines().skip_while(|l| l.trim().is_empty()).take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    let line = paragraph.join(" ");
    let line = line.trim_start_matches("error: ");
    if line.is_empty() { "invalid arguments".to_string() } else { line.to_string() }
}

/// Opens the session; a long wait for the VM database lock is told on stderr.
pub fn open_session(mock: bool, config_required: bool) -> Result<Session, VerbError> {
    let mut session = Session::open(HostPaths::from_env(), mock, config_required)?;
    session.db.set_lock_notice(stderr_progress);
    Ok(session)
}

/// Runs a verb against the session; its success is one line on stdout.
pub fn run_printing(prog: &str, mock: bool, verb: impl FnOnce(&Session) -> Result<String, VerbError>) -> ExitCode {
    match open_session(mock, false).and_then(|session| verb(&session)) {
        Ok(line) => {
            out!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(prog, e),
    }
}

/// One line on stderr, exit 1.
pub fn fail(prog: &str, message: impl std::fmt::Display) -> ExitCode {
    note!("{prog}: {message}");
    ExitCode::FAILURE
}

/// Progress lines go to stderr; stdout carries only the contract's output.
pub fn stderr_progress(line: &str) {
    note!("{line}");
}
