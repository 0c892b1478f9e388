//! The `image:PATH-or-URL` source: a cloud image (downloaded into the cache
//! when it is a URL), verified, converted to qcow2 and customised by one boot
//! of a throw-away VM. Generic cloud images boot from their own disk and have
//! an AHCI driver: disk boot, `q35`, SATA cdrom.

use super::builder_seed::{debs_iso, packages_from_log, seed_iso};
use super::builder_vm::BuilderVm;
use super::checksum::Checksum;
use super::disk::{self, IMAGE_FILE};
use super::download;
use super::error::TemplateError;
use super::manifest::{BootMode, BootProfile, Firmware, PackageVersion};
use super::plan::{BuildPlan, ExtraDeb, ImageLocation};
use super::preflight::Tool;
use super::progress::Steps;
use super::run::{captured, BuildLog};
use super::staging::CACHE_DIR;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const TOOLS: &[Tool] = &[("qemu-img", "qemu-utils"), ("qemu-system-x86_64", "qemu-system-x86")];
pub const STEPS: usize = 3;
/// Room for the extra packages and cloud-init's first boot.
const MIN_VIRTUAL_SIZE: u64 = 4 << 30;
const DOWNLOAD_PROGRESS_EVERY: Duration = Duration::from_secs(2);

pub fn build(
    location: &ImageLocation,
    plan: &BuildPlan,
    templates: &Path,
    staging: &Path,
    log: &mut BuildLog,
    steps: &mut Steps,
) -> Result<(BootProfile, Vec<PackageVersion>), TemplateError> {
    steps.next("Fetching the cloud image");
    let source = fetch(location, plan.checksum.as_ref(), &templates.join(CACHE_DIR), steps)?;

    steps.next("Converting the image to qcow2");
    let image = staging.join(IMAGE_FILE);
    convert(&source, &image, log)?;

    steps.next("Customising the image in a throw-away VM (several minutes without KVM)");
    let profile = BootProfile { mode: BootMode::Disk { firmware: Firmware::Bios }, machine: "q35".into(), cdrom_bus: "sata".into() };
    let packages = customise(&image, staging, &profile, &plan.debs, log)?;
    Ok((profile, packages))
}

/// The local file to convert: the given path, or the verified download.
fn fetch(location: &ImageLocation, checksum: Option<&Checksum>, cache: &Path, steps: &mut Steps) -> Result<PathBuf, TemplateError> {
    match location {
        ImageLocation::File(path) => {
            match checksum {
                Some(checksum) => checksum.verify(path)?,
                None => steps.detail("      no --checksum given: the local image is used unverified"),
            }
            Ok(path.clone())
        }
        ImageLocation::Url(url) => fetch_url(url, checksum, cache, steps),
    }
}

fn fetch_url(url: &str, checksum: Option<&Checksum>, cache: &Path, steps: &mut Steps) -> Result<PathBuf, TemplateError> {
    let name = file_name_of(url)?;
    std::fs::create_dir_all(cache).map_err(TemplateError::io(cache))?;
    let cached = cache.join(&name);
    let expected = match checksum {
        Some(checksum) => Some(checksum.clone()),
        None => published_checksum(url, &name, steps)?,
    };
    if let Some(expected) = &expected {
        if cached.is_file() && expected.verify(&cached).is_ok() {
            steps.detail(&format!("      using the cached {}", cached.display()));
            return Ok(cached);
        }
    }
    steps.detail(&format!("      downloading {url}"));
    download::fetch_to(url, &cached, DOWNLOAD_PROGRESS_EVERY, steps.sink())?;
    match &expected {
        Some(expected) => {
            if let Err(e) = expected.verify(&cached) {
                let _ = std::fs::remove_file(&cached);
                return Err(e);
            }
        }
        None => steps.detail("      no checksum given or published next to the image: downloaded unverified"),
    }
    Ok(cached)
}

