//! A build from start to switch: one builder at a time, the leftovers of killed
//! builds removed, up-to-date templates kept, the new version made in a
//! staging directory and published with two renames (directory, then the
//! `current` symlink), so a build killed at any point leaves the previous
//! template current and whole.

use super::checksum::sha256_file;
use super::current::{self, new_version_name, switch, sync_dir};
use super::disk::{IMAGE_FILE, INITRD_FILE, KERNEL_FILE};
use super::error::TemplateError;
use super::manifest::{BootProfile, PackageVersion, TemplateManifest, MANIFEST_FILE};
use super::plan::{BuildPlan, Source};
use super::preflight::{self, NEEDED_BYTES};
use super::progress::Steps;
use super::run::BuildLog;
use super::staging::{self, BuildLock};
use super::tree::{make_world_readable, remove_tree};
use super::{cloud_image, debootstrap, TemplateStore};
use crate::host::timestamp;
use crate::provider::{TemplateBuild, TemplateOptions};
use std::path::Path;

/// The log of the latest build, kept after a failure.
const LOG_FILE: &str = ".last-build.log";

pub fn build(store: &TemplateStore, options: &TemplateOptions, progress: &mut dyn FnMut(&str)) -> Result<TemplateBuild, TemplateError> {
    let plan = BuildPlan::resolve(options, &store.packages)?;
    let templates = &store.templates;
    std::fs::create_dir_all(templates).map_err(TemplateError::io(templates))?;
    let _lock = BuildLock::acquire(templates)?;
    for path in staging::sweep(templates)? {
        progress(&format!("Removed the leftovers of an interrupted build: {}", path.display()));
    }
    let recipe = match &plan.source {
        Source::Debootstrap { .. } => debootstrap::recipe_packages(),
        Source::Image(_) => Vec::new(),
    };
    let digest = plan.inputs_digest(&recipe);
    if !options.force {
        match current::resolve(templates) {
            Ok(Some(template)) if template.manifest.inputs_digest == digest => {
                progress(&format!("Template {} is up to date (use --force to rebuild)", template.manifest.version));
                if options.prune {
                    store.prune_locked(progress)?;
                }
                return Ok(TemplateBuild { path: template.image_path(), built: false });
            }
            Ok(Some(template)) => progress(&format!("Template {} is out of date: building a new one", template.manifest.version)),
            Ok(None) => {}
            Err(e) => progress(&format!("Replacing the current template: {e}")),
        }
    }

    let source_steps = match plan.source {
        Source::Debootstrap { .. } => debootstrap::STEPS,
        Source::Image(_) => cloud_image::STEPS,
    };
    let mut steps = Steps::new(source_steps + 2, progress);
    steps.next("Checking prerequisites");
    check_prerequisites(&plan, templates)?;
    let staging = staging::staging_dir(templates);
    remove_tree(&staging)?;
    std::fs::create_dir(&staging).map_err(TemplateError::io(&staging))?;
    let mut log = BuildLog::create(&templates.join(LOG_FILE))?;
    let built = match &plan.source {
        Source::Debootstrap { mirror } => debootstrap::build(&plan.suite, mirror, &plan.debs, &staging, &mut log, &mut steps),
        Source::Image(location) => cloud_image::build(location, &plan, templates, &staging, &mut log, &mut steps),
    };
    let published = built.and_then(|(boot, packages)| {
        steps.next("Publishing the new template");
        publish(templates, &staging, &plan, boot, packages, digest)
    });
    let image = match published {
        Ok(image) => image,
        Err(e) => {
            // Best effort: the next build removes what is left of a dead build anyway.
            let _ = remove_tree(&staging);
            return Err(e);
        }
    };
    steps.detail(&format!("Template {} is now current", image.parent().unwrap_or(templates).display()));
    if options.prune {
        store.prune_locked(steps.sink())?;
    }
    Ok(TemplateBuild { path: image, built: true })
}

fn check_prerequisites(plan: &BuildPlan, templates: &Path) -> Result<(), TemplateError> {
    let search_path = std::env::var_os("PATH").unwrap_or_default();
    match &plan.source {
        Source::Debootstrap { mirror } => {
            preflight::require_root()?;
            preflight::require_tools(debootstrap::TOOLS, &search_path)?;
            preflight::require_free_space(templates, NEEDED_BYTES)?;
            preflight::check_mirror(mirror, &plan.suite)
        }
        Source::Image(_) => {
            preflight::require_tools(cloud_image::TOOLS, &search_path)?;
            preflight::require_free_space(templates, NEEDED_BYTES)
        }
    }
}

/// Writes the manifest, makes everything readable, syncs it, renames the
/// staging directory to its version name and points `current` at it.
/// Returns the published image path.
fn publish(
    templates: &Path,
    staging: &Path,
    plan: &BuildPlan,
    boot: BootProfile,
    packages: Vec<PackageVersion>,
    inputs_digest: String,
) -> Result<std::path::PathBuf, TemplateError> {
    let now = timestamp::now();
    let version = new_version_name(templates, &plan.suite, &now);
    let manifest = TemplateManifest {
        version: version.clone(),
        source: plan.source_label(),
        suite: plan.suite.clone(),
        mirror: plan.mirror().map(String::from),
        image: IMAGE_FILE.into(),
        image_sha256: sha256_file(&staging.join(IMAGE_FILE))?,
        boot,
        packages,
        built_at: timestamp::format(&now),
        inputs_digest,
    };
    let manifest_path = staging.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| TemplateError::Corrupt { path: manifest_path.clone(), reason: e.to_string() })?;
    crate::host::atomic::write_atomic(&manifest_path, &json, 0o644).map_err(TemplateError::io(&manifest_path))?;
    make_world_readable(staging)?;
    for name in [IMAGE_FILE, KERNEL_FILE, INITRD_FILE] {
        let path = staging.join(name);
        if path.exists() {
            std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(TemplateError::io(&path))?;
        }
    }
    sync_dir(staging)?;
    let dir = templates.join(&version);
    std::fs::rename(staging, &dir).map_err(TemplateError::io(&dir))?;
    sync_dir(templates)?;
    switch(templates, &version)?;
    Ok(dir.join(IMAGE_FILE))
}
