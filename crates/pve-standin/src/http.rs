//! Just enough HTTP/1.1 for the stand-in: one request at a time on a
//! keep-alive connection, `Content-Length` bodies, form-encoded parameters,
//! and `multipart/form-data` for uploads (a file part's file name becomes
//! the parameter's value, its content the request's upload).

use std::io::{BufRead, BufReader, Read, Write};

pub struct Request {
    pub method: String,
    pub path: String,
    /// Query parameters, then form-encoded body parameters, in order.
    pub params: Vec<(String, String)>,
    pub authorization: Option<String>,
    /// The content of a multipart file part.
    pub upload: Option<Vec<u8>>,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Reads the next request; `Ok(None)` when the client closed the connection.
pub fn read_request<S: Read>(reader: &mut BufReader<S>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "bad request line"));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut length = 0usize;
    let mut authorization = None;
    let mut form_body = false;
    let mut boundary = None;
    let mut head = line.len();
    loop {
        line.clear();
        head += reader.read_line(&mut line)?;
        if head > MAX_HEAD {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "request head too large"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "authorization" => authorization = Some(value.to_string()),
            "content-type" => {
                form_body = value.starts_with("application/x-www-form-urlencoded");
                if value.starts_with("multipart/form-data") {
                    boundary = value.split(';').find_map(|p| p.trim().strip_prefix("boundary=")).map(|b| b.trim_matches('"').to_string());
                }
            }
            _ => {}
        }
    }
    let mut body = vec![0; length.min(MAX_BODY)];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut params = parse_form(query);
    let mut upload = None;
    if form_body {
        params.extend(parse_form(&String::from_utf8_lossy(&body)));
    } else if let Some(boundary) = boundary {
        for part in multipart_parts(&body, &boundary)? {
            if part.file_name.is_some() {
                upload = Some(part.data.clone());
            }
            let value = part.file_name.unwrap_or_else(|| String::from_utf8_lossy(&part.data).into_owned());
            params.push((part.name, value));
        }
    }
    Ok(Some(Request { method, path: path.to_string(), params, authorization, upload }))
}

struct Part {
    name: String,
    file_name: Option<String>,
    data: Vec<u8>,
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// The parts of a `multipart/form-data` body (RFC 7578).
fn multipart_parts(body: &[u8], boundary: &str) -> std::io::Result<Vec<Part>> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body.strip_prefix(delimiter.as_slice()).ok_or_else(|| invalid("multipart body does not start with its boundary"))?;
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or_else(|| invalid("multipart boundary not followed by CRLF"))?;
        let head_end = find(rest, b"\r\n\r\n").ok_or_else(|| invalid("multipart part without a blank line"))?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let after_head = &rest[head_end + 4..];
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(&delimiter);
        let end = find(after_head, &closing).ok_or_else(|| invalid("multipart part without a closing boundary"))?;
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or_else(|| invalid("multipart part without Content-Disposition"))?;
        let field = |key: &str| {
            disposition.split(';').find_map(|p| p.trim().strip_prefix(&format!("{key}=")).map(|v| v.trim_matches('"').to_string()))
        };
        let name = field("name").ok_or_else(|| invalid("multipart part without a name"))?;
        parts.push(Part { name, file_name: field("filename"), data: after_head[..end].to_vec() });
        rest = &after_head[end + closing.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn write_response<W: Write>(out: &mut W, status: u16, reason: &str, body: &str) -> std::io::Result<()> {
    let reason: String = reason.chars().filter(|c| !c.is_control()).collect();
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

pub fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
