//! HTTP(S) fetches: a cloud image into the cache with throttled percent
//! progress, and small text files (checksum listings).

use super::error::TemplateError;
use super::progress::Throttle;
use super::staging::PARTIAL_SUFFIX;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

/// A blocking client: `timeout` bounds connecting and each read, never a whole
/// (possibly large) body. TLS is the system's OpenSSL with the system's trusted
/// certificates (/etc/ssl/certs, where an operator adds a proxy's CA).
pub fn agent(timeout: Duration) -> ureq::Agent {
    let tls = TlsConfig::builder().provider(TlsProvider::NativeTls).root_certs(RootCerts::PlatformVerifier).build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_per_read(Some(timeout))
        .user_agent(concat!("blockhost-build-template/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

const TIMEOUT: Duration = Duration::from_secs(60);
const MAX_LISTING: u64 = 1 << 20;

/// Downloads `url` to `dest` through `<dest>.part-<pid>`, renamed into place
/// once complete. Progress: `prefix` plus a percentage (or MiB when the size is
/// unknown), at most one line per `every`.
pub fn fetch_to(url: &str, dest: &Path, every: Duration, progress: &mut dyn FnMut(&str)) -> Result<u64, TemplateError> {
    let failed = |reason: String| TemplateError::Download { url: url.to_string(), reason };
    let mut response = agent(TIMEOUT).get(url).call().map_err(|e| failed(e.to_string()))?;
    let total = response.body().content_length();
    let part = dest.with_file_name(format!(
        "{}{PARTIAL_SUFFIX}{}",
        dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut out = std::fs::File::create(&part).map_err(TemplateError::io(&part))?;
        let mut reader = response.body_mut().as_reader();
        let mut throttle = Throttle::new(every);
        let mut buf = vec![0u8; 1 << 16];
        let mut done: u64 = 0;
        loop {
            let n = reader.read(&mut buf).map_err(|e| failed(e.to_string()))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(TemplateError::io(&part))?;
            done += n as u64;
            if throttle.ready() {
                progress(&progress_line(done, total));
            }
        }
        if let Some(total) = total.filter(|t| *t != done) {
            return Err(failed(format!("connection closed after {done} of {total} bytes")));
        }
        out.sync_all().map_err(TemplateError::io(&part))?;
        progress(&progress_line(done, total));
        std::fs::rename(&part, dest).map_err(TemplateError::io(dest))?;
        Ok(done)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn progress_line(done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) if total > 0 => format!("      downloaded {}% ({} of {} MiB)", done * 100 / total, done >> 20, total >> 20),
        _ => format!("      downloaded {} MiB", done >> 20),
    }
}

/// A small text document, or `None` when the server does not have it.
pub fn fetch_text(url: &str) -> Result<Option<String>, TemplateError> {
    let failed = |reason: String| TemplateError::Download { url: url.to_string(), reason };
    match agent(TIMEOUT).get(url).call() {
        Ok(mut response) => {
            let text = response.body_mut().with_config().limit(MAX_LISTING).read_to_string().map_err(|e| failed(e.to_string()))?;
            Ok(Some(text))
        }
        Err(ureq::Error::StatusCode(404 | 403 | 410)) => Ok(None),
        Err(e) => Err(failed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines() {
        assert_eq!(progress_line(3 << 20, Some(12 << 20)), "      downloaded 25% (3 of 12 MiB)");
        assert_eq!(progress_line(5 << 20, None), "      downloaded 5 MiB");
    }
}
