//! First-boot step markers: `<state_dir>/.step-<name>`.

use std::path::{Path, PathBuf};

pub fn marker_path(state_dir: &Path, step: &str) -> PathBuf {
    state_dir.join(format!(".step-{step}"))
}

pub fn is_done(state_dir: &Path, step: &str) -> bool {
    marker_path(state_dir, step).is_file()
}

/// Marks a step done; idempotent.
pub fn mark_done(state_dir: &Path, step: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    std::fs::OpenOptions::new().create(true).append(true).open(marker_path(state_dir, step)).map(drop)
}

/// Runs `work` once: skipped when the marker exists, marked only on success.
pub fn run_once<E>(state_dir: &Path, step: &str, work: impl FnOnce() -> Result<(), E>) -> Result<bool, E>
where
    E: From<std::io::Error>,
{
    if is_done(state_dir, step) {
        return Ok(false);
    }
    work()?;
    mark_done(state_dir, step)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_once_and_only_marks_success() {
        let dir = tempfile::tempdir().unwrap();
        let failed: Result<bool, std::io::Error> = run_once(dir.path(), "x", || Err(std::io::Error::other("boom")));
        assert!(failed.is_err());
        assert!(!is_done(dir.path(), "x"));
        let mut runs = 0;
        for _ in 0..2 {
            run_once::<std::io::Error>(dir.path(), "x", || {
                runs += 1;
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(runs, 1);
        assert!(dir.path().join(".step-x").is_file());
    }
}
