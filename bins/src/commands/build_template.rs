//! blockhost-build-template

use crate::{fail, open_session, parse, stderr_progress};
use clap::Parser;
use provisioner::provider::TemplateOptions;
use provisioner::verbs::build_template;
use std::process::ExitCode;

pub const PROG: &str = "blockhost-build-template";

/// Build a new versioned VM template and make it current. An up-to-date
/// template (same suite, mirror, source and template packages) is kept unless
/// --force is given. VMs keep the template version they were created on.
///
/// The last stdout line is `Template built successfully: <image>`, also when
/// the current template was kept; progress goes to stderr.
#[derive(Debug, Parser)]
#[command(name = PROG, version)]
pub struct Args {
    /// Build a new version even when the current template is up to date
    #[arg(long)]
    pub force: bool,
    /// Where the template comes from: debootstrap (default), or image:PATH-or-URL
    /// for a cloud image
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Debian suite (default: bookworm)
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// Debian mirror URL (default: http://deb.debian.org/debian)
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// Expected SHA-256 or SHA-512 (hex) of an image: source; without it, the
    /// SHA512SUMS/SHA256SUMS file next to the image URL is used when published
    #[arg(long, value_name = "HEX")]
    pub checksum: Option<String>,
    /// Also remove the template versions no VM uses (never the current one).
    /// With an up-to-date template and no --force this only prunes
    #[arg(long)]
    pub prune: bool,
}

pub fn main() -> ExitCode {
    let args = match parse::<Args>(PROG, 2) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let options = TemplateOptions {
        force: args.force,
        source: args.source,
        suite: args.suite,
        mirror: args.mirror,
        checksum: args.checksum,
        prune: args.prune,
    };
    match open_session(false, false).and_then(|s| build_template::run(&s, &options, &mut stderr_progress)) {
        Ok(build) => {
            crate::out!("Template built successfully: {}", build.path.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(PROG, e),
    }
}
