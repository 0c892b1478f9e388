//! The QEMU guest agent, spoken through libvirt: ping, command execution and
//! the in-guest figures of metrics.

use super::errors::{daemon_unreachable, read_error};
use crate::provider::{ErrorCode, ExecOutput, GuestStats, ProviderError};
use base64::Engine;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use virt::domain::Domain;

/// Per-stream cap on captured output; the rest is dropped and reported.
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;
/// Waits between status checks of a guest command: short first (most commands
/// end within milliseconds), doubling up to the longest.
const FIRST_POLL: Duration = Duration::from_millis(2);
const LONGEST_POLL: Duration = Duration::from_millis(100);

/// One agent command; `timeout` bounds the wait for its reply.
fn command(domain: &Domain, request: &Value, timeout: Duration) -> Result<Value, virt::error::Error> {
    let secs = i32::try_from(timeout.as_secs().max(1)).unwrap_or(i32::MAX);
    let reply = domain.qemu_agent_command(&request.to_string(), secs, 0)?;
    Ok(serde_json::from_str::<Value>(&reply).ok().and_then(|mut v| v.get_mut("return").map(Value::take)).unwrap_or(Value::Null))
}

/// Whether the agent answers now. A VM that does not run, or whose agent is
/// not (yet) connected, simply does not answer.
pub fn ping(domain: &Domain, timeout: Duration) -> Result<bool, ProviderError> {
    match command(domain, &json!({"execute": "guest-ping"}), timeout) {
        Ok(_) => Ok(true),
        Err(e) => {
            let err = read_error("guest-ping", &e);
            match err.code {
                ErrorCode::NotFound | ErrorCode::Auth => Err(err),
                _ if daemon_unreachable(&e) => Err(err),
                _ => Ok(false),
            }
        }
    }
}

/// Runs `/bin/sh -c <cmd>` in the guest and waits for it up to `timeout`.
pub fn exec(domain: &Domain, cmd: &str, timeout: Duration) -> Result<ExecOutput, ProviderError> {
    let started = Instant::now();
    let pid = start(domain, cmd, timeout)?;
    wait(domain, pid, started, timeout)
}

/// Starts `/bin/sh -c <cmd>` in the guest; its pid, for [`wait`].
fn start(domain: &Domain, cmd: &str, timeout: Duration) -> Result<i64, ProviderError> {
    let request = json!({"execute": "guest-exec", "arguments": {"path": "/bin/sh", "arg": ["-c", cmd], "capture-output": true}});
    let reply = command(domain, &request, timeout).map_err(|e| read_error("guest-exec", &e))?;
    reply.get("pid").and_then(Value::as_i64).ok_or_else(|| {
        ProviderError::new(ErrorCode::Internal, format!("guest-exec: the agent returned no pid ({reply})"))
    })
}

/// Waits for the guest command `pid`, started at `started`, until `timeout`
/// after that: a first status check at once, then checks further and further apart.
fn wait(domain: &Domain, pid: i64, started: Instant, timeout: Duration) -> Result<ExecOutput, ProviderError> {
    let mut poll = FIRST_POLL;
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        let status = command(domain, &json!({"execute": "guest-exec-status", "arguments": {"pid": pid}}), left.max(Duration::from_secs(1)))
            .map_err(|e| read_error("guest-exec-status", &e))?;
        if status.get("exited").and_then(Value::as_bool) == Some(true) {
            return Ok(finished(&status));
        }
        if started.elapsed() >= timeout {
            return Err(ProviderError::new(
                ErrorCode::Unavailable,
                format!("the guest command did not finish within {} s", timeout.as_secs()),
            ));
        }
        std::thread::sleep(poll.min(timeout.saturating_sub(started.elapsed())));
        poll = (poll * 2).min(LONGEST_POLL);
    }
}

