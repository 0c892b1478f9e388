//! Client of the BlockHost root agent (`/run/blockhost/root-agent.sock`): one
//! request per connection, each direction a 4-byte big-endian length followed
//! by UTF-8 JSON. Replies carry `ok`; `ok: false` carries `error`.

use super::paths::HostPaths;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

pub const SOCKET_NAME: &str = "root-agent.sock";
/// The daemon refuses larger frames; a reply this large is not a reply.
const MAX_FRAME: u32 = 10 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RootAgentError {
    #[error("root agent unreachable at {0}: {1}")]
    Unreachable(String, String),
    #[error("root agent protocol error: {0}")]
    Protocol(String),
    #[error("root agent refused {0}: {1}")]
    Refused(String, String),
}

pub struct RootAgent {
    socket: PathBuf,
    timeout: Duration,
}

impl RootAgent {
    pub fn new(paths: &HostPaths, timeout: Duration) -> Self {
        Self { socket: paths.run_dir().join(SOCKET_NAME), timeout }
    }

    /// Sends `{"action", "params"}` and returns the reply of a successful call.
    pub fn call(&self, action: &str, params: Value) -> Result<Value, RootAgentError> {
        let shown = self.socket.display().to_string();
        let unreachable = |e: std::io::Error| RootAgentError::Unreachable(shown.clone(), e.to_string());
        let mut stream = UnixStream::connect(&self.socket).map_err(unreachable)?;
        stream.set_read_timeout(Some(self.timeout)).map_err(unreachable)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(unreachable)?;
        let body = serde_json::to_vec(&json!({ "action": action, "params": params })).map_err(|e| RootAgentError::Protocol(e.to_string()))?;
        let len = u32::try_from(body.len()).map_err(|_| RootAgentError::Protocol("request too large".into()))?;
        let io = |e: std::io::Error| RootAgentError::Protocol(format!("{action}: {e}"));
        stream.write_all(&len.to_be_bytes()).map_err(io)?;
        stream.write_all(&body).map_err(io)?;
        let mut header = [0u8; 4];
        stream.read_exact(&mut header).map_err(io)?;
        let len = u32::from_be_bytes(header);
        if len > MAX_FRAME {
            return Err(RootAgentError::Protocol(format!("{action}: reply of {len} bytes")));
        }
        let mut reply = vec![0u8; len as usize];
        stream.read_exact(&mut reply).map_err(io)?;
        let reply: Value = serde_json::from_slice(&reply).map_err(|e| RootAgentError::Protocol(format!("{action}: {e}")))?;
        match reply.get("ok").and_then(Value::as_bool) {
            Some(true) => Ok(reply),
            Some(false) => {
                let error = reply.get("error").and_then(Value::as_str).unwrap_or("no error message").to_string();
                Err(RootAgentError::Refused(action.to_string(), error))
            }
            None => Err(RootAgentError::Protocol(format!("{action}: reply without \"ok\""))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::thread::JoinHandle;

    /// A one-shot stand-in daemon: answers one request with `reply`, returning
    /// the request it read.
    fn serve(paths: &HostPaths, reply: Vec<u8>) -> JoinHandle<Value> {
        std::fs::create_dir_all(paths.run_dir()).unwrap();
        let listener = UnixListener::bind(paths.run_dir().join(SOCKET_NAME)).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut header = [0u8; 4];
            s.read_exact(&mut header).unwrap();
            let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
            s.read_exact(&mut body).unwrap();
            s.write_all(&(reply.len() as u32).to_be_bytes()).unwrap();
            s.write_all(&reply).unwrap();
            serde_json::from_slice(&body).unwrap()
        })
    }

    fn agent(dir: &std::path::Path) -> (HostPaths, RootAgent) {
        let paths = HostPaths::with_root(dir);
        let agent = RootAgent::new(&paths, Duration::from_secs(5));
        (paths, agent)
    }

    #[test]
    fn a_call_sends_one_framed_request_and_returns_the_reply() {
        let dir = tempfile::tempdir().unwrap();
        let (paths, agent) = agent(dir.path());
        let server = serve(&paths, br#"{"ok": true, "output": "done"}"#.to_vec());
        let reply = agent.call("ip6-route-add", json!({"address": "2001:db8::5/128", "dev": "br0"})).unwrap();
        assert_eq!(reply, json!({"ok": true, "output": "done"}));
        let request = server.join().unwrap();
        assert_eq!(request, json!({"action": "ip6-route-add", "params": {"address": "2001:db8::5/128", "dev": "br0"}}));
    }

    #[test]
    fn refusals_carry_the_daemon_error() {
        let dir = tempfile::tempdir().unwrap();
        let (paths, agent) = agent(dir.path());
        let server = serve(&paths, br#"{"ok": false, "error": "Unknown action: x"}"#.to_vec());
        assert_eq!(agent.call("x", json!({})), Err(RootAgentError::Refused("x".into(), "Unknown action: x".into())));
        server.join().unwrap();
    }

    #[test]
    fn garbage_and_absence_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (paths, agent) = agent(dir.path());
        assert!(matches!(agent.call("x", json!({})), Err(RootAgentError::Unreachable(..))));
        let server = serve(&paths, b"not json".to_vec());
        assert!(matches!(agent.call("x", json!({})), Err(RootAgentError::Protocol(_))));
        server.join().unwrap();
        std::fs::remove_file(paths.run_dir().join(SOCKET_NAME)).unwrap();
        let server = serve(&paths, br#"{"result": 1}"#.to_vec());
        assert!(matches!(agent.call("x", json!({})), Err(RootAgentError::Protocol(_))));
        server.join().unwrap();
    }
}
