//! What a build will use, resolved from the options and the extra packages
//! directory, and the digest of those inputs that tells whether the current
//! template is up to date.

use super::checksum::{hex, sha256_file, Checksum};
use super::error::TemplateError;
use super::BuildOptions;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const DEFAULT_SUITE: &str = "bookworm";
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// The package that lets users log in to a VM with their wallet.
pub const LIBPAM_WEB3: &str = "libpam-web3";
/// Bumped whenever the build recipe changes what ends up in a template.
const RECIPE_REVISION: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Debootstrap { mirror: String },
    Image(ImageLocation),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLocation {
    File(PathBuf),
    Url(String),
}

/// A `.deb` from `template-packages/` to install into the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraDeb {
    pub path: PathBuf,
    pub file_name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    pub source: Source,
    pub suite: String,
    pub checksum: Option<Checksum>,
    pub debs: Vec<ExtraDeb>,
}

impl BuildPlan {
    /// Validates the options and hashes every extra package.
    pub fn resolve(options: &BuildOptions, packages_dir: &Path) -> Result<Self, TemplateError> {
        let suite = options.suite.clone().unwrap_or_else(|| DEFAULT_SUITE.to_string());
        let suite_ok = suite.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && suite.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !suite_ok {
            return Err(TemplateError::BadSource(format!("suite {suite}")));
        }
        let source = parse_source(options.source.as_deref().unwrap_or("debootstrap"), options.mirror.as_deref())?;
        let checksum = options.checksum.as_deref().map(Checksum::parse).transpose()?;
        Ok(Self { source, suite, checksum, debs: extra_debs(packages_dir)? })
    }

    /// `debootstrap` or `image:<path-or-url>`, as recorded in the manifest.
    pub fn source_label(&self) -> String {
        match &self.source {
            Source::Debootstrap { .. } => "debootstrap".to_string(),
            Source::Image(ImageLocation::File(path)) => format!("image:{}", path.display()),
            Source::Image(ImageLocation::Url(url)) => format!("image:{url}"),
        }
    }

    pub fn mirror(&self) -> Option<&str> {
        match &self.source {
            Source::Debootstrap { mirror } => Some(mirror),
            Source::Image(_) => None,
        }
    }

    /// Whether one of the extra packages is libpam-web3, by Debian's file
    /// naming (`<package>_<version>_<arch>.deb`).
    pub fn has_libpam_web3(&self) -> bool {
        self.debs.iter().any(|deb| {
            let stem = deb.file_name.strip_suffix(".deb").unwrap_or(&deb.file_name);
            stem.split('_').next() == Some(LIBPAM_WEB3)
        })
    }

    /// SHA-256 over the recipe revision, source, suite, mirror, the package
    /// list the recipe installs and every extra `.deb` (name and content).
    pub fn inputs_digest(&self, recipe_packages: &[&str]) -> String {
        let mut text = format!("recipe {RECIPE_REVISION}\nsource {}\nsuite {}\n", self.source_label(), self.suite);
        if let Some(mirror) = self.mirror() {
            text.push_str(&format!("mirror {mirror}\n"));
        }
        text.push_str(&format!("packages {}\n", recipe_packages.join(",")));
        for deb in &self.debs {
            text.push_str(&format!("deb {} {}\n", deb.file_name, deb.sha256));
        }
        hex(&Sha256::digest(text.as_bytes()))
    }
}

fn parse_source(spec: &str, mirror: Option<&str>) -> Result<Source, TemplateError> {
    if spec == "debootstrap" {
        let mirror = mirror.unwrap_or(DEFAULT_MIRROR).trim_end_matches('/').to_string();
        let valid = ["http://", "https://"].iter().any(|s| mirror.strip_prefix(s).is_some_and(|rest| !rest.is_empty()))
            && !mirror.contains(char::is_whitespace);
        if !valid {
            return Err(TemplateError::MirrorUnreachable(format!("{mirror} is not an http(s) URL")));
        }
        return Ok(Source::Debootstrap { mirror });
    }
    let location = spec.strip_prefix("image:").filter(|l| !l.is_empty()).ok_or_else(|| TemplateError::BadSource(spec.into()))?;
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(Source::Image(ImageLocation::Url(location.to_string())));
    }
    if location.contains("://") {
        return Err(TemplateError::BadSource(spec.into()));
    }
    let path = PathBuf::from(location);
    if !path.is_file() {
        return Err(TemplateError::BadSource(format!("{spec} (no such file)")));
    }
    Ok(Source::Image(ImageLocation::File(std::path::absolute(&path).map_err(TemplateError::io(&path))?)))
}

