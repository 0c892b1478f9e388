//! Versioned VM templates: the store under `/var/lib/blockhost/templates`.

pub mod manifest;
