//! The mock's template builder: a versioned directory with a manifest and a
//! `current` link, as a real store keeps them, built in microseconds.

use super::{load_knobs, state_dir, MODULE};
use crate::provider::module::OpenContext;
use crate::provider::{ErrorCode, ProviderError, TemplateBuild, TemplateOptions};

pub fn build_template(ctx: &OpenContext, options: &TemplateOptions, progress: &mut dyn FnMut(&str)) -> Result<TemplateBuild, ProviderError> {
    let dir = state_dir(ctx.paths);
    let (_, faults) = load_knobs(&dir)?;
    faults.reach(MODULE.name)?;
    let templates = dir.join("templates");
    let current = templates.join("current");
    let fail = |e: std::io::Error| ProviderError::new(ErrorCode::Internal, format!("{}: {e}", templates.display()));
    if !options.force {
        if let Ok(target) = std::fs::read_link(&current) {
            progress(&format!("Current template {} is up to date (use --force to rebuild)", target.display()));
            return Ok(TemplateBuild { path: templates.join(target), built: false });
        }
    }
    std::fs::create_dir_all(&templates).map_err(fail)?;
    let version = format!("mock-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"));
    let staging = templates.join(format!(".staging-{}", std::process::id()));
    let source = options.source.clone().unwrap_or_else(|| "debootstrap".into());
    let suite = options.suite.clone().unwrap_or_else(|| "bookworm".into());
    progress(&format!("[1/3] Preparing {suite} image from {source}"));
    std::fs::create_dir_all(&staging).map_err(fail)?;
    let manifest = serde_json::json!({
        "version": version,
        "source": source,
        "suite": suite,
        "packages": ["cloud-init", "qemu-guest-agent", "openssh-server", "sudo"],
        "boot": "mock",
        "built_at": crate::host::timestamp::format(&crate::host::timestamp::now()),
    });
    progress("[2/3] Writing template manifest");
    crate::host::atomic::write_atomic(&staging.join("manifest.json"), manifest.to_string().as_bytes(), 0o644).map_err(fail)?;
    let final_dir = templates.join(&version);
    std::fs::rename(&staging, &final_dir).map_err(fail)?;
    progress("[3/3] Switching the current template");
    let link_tmp = templates.join(format!(".current-{}", std::process::id()));
    let _ = std::fs::remove_file(&link_tmp);
    std::os::unix::fs::symlink(&version, &link_tmp).map_err(fail)?;
    std::fs::rename(&link_tmp, &current).map_err(fail)?;
    Ok(TemplateBuild { path: final_dir, built: true })
}
