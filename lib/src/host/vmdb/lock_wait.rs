//! Waiting for `<db_file>.lock`: bounded, told and interruptible. Another
//! writer holds it only for one read-modify-write; a holder that keeps it is
//! named on stderr after a few seconds, and at the bound the verb fails rather
//! than keep the engine waiting.

use super::DbError;
use std::fs::{File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// db.yaml `db_lock_timeout_seconds` when absent.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// When the holder is named (or at half the bound, if that is sooner).
const NOTICE_AFTER: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct LockWait {
    pub timeout: Duration,
    /// A signal number set by the binary's signal handler: stop waiting.
    pub interrupt: Arc<AtomicI32>,
    /// Where the line naming the holder goes (stderr in the binaries).
    pub notice: fn(&str),
}

impl Default for LockWait {
    fn default() -> Self {
        Self { timeout: DEFAULT_TIMEOUT, interrupt: Arc::default(), notice: |_| {} }
    }
}

impl LockWait {
    /// Takes the exclusive lock on `file` (the lock file at `path`).
    pub(super) fn lock(&self, file: &File, path: &Path) -> Result<(), DbError> {
        let started = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(()),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(DbError::Io(path.to_path_buf(), e)),
            }
            match self.interrupt.load(Ordering::SeqCst) {
                0 => {}
                signal => return Err(DbError::Interrupted(signal)),
            }
            let waited = started.elapsed();
            if waited >= self.timeout {
                return Err(DbError::LockTimeout(path.to_path_buf(), self.timeout.as_secs_f64(), holder(path)));
            }
            if !told && waited >= NOTICE_AFTER.min(self.timeout / 2) {
                (self.notice)(&format!("Waiting for the VM database lock {}, held by {}", path.display(), holder(path)));
                told = true;
            }
            std::thread::sleep(POLL.min(self.timeout - waited));
        }
    }
}

/// Who holds the flock on `path`, from `/proc/locks`: `PID n (command)` when
/// it can be read, else `another process`.
fn holder(path: &Path) -> String {
    let Ok(meta) = std::fs::metadata(path) else { return "another process".into() };
    let device = format!("{:02x}:{:02x}:{}", libc::major(meta.dev()), libc::minor(meta.dev()), meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let pid = locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`; waiters have `->` after the id.
        (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&device.as_str())).then(|| fields.get(4)?.parse::<u32>().ok())?
    });
    match pid {
        Some(pid) => match crate::host::process::command_line(pid) {
            Some(command) => format!("PID {pid} ({command})"),
            None => format!("PID {pid}"),
        },
        None => "another process".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::atomic::open_lock_file;

    const HOLD: &str = "import fcntl, sys, time\nf = open(sys.argv[1])\nfcntl.flock(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(30)";

    /// A Python process holding the lock, as blockhost-common's writers do.
    fn held(dir: &Path) -> (std::process::Child, std::path::PathBuf) {
        use std::io::BufRead;
        let path = dir.join("vms.json.lock");
        open_lock_file(&path).unwrap();
        let mut child = std::process::Command::new("python3")
            .args(["-c", HOLD])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "locked\n");
        (child, path)
    }

    #[test]
    fn a_held_lock_is_waited_for_within_the_bound_and_its_holder_named() {
        if !testkit::require(testkit::on_path("python3"), "a Python writer holds the lock") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (mut child, path) = held(dir.path());
        let file = open_lock_file(&path).unwrap();
        static NOTICES: std::sync::Mutex<Vec<(Instant, String)>> = std::sync::Mutex::new(Vec::new());
        let notice: fn(&str) = |line| NOTICES.lock().unwrap().push((Instant::now(), line.to_string()));
        let wait = LockWait { timeout: Duration::from_millis(400), notice, ..LockWait::default() };
        let started = Instant::now();
        let err = wait.lock(&file, &path).unwrap_err();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(400) && waited < Duration::from_secs(3), "waited {waited:?}");
        let notices = NOTICES.lock().unwrap().clone();
        assert_eq!(notices.len(), 1, "the holder is named once: {notices:?}");
        assert!(notices[0].0 - started >= Duration::from_millis(200), "not before half the bound");
        let notices: Vec<String> = notices.into_iter().map(|(_, line)| line).collect();
        assert!(notices[0].starts_with(&format!("Waiting for the VM database lock {}, held by PID {} (", path.display(), child.id())), "{notices:?}");
        let message = err.to_string();
        let (named, rest) = message.split_once(") and was not released within 0.4 s (").expect("bound and holder");
        assert!(named.starts_with(&format!("{}: the VM database is locked by PID {} (", path.display(), child.id())), "{message}");
        assert!(named.contains("fcntl.flock(f, fcntl.LOCK_EX)") && rest.contains("BLOCKHOST_DB_LOCK_TIMEOUT"), "{message}");
        let interrupt = Arc::new(AtomicI32::new(15));
        let wait = LockWait { interrupt, ..LockWait::default() };
        assert!(matches!(wait.lock(&file, &path), Err(DbError::Interrupted(15))));
        child.kill().unwrap();
        child.wait().unwrap();
        LockWait::default().lock(&file, &path).unwrap();
    }
}
