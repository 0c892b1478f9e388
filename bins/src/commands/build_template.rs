//! blockhost-build-template

use crate::build_progress::BuildProgress;
use crate::entry::{open_session, Executable, Outcome};
use crate::manual::{Manual, STANDARD_EXIT};
use clap::Parser;
use provisioner::provider::TemplateOptions;
use provisioner::verbs::build_template;
use provisioner::verbs::exit_code::SUCCESS;

pub const PROG: &str = "blockhost-build-template";

/// Build a new versioned VM template and make it current. An up-to-date
/// template (same suite, mirror, source and template packages) is kept unless
/// --force is given. VMs keep the template version they were created on.
///
/// The last stdout line is `Template built successfully: <image>`, also when
/// the current template was kept; progress goes to stderr (a live bar on a
/// terminal).
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
    /// Build even when template-packages/ holds no libpam-web3 package: VMs
    /// from such a template do not accept wallet logins
    #[arg(long)]
    pub allow_without_libpam_web3: bool,
}

impl Executable for Args {
    const PROG: &'static str = PROG;
    const MANUAL: Manual = Manual {
        exit_status: STANDARD_EXIT,
        examples: &[("blockhost-build-template", "builds a new template unless the current one is up to date"), ("blockhost-build-template --force", "builds a new version in any case")],
    };

    fn run(self) -> Outcome {
        let options = TemplateOptions {
            force: self.force,
            source: self.source,
            suite: self.suite,
            mirror: self.mirror,
            checksum: self.checksum,
            prune: self.prune,
            allow_without_libpam_web3: self.allow_without_libpam_web3,
        };
        let mut progress = BuildProgress::new();
        let build = build_template::run(&open_session(false, false)?, &options, &mut |line: &str| progress.line(line))?;
        drop(progress);
        crate::out!("Template built successfully: {}", build.path.display());
        Ok(SUCCESS)
    }
}
