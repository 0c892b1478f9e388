//! Commands inside the template's root tree: `chroot` in a private namespace
//! with its own `/proc`, a clean environment, and daemons kept from starting.

use super::error::TemplateError;
use super::plan::ExtraDeb;
use super::run::{isolated, logged, BuildLog};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const POLICY_RC_D: &str = "usr/sbin/policy-rc.d";
/// Where the extra packages are copied inside the tree while they are installed.
const DEBS_DIR: &str = "tmp/blockhost-debs";

/// Runs `args` inside `rootfs`.
pub fn run(rootfs: &Path, args: &[&str], step: &str, log: &mut BuildLog, on_line: &mut dyn FnMut(&str)) -> Result<(), TemplateError> {
    let mut cmd = isolated("chroot", Some(&rootfs.join("proc")));
    cmd.arg(rootfs)
        .args(["/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C", "HOME=/root"])
        .args(args);
    logged(cmd, step, log, on_line)
}

/// Installs `packages` from the mirror and the extra `.deb`s, with their
/// dependencies, while `policy-rc.d` forbids starting services.
pub fn install(
    rootfs: &Path,
    packages: &[&str],
    debs: &[ExtraDeb],
    log: &mut BuildLog,
    on_line: &mut dyn FnMut(&str),
) -> Result<(), TemplateError> {
    let policy = rootfs.join(POLICY_RC_D);
    std::fs::write(&policy, "#!/bin/sh\n# Written by blockhost-build-template: no daemon starts in the build tree.\nexit 101\n")
        .and_then(|()| std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o755)))
        .map_err(TemplateError::io(&policy))?;
    let result = install_with_policy(rootfs, packages, debs, log, on_line);
    let cleaned = std::fs::remove_file(&policy).map_err(TemplateError::io(&policy));
    let removed = super::tree::remove_tree(&rootfs.join(DEBS_DIR));
    result.and(cleaned).and(removed)
}

fn install_with_policy(
    rootfs: &Path,
    packages: &[&str],
    debs: &[ExtraDeb],
    log: &mut BuildLog,
    on_line: &mut dyn FnMut(&str),
) -> Result<(), TemplateError> {
    let dir = rootfs.join(DEBS_DIR);
    std::fs::create_dir_all(&dir).map_err(TemplateError::io(&dir))?;
    let mut targets: Vec<String> = packages.iter().map(|p| p.to_string()).collect();
    for deb in debs {
        let dest = dir.join(&deb.file_name);
        std::fs::copy(&deb.path, &dest).map_err(TemplateError::io(&deb.path))?;
        targets.push(format!("/{DEBS_DIR}/{}", deb.file_name));
    }
    run(rootfs, &["apt-get", "update"], "apt-get update in the template", log, on_line)?;
    let mut args = vec!["apt-get", "install", "-y", "--no-install-recommends"];
    args.extend(targets.iter().map(String::as_str));
    run(rootfs, &args, "installing packages into the template", log, on_line)
}
