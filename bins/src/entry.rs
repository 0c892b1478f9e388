//! The one edge of every executable: parse → run → print → exit. A command
//! module gives its arguments (clap) and its output (`Executable::run`); the
//! exit code is what the run returns or the code its failure carries (see
//! `provisioner::verbs::exit_code`), and a failure is told in one place.
//!
//! Nothing written here can panic: a reader that closed stdout (`| head -1`,
//! an engine that stopped reading) or stderr loses what it did not read, and
//! the exit code stays the verb's. (Rust ignores SIGPIPE, so such a write is
//! an error that is dropped, not a signal.)

use crate::manual::Manual;
use clap::error::ErrorKind;
use clap::Parser;
use provisioner::host::paths::HostPaths;
use provisioner::verbs::create::CreateFailure;
use provisioner::verbs::exit_code::{FAILURE, SUCCESS, USAGE};
use provisioner::verbs::{Interrupt, Session, VerbError};
use std::ffi::OsString;
use std::fmt::Display;
use std::io::Write as _;
use std::process::ExitCode;

/// `println!` that never panics; what cannot be written is dropped.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that never panics; what cannot be written is dropped.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Bytes as they are to stdout (the guest's output), dropped when unwritable.
pub fn out_bytes(bytes: &[u8]) {
    let _ = std::io::stdout().write_all(bytes);
}

/// Bytes as they are to stderr, dropped when unwritable.
pub fn note_bytes(bytes: &[u8]) {
    let _ = std::io::stderr().write_all(bytes);
}

/// A run that failed, as its caller sees it: one message and the exit code it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// One line; a create's preflight that found several problems has one line each.
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// A failure with no code of its own: exit 1.
    pub fn new(message: impl Display) -> Self {
        Self { message: message.to_string(), code: FAILURE }
    }
}

impl From<VerbError> for Failure {
    fn from(error: VerbError) -> Self {
        Self { code: error.exit_code(), message: error.to_string() }
    }
}

/// A failed create: its error's code, and the message names the cleanup that
/// failed too; the problems of a preflight are one line each.
impl From<CreateFailure> for Failure {
    fn from(failure: CreateFailure) -> Self {
        let message = match &failure.error {
            VerbError::Preflight(problems) => problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
            _ => failure.message(),
        };
        Self { code: failure.error.exit_code(), message }
    }
}

/// How a run ends: `Ok` with the code of a run that did its work (0, unless the
/// verb's result stands for another: gc with a failed VM, the guest's exit
/// code, detect's answer), or the failure to tell.
pub type Outcome = Result<u8, Failure>;

/// One executable: its arguments, its work and output, and how it tells a failure.
pub trait Executable: Parser {
    /// The executable's name, the prefix of its diagnostics.
    const PROG: &'static str;
    /// What `--help` ends with and the man page adds: exit status, files, environment, examples.
    const MANUAL: Manual;
    /// The exit code of a command line that cannot be parsed.
    const USAGE_EXIT: u8 = USAGE;

    /// Does the verb's work and prints its output on stdout.
    fn run(self) -> Outcome;

    /// Tells a failure: by default a line `<prog>: <message>` on stderr for each line of the message.
    fn report(failure: &Failure) {
        for line in failure.message.lines() {
            note!("{}: {line}", Self::PROG);
        }
    }
}

/// The `main` of every executable.
pub fn main<E: Executable>() -> ExitCode {
    ExitCode::from(run::<E>(std::env::args_os()))
}

/// The executable's clap definition with its manual: what parses its
/// arguments, prints its `--help`, and makes its man page and completions.
pub fn command<E: Executable>() -> clap::Command {
    E::command().after_long_help(E::MANUAL.help_text())
}

