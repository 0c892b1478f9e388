//! `build-template`: builds (or keeps) the backend's VM template.

use super::{Progress, Session, VerbError};
use crate::provider::{TemplateBuild, TemplateOptions};

pub fn run(session: &Session, options: &TemplateOptions, progress: Progress) -> Result<TemplateBuild, VerbError> {
    if !session.backend.capabilities().template_build {
        return Err(VerbError::Failed(format!("the {} backend has no template builder", session.backend.name())));
    }
    Ok(session.backend.build_template(options, progress)?)
}
