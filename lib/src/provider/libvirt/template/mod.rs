//! Versioned VM templates: the store under `/var/lib/blockhost/templates`.

pub mod manifest;

use crate::host::paths::HostPaths;
use crate::provider::{ErrorCode, ProviderError, TemplateBuild, TemplateOptions};
use manifest::{Template, TemplateManifest, MANIFEST_FILE};
use std::path::PathBuf;

pub struct TemplateStore {
    dir: PathBuf,
}

impl TemplateStore {
    pub fn new(paths: &HostPaths) -> Self {
        Self { dir: paths.state_dir().join("templates") }
    }

    pub fn current(&self) -> Result<Option<Template>, ProviderError> {
        let dir = match std::fs::canonicalize(self.dir.join("current")) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ProviderError::new(ErrorCode::Internal, e.to_string())),
        };
        let text = std::fs::read(dir.join(MANIFEST_FILE)).map_err(|e| ProviderError::new(ErrorCode::Internal, e.to_string()))?;
        let manifest: TemplateManifest = serde_json::from_slice(&text).map_err(|e| ProviderError::new(ErrorCode::Internal, e.to_string()))?;
        Ok(Some(Template { dir, manifest }))
    }

    pub fn build(&self, _options: &TemplateOptions, _progress: &mut dyn FnMut(&str)) -> Result<TemplateBuild, ProviderError> {
        Err(ProviderError::new(ErrorCode::Unsupported, "the template builder is not merged yet"))
    }
}