/// Parses `argv` (help and version are printed, exit 0), runs the executable
/// and tells its failure; returns the exit code.
pub fn run<E: Executable>(argv: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> u8 {
    match parse::<E>(argv) {
        Ok(args) => finish::<E>(args.run()),
        Err(code) => code,
    }
}

/// The parsed arguments, or the exit code of a command line that asked for
/// help or the version (printed) or could not be parsed (told).
pub fn parse<E: Executable>(argv: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<E, u8> {
    let parsed = command::<E>().try_get_matches_from(argv).and_then(|matches| E::from_arg_matches(&matches));
    parsed.map_err(|err| match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            SUCCESS
        }
        _ => finish::<E>(Err(Failure { message: usage_line(&err), code: E::USAGE_EXIT })),
    })
}

/// The exit code of an outcome, its failure told.
pub fn finish<E: Executable>(outcome: Outcome) -> u8 {
    outcome.unwrap_or_else(|failure| {
        E::report(&failure);
        failure.code
    })
}

/// Clap's message as one line without its `error: ` prefix: the first paragraph,
/// so "required arguments were not provided:" keeps the argument names.
fn usage_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let paragraph: Vec<&str> =
        text.lines().skip_while(|l| l.trim().is_empty()).take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
    let line = paragraph.join(" ");
    let line = line.trim_start_matches("error: ");
    if line.is_empty() { "invalid arguments".to_string() } else { line.to_string() }
}

/// Opens the session; db.yaml's likely typos and a long wait for the VM database
/// lock are told on stderr.
pub fn open_session(mock: bool, config_required: bool) -> Result<Session, VerbError> {
    let mut session = Session::open(HostPaths::from_env(), mock, config_required)?;
    if let Some(source) = &session.config.source {
        for typo in &session.config.typos {
            note!("warning: {}: unknown key '{}' is ignored; did you mean '{}'?", source.display(), typo.key, typo.meant);
        }
    }
    session.db.set_lock_notice(stderr_progress);
    Ok(session)
}

/// SIGTERM and SIGINT no longer end the process: they set `interrupt`, and the
/// verb undoes its work and fails with the signal's code (128 + signal).
pub fn watch_signals(interrupt: &Interrupt) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) else { return };
    let flag = interrupt.flag();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            flag.store(signal, std::sync::atomic::Ordering::SeqCst);
        }
    });
}

