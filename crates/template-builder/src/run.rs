//! Running the build's tools: output into the build log (each line also offered
//! to the caller), failures as one line, and no process outliving the build.
//!
//! Every child gets `PR_SET_PDEATHSIG = SIGKILL`. Tools that mount things or
//! start helpers (debootstrap, chroot) run under `unshare` in a private mount
//! and PID namespace whose first process is killed with its parent
//! (`--kill-child`): when the build dies, even by SIGKILL, the kernel kills every
//! process of the namespace and drops its mounts.

use super::error::TemplateError;
use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use sys::die_with_parent;

/// The build log: every tool's output, kept after a failure.
pub struct BuildLog {
    file: File,
    path: PathBuf,
}

impl BuildLog {
    pub fn create(path: &Path) -> Result<Self, TemplateError> {
        let file = File::create(path).map_err(TemplateError::io(path))?;
        Ok(Self { file, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn note(&mut self, line: &str) {
        // The log is a diagnostic aid: a full disk shows up in the step that fills it.
        let _ = writeln!(self.file, "{line}");
    }
}

/// `program args…` in a private mount and PID namespace; `proc_at` gets a
/// fresh `/proc` of that namespace mounted (e.g. a chroot's `proc`).
pub fn isolated(program: impl AsRef<OsStr>, proc_at: Option<&Path>) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--pid", "--fork", "--kill-child"]);
    if let Some(dir) = proc_at {
        let mut arg = std::ffi::OsString::from("--mount-proc=");
        arg.push(dir);
        cmd.arg(arg);
    }
    cmd.arg("--").arg(program);
    cmd
}

fn spawn_failed(step: &str, cmd: &Command, e: std::io::Error) -> TemplateError {
    TemplateError::step(step, format!("cannot run {}: {e}", cmd.get_program().to_string_lossy()))
}

/// Runs `cmd` to completion with stdout and stderr merged into the log; each
/// line is also passed to `on_line`. A failure names the step, the exit status
/// and the last line of output.
pub fn logged(mut cmd: Command, step: &str, log: &mut BuildLog, on_line: &mut dyn FnMut(&str)) -> Result<(), TemplateError> {
    let (reader, writer) = std::io::pipe().map_err(|e| spawn_failed(step, &cmd, e))?;
    let writer_err = writer.try_clone().map_err(|e| spawn_failed(step, &cmd, e))?;
    cmd.stdin(Stdio::null()).stdout(writer).stderr(writer_err);
    die_with_parent(&mut cmd);
    log.note(&format!("$ {cmd:?}"));
    let mut child = cmd.spawn().map_err(|e| spawn_failed(step, &cmd, e))?;
    // Our copies of the pipe's write end must go, or the reader never sees EOF.
    drop(cmd);
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut reader = BufReader::new(reader);
    let mut raw = Vec::new();
    while reader.read_until(b'\n', &mut raw).unwrap_or(0) > 0 {
        let line = String::from_utf8_lossy(&raw).trim_end().to_string();
        raw.clear();
        log.note(&line);
        on_line(&line);
        if !line.trim().is_empty() {
            if tail.len() == 3 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
    let status = child.wait().map_err(|e| TemplateError::step(step, e.to_string()))?;
    if status.success() {
        return Ok(());
    }
    let last = tail.back().map(|l| format!(": {}", l.trim())).unwrap_or_default();
    Err(TemplateError::step(step, format!("{status}{last} (log: {})", log.path().display())))
}

/// Runs `cmd` and returns its stdout; a failure carries the first line of stderr.
pub fn captured(mut cmd: Command, step: &str) -> Result<String, TemplateError> {
    die_with_parent(&mut cmd);
    let output = cmd.stdin(Stdio::null()).output().map_err(|e| spawn_failed(step, &cmd, e))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no error output");
    Err(TemplateError::step(step, format!("{}: {}", output.status, first.trim())))
}

/// Runs `cmd` (its output already redirected by the caller) for at most
/// `timeout`; on timeout it is killed by its PID and reaped.
pub fn bounded(mut cmd: Command, step: &str, timeout: Duration) -> Result<(), TemplateError> {
    die_with_parent(&mut cmd);
    let mut child = cmd.stdin(Stdio::null()).spawn().map_err(|e| spawn_failed(step, &cmd, e))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().map_err(|e| TemplateError::step(step, e.to_string()))? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => return Err(TemplateError::step(step, status.to_string())),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(TemplateError::step(step, format!("timed out after {} s and was killed", timeout.as_secs())));
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[test]
    fn logs_every_line_and_reports_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = BuildLog::create(&dir.path().join("build.log")).unwrap();
        let mut seen = Vec::new();
        logged(sh("echo one; echo two >&2"), "demo", &mut log, &mut |l| seen.push(l.to_string())).unwrap();
        assert_eq!(seen, ["one", "two"]);
        let err = logged(sh("echo E: broken >&2; exit 3"), "demo", &mut log, &mut |_| {}).unwrap_err();
        assert!(err.to_string().starts_with("demo failed: exit status: 3: E: broken (log: "), "{err}");
        let text = std::fs::read_to_string(dir.path().join("build.log")).unwrap();
        assert!(text.contains("one\ntwo\n") && text.contains("E: broken"), "{text}");
    }

    #[test]
    fn captures_stdout_and_the_first_error_line() {
        assert_eq!(captured(sh("echo out"), "demo").unwrap(), "out\n");
        let err = captured(sh("echo first >&2; echo second >&2; exit 1"), "demo").unwrap_err();
        assert_eq!(err.to_string(), "demo failed: exit status: 1: first");
        let missing = captured(Command::new("/nonexistent/tool"), "demo").unwrap_err();
        assert!(missing.to_string().starts_with("demo failed: cannot run /nonexistent/tool"), "{missing}");
    }

    #[test]
    fn kills_on_timeout() {
        let started = Instant::now();
        let err = bounded(sh("sleep 30"), "vm", Duration::from_millis(300)).unwrap_err();
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        bounded(sh("exit 0"), "vm", Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn isolated_children_do_not_outlive_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = BuildLog::create(&dir.path().join("log")).unwrap();
        let mut cmd = isolated("sh", None);
        cmd.arg("-c").arg("sleep 60 & echo $$");
        let mut pid_in_ns = String::new();
        logged(cmd, "ns", &mut log, &mut |l| pid_in_ns = l.to_string()).unwrap();
        // The shell was the namespace's init; its background sleep died with it.
        assert_eq!(pid_in_ns, "1");
    }
}
