//! A blocking client of the PVE REST API (`/api2/json`): token auth, verified
//! TLS, connect and request timeouts, answers unwrapped from `{"data": ...}`,
//! failures mapped through the error table, and asynchronous calls followed
//! to their task's end.

use super::errors::{answer_error, classify, transport_error, Sent};
use super::tls::{show_fingerprint, Observed, TlsConnector, Trust};
use super::token::ApiToken;
use crate::provider::{ErrorCode, ProviderError};
use serde_json::Value;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{Connector, TcpConnector};

/// Where the API is and how long anything may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `https://host:8006`
    pub url: String,
    pub trust: Trust,
    pub connect_timeout: Duration,
    /// Bounds one request from sending to the whole answer.
    pub request_timeout: Duration,
    /// Bounds following one task to its end.
    pub task_timeout: Duration,
}

pub struct Client {
    agent: ureq::Agent,
    api: String,
    authorization: String,
    observed: Observed,
    connection: Connection,
}

/// Longest pause between two polls of a running task.
const MAX_POLL: Duration = Duration::from_secs(1);

/// The slowest link an upload is given time for, beyond the request bound.
const MIN_UPLOAD_BYTES_PER_SECOND: u64 = 1 << 20;

/// A file to upload: `len` bytes from `reader`, stored as `name` with content
/// type `content` (`iso`, `import`); with its SHA-256, the API verifies it.
pub struct Upload<'a> {
    pub name: &'a str,
    pub content: &'a str,
    pub reader: &'a mut dyn Read,
    pub len: u64,
    pub sha256: Option<&'a str>,
}

