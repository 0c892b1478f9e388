//! What a backend exports to the registry: its name and how to open it. Kept
//! apart from the registry so that backends never import the module that lists them.

use super::{Backend, ProviderError};
use crate::host::config::DbConfig;
use crate::host::paths::HostPaths;

pub struct OpenContext<'a> {
    pub paths: &'a HostPaths,
    pub config: &'a DbConfig,
}

pub struct ProviderModule {
    pub name: &'static str,
    pub display_name: &'static str,
    pub open: fn(&OpenContext) -> Result<Backend, ProviderError>,
}
