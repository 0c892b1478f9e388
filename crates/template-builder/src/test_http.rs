//! A tiny HTTP/1.1 file server on 127.0.0.1 for the download tests: fixed
//! documents by path, 404 otherwise, one request per connection. It stops by
//! itself after a bounded number of requests or seconds.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_REQUESTS: usize = 50;
const LIFETIME: Duration = Duration::from_secs(60);

pub struct TestServer {
    pub base: String,
    hits: Arc<AtomicUsize>,
}

impl TestServer {
    pub fn start(files: HashMap<String, Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        std::thread::spawn(move || {
            let deadline = Instant::now() + LIFETIME;
            let mut served = 0;
            while served < MAX_REQUESTS && Instant::now() < deadline {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                served += 1;
                stream.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(stream);
                let mut request = String::new();
                reader.read_line(&mut request).unwrap_or_default();
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut stream = reader.into_inner();
                let _ = match files.get(&path) {
                    Some(body) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
                            .and_then(|()| stream.write_all(body))
                    }
                    None => stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
                };
            }
        });
        Self { base, hits }
    }

    /// Successful responses so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