impl Client {
    pub fn new(connection: Connection, token: &ApiToken) -> Result<Self, ProviderError> {
        let observed: Observed = Arc::new(Mutex::new(None));
        let tls = TlsConnector::new(&connection.trust, observed.clone()).map_err(|e| ProviderError::new(ErrorCode::InvalidSpec, format!("TLS setup: {e}")))?;
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(connection.connect_timeout))
            .timeout_global(Some(connection.request_timeout))
            .http_status_as_error(false)
            .user_agent(concat!("blockhost-provisioner/", env!("CARGO_PKG_VERSION")))
            .build();
        let agent = ureq::Agent::with_parts(config, TcpConnector::default().chain(tls), DefaultResolver::default());
        let api = format!("{}/api2/json", connection.url.trim_end_matches('/'));
        Ok(Self { agent, api, authorization: token.header(), observed, connection })
    }

    pub fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, ProviderError> {
        self.request("GET", path, params)
    }

    pub fn post(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, ProviderError> {
        self.request("POST", path, params)
    }

    pub fn put(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, ProviderError> {
        self.request("PUT", path, params)
    }

    pub fn delete(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, ProviderError> {
        self.request("DELETE", path, params)
    }

    /// A mutation that answers with a task's UPID, followed to the task's end.
    pub fn run_task(&self, method: &str, path: &str, params: &[(&str, &str)]) -> Result<(), ProviderError> {
        let answer = self.request(method, path, params)?;
        match answer.as_str() {
            Some(upid) => self.wait_task(upid),
            // Some calls (POST config with nothing to do) start no task.
            None if answer.is_null() => Ok(()),
            None => Err(ProviderError::new(ErrorCode::Internal, format!("{method} {path}: expected a task id, got {answer}"))),
        }
    }

    /// Polls the task until it stopped; `OK` (or `WARNINGS: n`) is success.
    /// A task still running at the bound, or one that can no longer be
    /// followed, is `Ambiguous`: it may yet do what it was started for.
    pub fn wait_task(&self, upid: &str) -> Result<(), ProviderError> {
        let node = upid.split(':').nth(1).filter(|n| !n.is_empty()).ok_or_else(|| ProviderError::new(ErrorCode::Internal, format!("not a task id: {upid}")))?;
        let path = format!("/nodes/{}/tasks/{}/status", segment(node), segment(upid));
        let deadline = Instant::now() + self.connection.task_timeout;
        let mut pause = Duration::from_millis(50);
        loop {
            let status = self.get(&path, &[]).map_err(|e| ProviderError::new(ErrorCode::Ambiguous, format!("task {upid}: cannot follow it: {}", e.message)))?;
            if status["status"] == "stopped" {
                let exit = status["exitstatus"].as_str().unwrap_or("");
                if exit == "OK" || exit.starts_with("WARNINGS:") {
                    return Ok(());
                }
                return Err(ProviderError::new(classify(500, exit, Sent::Read), format!("task {upid} failed: {exit}")));
            }
            let now = Instant::now();
            if now >= deadline {
                let secs = self.connection.task_timeout.as_secs_f64();
                return Err(ProviderError::new(ErrorCode::Ambiguous, format!("task {upid} still running after {secs} s")));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    fn request(&self, method: &str, path: &str, params: &[(&str, &str)]) -> Result<Value, ProviderError> {
        let what = format!("{method} {path}");
        let sent = if method == "GET" { Sent::Read } else { Sent::Mutation };
        let url = format!("{}{path}", self.api);
        let pairs = params.iter().copied();
        let auth = self.authorization.as_str();
        let result = match method {
            "GET" => self.agent.get(&url).header("Authorization", auth).query_pairs(pairs).call(),
            "DELETE" => self.agent.delete(&url).header("Authorization", auth).query_pairs(pairs).call(),
            "POST" => self.agent.post(&url).header("Authorization", auth).send_form(pairs),
            "PUT" => self.agent.put(&url).header("Authorization", auth).send_form(pairs),
            _ => return Err(ProviderError::new(ErrorCode::Internal, format!("{what}: not an API method"))),
        };
        self.answer(&what, sent, result)
    }

    /// Uploads a file to a node's storage, multipart as the API wants it,
    /// streamed, and followed to its task's end. The bound on the request
    /// grows with the file's size.
    pub fn upload(&self, node: &str, storage: &str, file: Upload) -> Result<(), ProviderError> {
        let path = format!("/nodes/{}/storage/{}/upload", segment(node), segment(storage));
        let what = format!("POST {path}");
        let boundary = random_boundary();
        let field = |name: &str, value: &str| format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n");
        let mut head = field("content", file.content);
        if let Some(sha256) = file.sha256 {
            head += &field("checksum-algorithm", "sha256");
            head += &field("checksum", sha256);
        }
        head += &format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            file.name
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let length = head.len() as u64 + file.len + tail.len() as u64;
        let mut body = head.as_bytes().chain(file.reader.take(file.len)).chain(tail.as_bytes());
        let timeout = self.connection.request_timeout + Duration::from_secs(file.len / MIN_UPLOAD_BYTES_PER_SECOND);
        let result = self
            .agent
            .post(format!("{}{path}", self.api))
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Authorization", self.authorization.as_str())
            .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
            .header("Content-Length", length.to_string())
            .send(ureq::SendBody::from_reader(&mut body));
        let answer = self.answer(&what, Sent::Mutation, result)?;
        let upid = answer.as_str().ok_or_else(|| ProviderError::new(ErrorCode::Internal, format!("{what}: expected a task id, got {answer}")))?;
        self.wait_task(upid)
    }

    /// The `data` of an answer, or the error it stands for.
    fn answer(&self, what: &str, sent: Sent, result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value, ProviderError> {
        let mut response = result.map_err(|e| self.tls_refusal().unwrap_or_else(|| transport_error(what, &e, sent)))?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().map_err(|e| transport_error(what, &e, sent))?;
        let doc: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if status == 200 {
            return Ok(doc.get("data").cloned().unwrap_or(Value::Null));
        }
        Err(answer_error(what, status, &error_message(&doc, status), sent))
    }

    /// The actionable line for a certificate the verifier refused.
    fn tls_refusal(&self) -> Option<ProviderError> {
        let shown = self.observed.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        let url = &self.connection.url;
        let message = match &self.connection.trust {
            Trust::Fingerprint(pin) => format!(
                "{url}: the API's TLS certificate has SHA-256 fingerprint {shown}, not the pinned {}; if the certificate was replaced on purpose, set proxmox.tls_fingerprint to the new one (`pvenode cert info` shows it)",
                show_fingerprint(pin)
            ),
            Trust::Ca(_) => format!(
                "{url}: the API's TLS certificate (SHA-256 fingerprint {shown}) is not signed by the CA in proxmox.ca_file for this host name; fix proxmox.ca_file or proxmox.url, or pin the certificate with proxmox.tls_fingerprint"
            ),
        };
        Some(ProviderError::new(ErrorCode::Auth, message))
    }
}

/// PVE's `message`, with the per-parameter `errors` of a 400 appended.
fn error_message(doc: &Value, status: u16) -> String {
    let mut message = doc["message"].as_str().map(str::trim).filter(|m| !m.is_empty()).map_or_else(|| format!("HTTP {status}"), str::to_string);
    if let Some(errors) = doc["errors"].as_object() {
        let listed: Vec<String> = errors.iter().map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default().trim())).collect();
        message = format!("{message} ({})", listed.join("; "));
    }
    message
}

/// A multipart boundary with 128 random bits: a file streamed through cannot
/// be scanned for it first, and a chance collision is out of reach.
fn random_boundary() -> String {
    let word = || RandomState::new().build_hasher().finish();
    format!("blockhost-upload-{:016x}{:016x}", word(), word())
}

/// A value of an answer as the API means it (`2`, `enabled=1`; PVE sends
/// booleans as 0 and 1), as text; absent is empty.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A path segment, percent-encoded (UPIDs carry `:`, `@` and `!`).
pub fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
