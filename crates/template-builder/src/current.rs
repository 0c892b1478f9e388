//! Which template new VMs use: the `current` symlink to a version directory, or
//! the single file an upstream (Python) provisioner left, and the atomic switch
//! of that symlink.

use super::error::TemplateError;
use super::manifest::{self, BootMode, BootProfile, Firmware, Template, TemplateManifest};
use std::path::{Path, PathBuf};

pub const CURRENT_LINK: &str = "current";
/// Where upstream's builder put its one template.
pub const LEGACY_IMAGE: &str = "blockhost-base.qcow2";

/// Follows `templates/current`; without it, the legacy image; `None` without either.
pub fn resolve(templates: &Path) -> Result<Option<Template>, TemplateError> {
    let link = templates.join(CURRENT_LINK);
    match std::fs::read_link(&link) {
        Ok(target) => {
            let dir = templates.join(target);
            Template::load(&dir).map(Some).map_err(|e| TemplateError::Corrupt {
                path: link,
                reason: format!("the current template is unusable: {e}"),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => legacy(templates),
        Err(e) => Err(TemplateError::io(link)(e)),
    }
}

/// The name of the version directory `current` points at, if any.
pub fn current_version(templates: &Path) -> Result<Option<String>, TemplateError> {
    let link = templates.join(CURRENT_LINK);
    match std::fs::read_link(&link) {
        Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TemplateError::io(link)(e)),
    }
}

fn legacy(templates: &Path) -> Result<Option<Template>, TemplateError> {
    let image = templates.join(LEGACY_IMAGE);
    let meta = match std::fs::metadata(&image) {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TemplateError::io(image)(e)),
    };
    let built_at = meta.modified().map(chrono::DateTime::<chrono::Utc>::from).unwrap_or_else(|_| chrono::Utc::now());
    Ok(Some(Template {
        dir: templates.to_path_buf(),
        manifest: TemplateManifest {
            version: "blockhost-base".into(),
            source: "legacy".into(),
            suite: "bookworm".into(),
            mirror: None,
            image: LEGACY_IMAGE.into(),
            // Unknown: hashing a multi-GiB image on every lookup is not worth it.
            image_sha256: String::new(),
            boot: BootProfile { mode: BootMode::Disk { firmware: Firmware::Bios }, machine: "q35".into(), cdrom_bus: "sata".into() },
            packages: Vec::new(),
            built_at: manifest::timestamp(&built_at),
            // Never matches a build's digest: the first build replaces it with a versioned template.
            inputs_digest: String::new(),
        },
    }))
}

/// Points `current` at `version` atomically: a symlink under a temporary name,
/// renamed over the old one, then the directory synced.
pub fn switch(templates: &Path, version: &str) -> Result<(), TemplateError> {
    let tmp = templates.join(format!(".{CURRENT_LINK}-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(version, &tmp).map_err(TemplateError::io(&tmp))?;
    std::fs::rename(&tmp, templates.join(CURRENT_LINK)).map_err(TemplateError::io(&tmp))?;
    sync_dir(templates)
}

pub fn sync_dir(dir: &Path) -> Result<(), TemplateError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(TemplateError::io(dir))
}

/// A fresh version directory name: `<suite>-<UTC YYYYMMDDTHHMMSSZ>`, with a
/// `-N` suffix when a build in the same second already took the name.
pub fn new_version_name(templates: &Path, suite: &str, now: &chrono::DateTime<chrono::Utc>) -> String {
    let base = format!("{suite}-{}", now.format("%Y%m%dT%H%M%SZ"));
    let mut name = base.clone();
    let mut n = 1;
    while std::fs::symlink_metadata(templates.join(&name)).is_ok() {
        n += 1;
        name = format!("{base}-{n}");
    }
    name
}

/// Every version directory (a directory holding a manifest), by name.
pub fn version_dirs(templates: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let entries = super::tree::entries(templates)?;
    let mut dirs = Vec::new();
    for entry in entries {
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !hidden && is_dir && entry.path().join(super::manifest::MANIFEST_FILE).is_file() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn switch_replaces_the_link_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        switch(dir.path(), "bookworm-1").unwrap();
        switch(dir.path(), "bookworm-2").unwrap();
        assert_eq!(std::fs::read_link(dir.path().join(CURRENT_LINK)).unwrap(), Path::new("bookworm-2"));
        assert_eq!(current_version(dir.path()).unwrap().as_deref(), Some("bookworm-2"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn version_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 23, 10, 15, 0).unwrap();
        assert_eq!(new_version_name(dir.path(), "bookworm", &at), "bookworm-20261123T101500Z");
        std::fs::create_dir(dir.path().join("bookworm-20261123T101500Z")).unwrap();
        assert_eq!(new_version_name(dir.path(), "bookworm", &at), "bookworm-20261123T101500Z-2");
    }
}
