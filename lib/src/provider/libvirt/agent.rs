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

/// The base64 field `key` of an agent reply, at most [`MAX_OUTPUT_BYTES`].
fn decoded(status: &Value, key: &str) -> Vec<u8> {
    let mut bytes = status
        .get(key)
        .and_then(Value::as_str)
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .unwrap_or_default();
    bytes.truncate(MAX_OUTPUT_BYTES);
    bytes
}

/// Files the in-guest figures are read from. Read through the agent's file
/// commands, no process is started in the guest: under TCG a `sh -c` pipeline
/// costs the guest most of a second, a file read a few milliseconds.
const UPTIME_FILE: &str = "/proc/uptime";
const TCP_TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];
/// Bytes asked for in one `guest-file-read`; a TCP table line is 150 bytes.
const READ_CHUNK: usize = 64 * 1024;
/// A file longer than this is not counted (a partial table would undercount).
const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;
/// States `ss -tH` leaves out of its count (listening, closed, time-wait and
/// syn-recv), as `/proc/net/tcp` writes them.
const UNCOUNTED_TCP_STATES: [&str; 4] = ["0A", "07", "06", "03"];

/// The in-guest figures of metrics, each `None` when the agent does not
/// deliver it by `deadline`; `None` as a whole when the agent answered
/// nothing. The root filesystem's usage comes from `guest-get-fsinfo`,
/// uptime and the TCP connections `ss -tH` counts from `/proc`.
pub fn guest_stats(domain: &Domain, deadline: Instant) -> Option<GuestStats> {
    let mut answered = false;
    let mut ask = |request: &Value| {
        let left = deadline.saturating_duration_since(Instant::now());
        let reply = (!left.is_zero()).then(|| command(domain, request, left)).and_then(Result::ok);
        answered |= reply.is_some();
        reply
    };
    let root_used_bytes = ask(&json!({"execute": "guest-get-fsinfo"})).and_then(|fs| root_used(&fs));
    let uptime_seconds = read_file(&mut ask, UPTIME_FILE).and_then(|text| uptime(&text));
    let net_connections = TCP_TABLES.iter().map(|table| read_file(&mut ask, table).map(|text| connections(&text))).sum();
    answered.then_some(GuestStats { root_used_bytes, uptime_seconds, net_connections })
}

/// A guest file's text, read through `ask` (open, reads until its end, close);
/// `None` when any step gets no answer or the file is over [`MAX_FILE_BYTES`].
fn read_file(ask: &mut impl FnMut(&Value) -> Option<Value>, path: &str) -> Option<String> {
    let handle = ask(&json!({"execute": "guest-file-open", "arguments": {"path": path, "mode": "r"}}))?.as_i64()?;
    let mut bytes = Vec::new();
    let complete = loop {
        let Some(chunk) = ask(&json!({"execute": "guest-file-read", "arguments": {"handle": handle, "count": READ_CHUNK}})) else { break false };
        bytes.extend(decoded(&chunk, "buf-b64"));
        if chunk.get("eof").and_then(Value::as_bool) != Some(false) || bytes.len() > MAX_FILE_BYTES {
            break bytes.len() <= MAX_FILE_BYTES;
        }
    };
    // The agent keeps an unclosed handle for good.
    ask(&json!({"execute": "guest-file-close", "arguments": {"handle": handle}}));
    complete.then(|| String::from_utf8_lossy(&bytes).into_owned())
}

fn root_used(fsinfo: &Value) -> Option<u64> {
    fsinfo.as_array()?.iter().find(|fs| fs.get("mountpoint").and_then(Value::as_str) == Some("/"))?.get("used-bytes")?.as_u64()
}

fn uptime(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse::<f64>().ok().map(|f| f as u64)
}

/// The sockets of a `/proc/net/tcp` table that `ss -tH` lists.
fn connections(table: &str) -> u64 {
    let counted = |line: &&str| line.split_whitespace().nth(3).is_some_and(|state| !UNCOUNTED_TCP_STATES.contains(&state));
    table.lines().skip(1).filter(counted).count() as u64
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
    fn uptime_is_parsed() {
        assert_eq!(uptime("1234.56 400.1\n"), Some(1234));
        assert_eq!(uptime("garbage\n"), None);
        assert_eq!(uptime(""), None);
    }

    /// As `ss -tH` counts: established and closing sockets, not the
    /// listening one, the one in TIME-WAIT or the half-open SYN-RECV one.
    #[test]
    fn connections_are_counted_as_ss_counts_them() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0A4D000A:0016 0A4D0001:D2F0 01 00000000:00000000 02:0009F2B5 00000000     0        0 2 4 0 20 4 30 10 -1\n\
   2: 0A4D000A:0016 0A4D0001:D2F2 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0\n\
   3: 0A4D000A:0016 0A4D0001:D2F4 03 00000000:00000000 00:00000000 00000000     0        0 0 1 0\n\
   4: 0A4D000A:9C40 0A4D0001:0050 08 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1\n";
        assert_eq!(connections(table), 2);
        assert_eq!(connections("  sl  local_address\n"), 0);
    }

    /// A file is read to its end in pieces and its handle closed; a step
    /// without an answer, or a file past the cap, gives nothing (and still closes).
    #[test]
    fn files_are_read_to_their_end_and_closed() {
        let piece = |text: &str, eof: bool| json!({"count": text.len(), "buf-b64": base64::engine::general_purpose::STANDARD.encode(text), "eof": eof});
        let run = |replies: Vec<Option<Value>>| {
            let mut replies = replies.into_iter();
            let mut asked = Vec::new();
            let text = read_file(&mut |request: &Value| { asked.push(request["execute"].as_str().unwrap().to_string()); replies.next().flatten() }, "/proc/uptime");
            (text, asked)
        };
        let (text, asked) = run(vec![Some(json!(7)), Some(piece("12.5 ", false)), Some(piece("3.0\n", true)), Some(json!({}))]);
        assert_eq!(text.as_deref(), Some("12.5 3.0\n"));
        assert_eq!(asked, ["guest-file-open", "guest-file-read", "guest-file-read", "guest-file-close"]);
        let (text, asked) = run(vec![Some(json!(7)), None, Some(json!({}))]);
        assert_eq!((text, asked.last().map(String::as_str)), (None, Some("guest-file-close")));
        let (text, asked) = run(vec![None]);
        assert_eq!((text, asked.len()), (None, 1));
        let big = "x".repeat(READ_CHUNK);
        let mut replies = vec![Some(json!(7))];
        replies.extend(std::iter::repeat_with(|| Some(piece(&big, false))).take(MAX_FILE_BYTES / READ_CHUNK + 1));
        replies.push(Some(json!({})));
        let (text, asked) = run(replies);
        assert_eq!((text, asked.last().map(String::as_str)), (None, Some("guest-file-close")));
    }
}
