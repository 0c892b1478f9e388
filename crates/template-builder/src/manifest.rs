//! The manifest of one template version (`template.json` in its directory) and
//! the boot profile a domain definition is derived from.

use super::error::TemplateError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "template.json";

/// `YYYY-MM-DDTHH:MM:SS+00:00`, a form every reader of the VM database's
/// timestamps accepts.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// How a VM built on this template boots, and which buses its kernel can see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootProfile {
    pub mode: BootMode,
    /// QEMU machine type: `pc` (i440fx, IDE) or `q35` (AHCI).
    pub machine: String,
    /// Bus of the seed cdrom: `ide`, `sata` or `scsi` (virtio-scsi).
    pub cdrom_bus: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BootMode {
    /// Direct kernel boot; file names are relative to the template directory.
    DirectKernel { kernel: String, initrd: String, cmdline: String },
    /// Boot from the disk's own boot loader.
    Disk { firmware: Firmware },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Bios,
    Uefi,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageVersion {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateManifest {
    /// The directory name, e.g. `bookworm-20261123T101500Z`.
    pub version: String,
    /// `debootstrap`, `image:<path-or-url>` or `legacy`.
    pub source: String,
    pub suite: String,
    pub mirror: Option<String>,
    /// Image file name in the template directory (qcow2).
    pub image: String,
    /// SHA-256 (hex) of the image file.
    pub image_sha256: String,
    pub boot: BootProfile,
    pub packages: Vec<PackageVersion>,
    /// When the build was published, see [`timestamp`].
    pub built_at: String,
    /// Digest of every build input (suite, mirror, package list, extra .debs);
    /// a build with the same inputs is up to date.
    pub inputs_digest: String,
}

/// A template on disk: its directory and manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub dir: PathBuf,
    pub manifest: TemplateManifest,
}

impl Template {
    /// Reads `template.json` of the version directory `dir`.
    pub fn load(dir: &Path) -> Result<Self, TemplateError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(TemplateError::io(&path))?;
        let manifest = serde_json::from_str(&text)
            .map_err(|e| TemplateError::Corrupt { path: path.clone(), reason: format!("bad template manifest: {e}") })?;
        Ok(Self { dir: dir.to_path_buf(), manifest })
    }

    pub fn image_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.image)
    }

    /// A file of the template (kernel, initrd) by its manifest name.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn contains(&self, path: &Path) -> bool {
        path.starts_with(&self.dir)
    }
}