/// The image's entry in `SHA512SUMS` or `SHA256SUMS` beside it, when published.
fn published_checksum(url: &str, name: &str, steps: &mut Steps) -> Result<Option<Checksum>, TemplateError> {
    let base = &url[..url.len() - name.len()];
    for listing in ["SHA512SUMS", "SHA256SUMS"] {
        let Some(text) = download::fetch_text(&format!("{base}{listing}"))? else { continue };
        if let Some(checksum) = Checksum::from_listing(&text, name) {
            steps.detail(&format!("      verifying against {base}{listing}"));
            return Ok(Some(checksum));
        }
    }
    Ok(None)
}

/// The last path segment of a URL (query and fragment dropped); it names the cache file.
fn file_name_of(url: &str) -> Result<String, TemplateError> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let name = path.rsplit('/').next().unwrap_or_default();
    let after_host = path.splitn(4, '/').nth(3).is_some_and(|p| !p.is_empty());
    if !after_host || name.is_empty() || name.starts_with('.') {
        return Err(TemplateError::BadSource(format!("image:{url} (the URL names no file)")));
    }
    Ok(name.to_string())
}

/// Converts with the probed format given explicitly, refusing an image that
/// names a backing file (it could point anywhere on the build host), and grows
/// it to at least 4 GiB.
fn convert(source: &Path, image: &Path, log: &mut BuildLog) -> Result<(), TemplateError> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["info", "--output=json"]).arg(source);
    let info: serde_json::Value = serde_json::from_str(&captured(cmd, "qemu-img info")?)
        .map_err(|e| TemplateError::Corrupt { path: source.to_path_buf(), reason: format!("qemu-img info: {e}") })?;
    if info.get("backing-filename").is_some() {
        return Err(TemplateError::Corrupt { path: source.to_path_buf(), reason: "the image has a backing file".into() });
    }
    let format = info["format"].as_str().unwrap_or_default();
    if !["qcow2", "raw", "vmdk", "vpc", "vhdx"].contains(&format) {
        return Err(TemplateError::Corrupt { path: source.to_path_buf(), reason: format!("unsupported image format {format:?}") });
    }
    disk::to_qcow2(source, Some(format), image, log)?;
    disk::grow_to(image, MIN_VIRTUAL_SIZE, log)
}

/// Boots the builder VM on `image` once; returns the packages it reported.
/// Its serial console output goes into the build log.
pub fn customise(
    image: &Path,
    boot_dir: &Path,
    profile: &BootProfile,
    debs: &[ExtraDeb],
    log: &mut BuildLog,
) -> Result<Vec<PackageVersion>, TemplateError> {
    let work = image.with_file_name(".builder");
    std::fs::create_dir_all(&work).map_err(TemplateError::io(&work))?;
    let seed = work.join("seed.iso");
    let instance = format!("blockhost-template-builder-{}", std::process::id());
    std::fs::write(&seed, seed_iso(&instance)?).map_err(TemplateError::io(&seed))?;
    let debs_path = work.join("debs.iso");
    let has_debs = match debs_iso(debs)? {
        Some(bytes) => {
            std::fs::write(&debs_path, bytes).map_err(TemplateError::io(&debs_path))?;
            true
        }
        None => false,
    };
    let serial_log = work.join("serial.log");
    let vm = BuilderVm {
        disk: image,
        boot_dir,
        profile,
        seed_iso: &seed,
        debs_iso: has_debs.then_some(debs_path.as_path()),
        serial_log: &serial_log,
    };
    let outcome = vm.run();
    let serial = std::fs::read(&serial_log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    for line in serial.lines() {
        log.note(&format!("serial: {}", line.trim_end_matches('\r')));
    }
    outcome.map_err(|e| TemplateError::step("customising the image", format!("{e} (log: {})", log.path().display())))?;
    super::tree::remove_tree(&work)?;
    Ok(packages_from_log(&serial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names_come_from_the_url() {
        assert_eq!(file_name_of("https://h/images/d-12.qcow2?x=1#f").unwrap(), "d-12.qcow2");
        for bad in ["https://h", "https://h/", "https://h/dir/", "http://h/.hidden"] {
            assert!(matches!(file_name_of(bad), Err(TemplateError::BadSource(_))), "{bad}");
        }
    }
}