fn finished(status: &Value) -> ExecOutput {
    let exit_code = match (status.get("exitcode").and_then(Value::as_i64), status.get("signal").and_then(Value::as_i64)) {
        (_, Some(signal)) => 128 + signal as i32,
        (Some(code), None) => code as i32,
        (None, None) => -1,
    };
    ExecOutput { exit_code, stdout: decoded(status, "out-data"), stderr: decoded(status, "err-data") }
}

fn decoded(status: &Value, key: &str) -> Vec<u8> {
    let mut bytes = status
        .get(key)
        .and_then(Value::as_str)
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .unwrap_or_default();
    bytes.truncate(MAX_OUTPUT_BYTES);
    bytes
}

/// What only a command run in the guest gives: uptime and TCP connections.
const FIGURES_COMMAND: &str = "head -c 64 /proc/uptime; echo; ss -tH 2>/dev/null | wc -l";

/// The in-guest figures of metrics, each `None` when the agent does not
/// deliver it by `deadline`; `None` as a whole when the agent answered no
/// command at all. The root filesystem's usage comes from `guest-get-fsinfo`,
/// asked while the one guest command runs, so that its first status check
/// usually finds it done.
pub fn guest_stats(domain: &Domain, deadline: Instant) -> Option<GuestStats> {
    let started = Instant::now();
    let budget = deadline.saturating_duration_since(started);
    let pid = start(domain, FIGURES_COMMAND, budget).ok();
    let left = deadline.saturating_duration_since(Instant::now());
    let fsinfo = (!left.is_zero()).then(|| command(domain, &json!({"execute": "guest-get-fsinfo"}), left)).and_then(Result::ok);
    if pid.is_none() && fsinfo.is_none() {
        return None;
    }
    let root_used_bytes = fsinfo.and_then(|fs| root_used(&fs));
    let (uptime_seconds, net_connections) = match pid.map(|pid| wait(domain, pid, started, budget)) {
        Some(Ok(out)) if out.exit_code == 0 => uptime_and_connections(&String::from_utf8_lossy(&out.stdout)),
        _ => (None, None),
    };
    Some(GuestStats { root_used_bytes, uptime_seconds, net_connections })
}

fn root_used(fsinfo: &Value) -> Option<u64> {
    fsinfo.as_array()?.iter().find(|fs| fs.get("mountpoint").and_then(Value::as_str) == Some("/"))?.get("used-bytes")?.as_u64()
}

fn uptime_and_connections(text: &str) -> (Option<u64>, Option<u64>) {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let uptime = lines.next().and_then(|l| l.split_whitespace().next()).and_then(|s| s.parse::<f64>().ok()).map(|f| f as u64);
    let connections = lines.next().and_then(|l| l.parse().ok());
    (uptime, connections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_status_decodes_output_and_signals() {
        let out = finished(&json!({"exited": true, "exitcode": 3, "out-data": "aGVsbG8K", "err-data": "b29wcw=="}));
        assert_eq!(out, ExecOutput { exit_code: 3, stdout: b"hello\n".to_vec(), stderr: b"oops".to_vec() });
        assert_eq!(finished(&json!({"exited": true, "signal": 9})).exit_code, 137);
        assert_eq!(finished(&json!({"exited": true})), ExecOutput { exit_code: -1, stdout: vec![], stderr: vec![] });
    }

    #[test]
    fn root_filesystem_usage_is_found_by_mountpoint() {
        let fs = json!([{"mountpoint": "/boot", "used-bytes": 5}, {"mountpoint": "/", "used-bytes": 1048576}]);
        assert_eq!(root_used(&fs), Some(1_048_576));
        assert_eq!(root_used(&json!([{"mountpoint": "/srv"}])), None);
        assert_eq!(root_used(&Value::Null), None);
    }

    #[test]
    fn uptime_and_connection_count_are_parsed() {
        assert_eq!(uptime_and_connections("1234.56 400.1\n7\n"), (Some(1234), Some(7)));
        assert_eq!(uptime_and_connections("garbage\n"), (None, None));
        assert_eq!(uptime_and_connections(""), (None, None));
    }
}