/// Progress lines go to stderr; stdout carries only the contract's output.
pub fn stderr_progress(line: &str) {
    note!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisioner::host::vmdb::DbError;
    use crate::manual::STANDARD_EXIT;
    use std::cell::RefCell;

    thread_local! {
        static REPORTED: RefCell<Vec<Failure>> = const { RefCell::new(Vec::new()) };
    }

    fn reported() -> Vec<Failure> {
        REPORTED.with_borrow_mut(std::mem::take)
    }

    /// Ends as told: `--code N` is a run that did its work, `--fail N` a failure with code N.
    #[derive(Debug, Parser)]
    #[command(name = "fixture", version)]
    struct Fixture {
        #[arg(long)]
        code: Option<u8>,
        #[arg(long)]
        fail: Option<u8>,
        #[arg(long)]
        number: Option<u32>,
    }

    impl Executable for Fixture {
        const PROG: &'static str = "fixture";
        const MANUAL: Manual = Manual { exit_status: STANDARD_EXIT, examples: &[] };

        fn run(self) -> Outcome {
            match self.fail {
                Some(code) => Err(Failure { message: "it failed".into(), code }),
                None => Ok(self.code.unwrap_or(SUCCESS)),
            }
        }

        fn report(failure: &Failure) {
            REPORTED.with_borrow_mut(|r| r.push(failure.clone()));
        }
    }

    /// The same, with usage errors reported like any other failure (create's rule).
    #[derive(Debug, Parser)]
    #[command(name = "fixture-one")]
    struct UsageIsFailure {
        name: String,
    }

    impl Executable for UsageIsFailure {
        const PROG: &'static str = "fixture-one";
        const MANUAL: Manual = Manual { exit_status: STANDARD_EXIT, examples: &[] };
        const USAGE_EXIT: u8 = FAILURE;

        fn run(self) -> Outcome {
            Ok(SUCCESS)
        }

        fn report(failure: &Failure) {
            REPORTED.with_borrow_mut(|r| r.push(failure.clone()));
        }
    }

    #[test]
    fn a_run_that_did_its_work_exits_with_its_code_and_reports_nothing() {
        assert_eq!(run::<Fixture>(["fixture"]), 0);
        assert_eq!(run::<Fixture>(["fixture", "--code", "1"]), 1);
        assert_eq!(run::<Fixture>(["fixture", "--code", "42"]), 42);
        assert!(reported().is_empty());
    }

    #[test]
    fn a_failure_is_reported_once_and_exits_with_its_code() {
        for code in [1, 130, 143] {
            assert_eq!(run::<Fixture>(["fixture", "--fail", &code.to_string()]), code);
            assert_eq!(reported(), [Failure { message: "it failed".into(), code }]);
        }
    }

    #[test]
    fn a_usage_error_exits_2_with_clap_message_as_one_line() {
        assert_eq!(run::<Fixture>(["fixture", "--bogus"]), USAGE);
        assert_eq!(reported(), [Failure { message: "unexpected argument '--bogus' found".into(), code: USAGE }]);
        assert_eq!(run::<Fixture>(["fixture", "--number", "x"]), USAGE);
        let failure = reported().remove(0);
        assert!(failure.message.starts_with("invalid value 'x' for '--number <NUMBER>'"), "{failure:?}");
        assert!(!failure.message.contains('\n'), "{failure:?}");
    }

    #[test]
    fn a_usage_error_exits_with_the_executables_usage_code() {
        assert_eq!(run::<UsageIsFailure>(["fixture-one"]), FAILURE);
        let failure = reported().remove(0);
        assert_eq!(failure.code, FAILURE);
        assert_eq!(failure.message, "the following required arguments were not provided: <NAME>");
    }

    #[test]
    fn help_and_version_exit_0_and_are_not_failures() {
        assert_eq!(run::<Fixture>(["fixture", "--help"]), SUCCESS);
        assert_eq!(run::<Fixture>(["fixture", "-V"]), SUCCESS);
        assert_eq!(run::<UsageIsFailure>(["fixture-one", "-h"]), SUCCESS);
        assert!(reported().is_empty());
    }

    #[test]
    fn a_verb_error_carries_its_exit_code() {
        let cases = [
            (VerbError::Failed("no".into()), "no", FAILURE),
            (VerbError::Usage("nothing to change".into()), "nothing to change", FAILURE),
            (VerbError::NotFound("vm1".into()), "VM vm1 not found", FAILURE),
            (VerbError::Interrupted(15), "interrupted by signal 15", 143),
            (VerbError::Db(DbError::Interrupted(2)), "interrupted by signal 2", 130),
        ];
        for (error, message, code) in cases {
            assert_eq!(Failure::from(error), Failure { message: message.into(), code });
        }
    }

    #[test]
    fn a_failed_create_names_its_failed_cleanup_and_keeps_its_errors_code() {
        let failure = CreateFailure { error: VerbError::Interrupted(15), cleanup_errors: vec!["disk busy".into()] };
        assert_eq!(
            Failure::from(failure),
            Failure { message: "interrupted by signal 15; cleanup also failed: disk busy".into(), code: 143 }
        );
        let failure = CreateFailure { error: VerbError::Failed("no agent".into()), cleanup_errors: vec![] };
        assert_eq!(Failure::from(failure), Failure { message: "no agent".into(), code: FAILURE });
        let problems = vec![VerbError::Failed("pool full".into()), VerbError::NotFound("template".into())];
        let failure = CreateFailure { error: VerbError::Preflight(problems), cleanup_errors: vec![] };
        assert_eq!(Failure::from(failure), Failure { message: "pool full\nVM template not found".into(), code: FAILURE });
    }

    #[test]
    fn any_other_failure_exits_1() {
        assert_eq!(Failure::new("/x: cannot read"), Failure { message: "/x: cannot read".into(), code: FAILURE });
    }
}
