//! A build from start to switch: one builder at a time, the leftovers of killed
//! builds removed, up-to-date templates kept, the new version made in a
//! staging directory and published with two renames (directory, then the
//! `current` symlink), so a build killed at any point leaves the previous
//! template current and whole.

use super::checksum::sha256_file;
use super::current::{self, new_version_name, switch, sync_dir};
use super::disk::IMAGE_FILE;
use super::error::TemplateError;
use super::manifest::{self, BootProfile, PackageVersion, TemplateManifest, MANIFEST_FILE};
use super::plan::{BuildPlan, Source};
use super::preflight::{self, NEEDED_BYTES};
use super::progress::Steps;
use super::run::BuildLog;
use super::staging::{self, BuildLock};
use super::tree::{make_world_readable, remove_tree};
use super::{cloud_image, debootstrap, BuildOptions, BuildOutcome, TemplateStore};
use std::path::Path;

/// The log of the latest build, kept after a failure.
const LOG_FILE: &str = ".last-build.log";

pub fn build(store: &TemplateStore, options: &BuildOptions, progress: &mut dyn FnMut(&str)) -> Result<BuildOutcome, TemplateError> {
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
                return Ok(BuildOutcome { path: template.image_path(), built: false });
            }
            Ok(Some(template)) => progress(&format!("Template {} is out of date: building a new one", template.manifest.version)),
            Ok(None) => {}
            Err(e) => progress(&format!("Replacing the current template: {e}")),
        }
    }

    if !plan.has_libpam_web3() && !options.allow_without_libpam_web3 {
        return Err(TemplateError::NoLibpamWeb3(store.packages.clone()));
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
        Source::Debootstrap { mirror } => {
            debootstrap::build(&plan.suite, mirror, &plan.debs, &staging, store.accelerator, &mut log, &mut steps)
        }
        Source::Image(location) => cloud_image::build(location, &plan, templates, &staging, store.accelerator, &mut log, &mut steps),
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
    Ok(BuildOutcome { path: image, built: true })
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
    let now = chrono::Utc::now();
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
        built_at: manifest::timestamp(&now),
        inputs_digest,
    };
    let manifest_path = staging.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| TemplateError::Corrupt { path: manifest_path.clone(), reason: e.to_string() })?;
    std::fs::write(&manifest_path, json).map_err(TemplateError::io(&manifest_path))?;
    make_world_readable(staging)?;
    for name in [MANIFEST_FILE, IMAGE_FILE] {
        let path = staging.join(name);
        std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(TemplateError::io(&path))?;
    }
    sync_dir(staging)?;
    let dir = templates.join(&version);
    std::fs::rename(staging, &dir).map_err(TemplateError::io(&dir))?;
    sync_dir(templates)?;
    switch(templates, &version)?;
    Ok(dir.join(IMAGE_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{BootMode, Firmware, Template};
    use crate::{Accelerator, StoreLayout};

    fn store_at(root: &Path) -> TemplateStore {
        let layout = StoreLayout {
            templates: root.join("templates"),
            packages: root.join("template-packages"),
            vms: root.join("vms"),
            create_marker: root.join("provisioning.lock"),
        };
        TemplateStore::new(layout, Accelerator::detect(Path::new("/")))
    }

    /// A build that got past the up-to-date check stops at its prerequisites:
    /// the mirror is dead, or, before that is asked, root or a tool such as
    /// debootstrap is missing. These tests are about the up-to-date check, so
    /// they pass whichever of those the machine lacks.
    fn stopped_at_prerequisites(err: &TemplateError) -> bool {
        matches!(err, TemplateError::MirrorUnreachable(_) | TemplateError::NotRoot | TemplateError::ToolMissing(..))
    }

    /// A port no test listens on: below the ephemeral range the kernel hands
    /// out to the tests' own servers, so none can take it in the meantime.
    fn closed_port() -> u16 {
        1
    }

    /// A store whose current version was built from `options` (as far as the digest tells).
    fn store_with_current(root: &Path, options: &BuildOptions) -> (TemplateStore, std::path::PathBuf) {
        let store = store_at(root);
        let plan = BuildPlan::resolve(options, &store.packages).unwrap();
        let dir = store.templates.join("bookworm-20250101T000000Z");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(IMAGE_FILE), "image").unwrap();
        let manifest = TemplateManifest {
            version: "bookworm-20250101T000000Z".into(),
            source: plan.source_label(),
            suite: plan.suite.clone(),
            mirror: plan.mirror().map(String::from),
            image: IMAGE_FILE.into(),
            image_sha256: String::new(),
            boot: BootProfile { mode: BootMode::Disk { firmware: Firmware::Bios }, machine: "pc".into(), cdrom_bus: "ide".into() },
            packages: Vec::new(),
            built_at: "2025-01-01T00:00:00+00:00".into(),
            inputs_digest: plan.inputs_digest(&debootstrap::recipe_packages()),
        };
        std::fs::write(dir.join(MANIFEST_FILE), serde_json::to_vec(&manifest).unwrap()).unwrap();
        switch(&store.templates, "bookworm-20250101T000000Z").unwrap();
        (store, dir)
    }

    #[test]
    fn keeps_an_up_to_date_template_until_a_package_is_added() {
        let root = tempfile::tempdir().unwrap();
        let options = BuildOptions { mirror: Some(format!("http://127.0.0.1:{}/debian", closed_port())), ..Default::default() };
        let (store, dir) = store_with_current(root.path(), &options);
        let stale = store.templates.join(format!(".build-{}", testkit::dead_pid()));
        std::fs::create_dir_all(stale.join("rootfs/etc")).unwrap();

        let mut lines = Vec::new();
        let kept = build(&store, &options, &mut |l: &str| lines.push(l.to_string())).unwrap();
        assert_eq!(kept, BuildOutcome { path: dir.join(IMAGE_FILE), built: false });
        assert!(lines.iter().any(|l| l.contains("is up to date")), "{lines:?}");
        assert!(!stale.exists(), "the dead build's staging directory was removed first");

        // A new template package makes it out of date: a build starts (and fails on the dead mirror).
        std::fs::create_dir_all(&store.packages).unwrap();
        std::fs::write(store.packages.join("libpam-web3_1.0_amd64.deb"), "deb").unwrap();
        lines.clear();
        let err = build(&store, &options, &mut |l: &str| lines.push(l.to_string())).unwrap_err();
        assert!(stopped_at_prerequisites(&err), "{err}");
        assert!(lines.iter().any(|l| l.contains("is out of date")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("[1/8] Checking prerequisites")), "{lines:?}");
        assert_eq!(Template::load(&dir).unwrap().dir, store.current().unwrap().unwrap().dir, "current unchanged");
        assert!(!staging::staging_dir(&store.templates).exists());
    }

    #[test]
    fn force_rebuilds_an_up_to_date_template() {
        let root = tempfile::tempdir().unwrap();
        let options = BuildOptions { mirror: Some(format!("http://127.0.0.1:{}/debian", closed_port())), ..Default::default() };
        let (store, _) = store_with_current(root.path(), &options);
        let forced = BuildOptions { force: true, allow_without_libpam_web3: true, ..options };
        assert!(stopped_at_prerequisites(&build(&store, &forced, &mut |_| {}).unwrap_err()));
    }

    #[test]
    fn without_libpam_web3_a_build_stops_unless_allowed() {
        let root = tempfile::tempdir().unwrap();
        let store = store_at(root.path());
        let options = BuildOptions { mirror: Some(format!("http://127.0.0.1:{}/debian", closed_port())), ..Default::default() };
        for others in [&[][..], &["blockhost-probe_1.0_all.deb", "libpam-web3-tools_1.0_all.deb"][..]] {
            std::fs::create_dir_all(&store.packages).unwrap();
            for name in others {
                std::fs::write(store.packages.join(name), "deb").unwrap();
            }
            let mut lines = Vec::new();
            let err = build(&store, &options, &mut |l: &str| lines.push(l.to_string())).unwrap_err();
            assert!(matches!(err, TemplateError::NoLibpamWeb3(_)), "{others:?}: {err}");
            let line = err.to_string();
            assert!(!line.contains('\n'), "{line}");
            assert!(line.starts_with(&format!("{} holds no libpam-web3 package", store.packages.display())), "{line}");
            assert!(line.ends_with("or pass --allow-without-libpam-web3 to build such a template anyway"), "{line}");
            assert!(lines.is_empty(), "nothing started: {lines:?}");
            assert!(!staging::staging_dir(&store.templates).exists());
        }
        let allowed = BuildOptions { allow_without_libpam_web3: true, ..options.clone() };
        assert!(stopped_at_prerequisites(&build(&store, &allowed, &mut |_| {}).unwrap_err()));
        std::fs::write(store.packages.join("libpam-web3_0.9.1_amd64.deb"), "deb").unwrap();
        assert!(stopped_at_prerequisites(&build(&store, &options, &mut |_| {}).unwrap_err()));
    }

    #[test]
    fn one_builder_at_a_time() {
        let root = tempfile::tempdir().unwrap();
        let store = store_at(root.path());
        std::fs::create_dir_all(&store.templates).unwrap();
        let _held = BuildLock::acquire(&store.templates).unwrap();
        let err = build(&store, &BuildOptions::default(), &mut |_| {}).unwrap_err();
        assert!(matches!(err, TemplateError::Busy(_)), "{err}");
    }

    #[test]
    fn a_bad_source_fails_before_anything_is_touched() {
        let root = tempfile::tempdir().unwrap();
        let store = store_at(root.path());
        let options = BuildOptions { source: Some("tarball:/x".into()), ..Default::default() };
        let err = build(&store, &options, &mut |_| {}).unwrap_err();
        assert!(matches!(err, TemplateError::BadSource(_)), "{err}");
        assert!(err.to_string().starts_with("bad template source \"tarball:/x\""), "{err}");
        assert!(!store.templates.exists());
    }

    #[test]
    fn prune_after_keeping() {
        let root = tempfile::tempdir().unwrap();
        let options = BuildOptions { mirror: Some(format!("http://127.0.0.1:{}/debian", closed_port())), ..Default::default() };
        let (store, current) = store_with_current(root.path(), &options);
        let old = store.templates.join("bookworm-20240101T000000Z");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::copy(current.join(MANIFEST_FILE), old.join(MANIFEST_FILE)).unwrap();
        let mut lines = Vec::new();
        let kept = build(&store, &BuildOptions { prune: true, ..options }, &mut |l: &str| lines.push(l.to_string())).unwrap();
        assert!(!kept.built);
        assert!(!old.exists() && current.exists());
        assert!(lines.iter().any(|l| l.starts_with("Removed unused template")), "{lines:?}");
    }
}
