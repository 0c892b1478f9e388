//! blockhost-build-template

use crate::{fail, open_session, parse, stderr_progress};
use clap::Parser;
use provisioner::provider::TemplateOptions;
use provisioner::verbs::build_template;
use std::process::ExitCode;

pub const PROG: &str = "blockhost-build-template";

/// Build a new versioned VM template (kept as is when up to date, unless --force).
#[derive(Debug, Parser)]
#[command(name = PROG, version, about)]
pub struct Args {
    /// Build a new version even when the current template is up to date
    #[arg(long)]
    pub force: bool,
    /// Where the template comes from: debootstrap, or image:PATH-or-URL
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Debian suite
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// Debian mirror URL
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
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
        ..TemplateOptions::default()
    };
    match open_session(false, false).and_then(|s| build_template::run(&s, &options, &mut stderr_progress)) {
        Ok(build) if build.built => {
            println!("Template built successfully: {}", build.path.display());
            ExitCode::SUCCESS
        }
        Ok(build) => {
            println!("Template up to date: {}", build.path.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(PROG, e),
    }
}
