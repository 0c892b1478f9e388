//! `build-template`: builds (or keeps) the backend's VM template.

use super::{Progress, Session, VerbError};
use crate::provider::module::OpenContext;
use crate::provider::templates;
use crate::provider::{TemplateBuild, TemplateOptions};

pub fn run(session: &Session, options: &TemplateOptions, progress: Progress) -> Result<TemplateBuild, VerbError> {
    let name = session.backend.name();
    let build = templates::builder(name).ok_or_else(|| VerbError::Failed(format!("the {name} backend has no template builder")))?;
    Ok(build(&OpenContext { paths: &session.paths, config: &session.config }, options, progress)?)
}