/// Every `*.deb` in `dir`, sorted by name; none when the directory is absent.
fn extra_debs(dir: &Path) -> Result<Vec<ExtraDeb>, TemplateError> {
    let entries = super::tree::entries(dir)?;
    let mut debs = Vec::new();
    for entry in entries {
        let path = entry.path();
        let Some(file_name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        if file_name.ends_with(".deb") && path.is_file() {
            debs.push(ExtraDeb { sha256: sha256_file(&path)?, path, file_name });
        }
    }
    debs.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(debs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(source: Option<&str>) -> BuildOptions {
        BuildOptions { source: source.map(String::from), ..BuildOptions::default() }
    }

    #[test]
    fn defaults() {
        let plan = BuildPlan::resolve(&BuildOptions::default(), Path::new("/nonexistent")).unwrap();
        assert_eq!(plan.source, Source::Debootstrap { mirror: DEFAULT_MIRROR.into() });
        assert_eq!(plan.suite, "bookworm");
        assert_eq!(plan.source_label(), "debootstrap");
        assert!(plan.debs.is_empty() && plan.checksum.is_none());
    }

    #[test]
    fn source_specs() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("cloud.qcow2");
        std::fs::write(&image, "x").unwrap();
        let file = BuildPlan::resolve(&options(Some(&format!("image:{}", image.display()))), dir.path()).unwrap();
        assert_eq!(file.source, Source::Image(ImageLocation::File(image.clone())));
        let url = BuildPlan::resolve(&options(Some("image:https://example.org/d.qcow2")), dir.path()).unwrap();
        assert_eq!(url.source_label(), "image:https://example.org/d.qcow2");
        assert_eq!(url.mirror(), None);
        for bad in ["image:", "image:/no/such/file", "image:ftp://x/y", "tarball", ""] {
            let err = BuildPlan::resolve(&options(Some(bad)), dir.path()).unwrap_err();
            assert!(matches!(err, TemplateError::BadSource(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn rejects_bad_mirror_suite_and_checksum() {
        let none = Path::new("/nonexistent");
        let bad_mirror = BuildOptions { mirror: Some("deb.debian.org".into()), ..BuildOptions::default() };
        assert!(matches!(BuildPlan::resolve(&bad_mirror, none), Err(TemplateError::MirrorUnreachable(_))));
        let bad_suite = BuildOptions { suite: Some("../etc".into()), ..BuildOptions::default() };
        assert!(matches!(BuildPlan::resolve(&bad_suite, none), Err(TemplateError::BadSource(_))));
        let bad_sum = BuildOptions { checksum: Some("abc".into()), ..BuildOptions::default() };
        assert!(matches!(BuildPlan::resolve(&bad_sum, none), Err(TemplateError::BadChecksum(_))));
    }

    #[test]
    fn digest_follows_every_input() {
        let dir = tempfile::tempdir().unwrap();
        let digest = |options: &BuildOptions| BuildPlan::resolve(options, dir.path()).unwrap().inputs_digest(&["a", "b"]);
        let base = digest(&BuildOptions::default());
        assert_eq!(base, digest(&BuildOptions { force: true, prune: true, ..BuildOptions::default() }));
        assert_eq!(base, digest(&BuildOptions { mirror: Some(format!("{DEFAULT_MIRROR}/")), ..BuildOptions::default() }));
        assert_ne!(base, digest(&BuildOptions { suite: Some("trixie".into()), ..BuildOptions::default() }));
        assert_ne!(base, digest(&BuildOptions { mirror: Some("http://m/debian".into()), ..BuildOptions::default() }));
        let plan = BuildPlan::resolve(&BuildOptions::default(), dir.path()).unwrap();
        assert_ne!(base, plan.inputs_digest(&["a"]));

        std::fs::write(dir.path().join("libpam-web3.deb"), "v1").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let with_deb = digest(&BuildOptions::default());
        assert_ne!(base, with_deb);
        std::fs::write(dir.path().join("libpam-web3.deb"), "v2").unwrap();
        assert_ne!(with_deb, digest(&BuildOptions::default()));
        std::fs::remove_file(dir.path().join("libpam-web3.deb")).unwrap();
        std::fs::write(dir.path().join("other.deb"), "v1").unwrap();
        assert_ne!(with_deb, digest(&BuildOptions::default()), "the file name counts too");
    }
}
