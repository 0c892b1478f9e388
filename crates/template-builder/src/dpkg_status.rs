//! The installed packages of a root tree, from its dpkg database
//! (`var/lib/dpkg/status`: RFC 822-style stanzas separated by blank lines).

use super::error::TemplateError;
use super::manifest::PackageVersion;
use std::path::Path;

pub fn installed(root: &Path) -> Result<Vec<PackageVersion>, TemplateError> {
    let path = root.join("var/lib/dpkg/status");
    let text = std::fs::read_to_string(&path).map_err(TemplateError::io(&path))?;
    Ok(parse(&text))
}

/// Packages whose status is `install ok installed`, sorted by name.
pub fn parse(text: &str) -> Vec<PackageVersion> {
    let mut packages: Vec<PackageVersion> = text
        .split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':').map(str::trim))
            };
            let installed = field("Status")? == "install ok installed";
            let name = field("Package")?;
            let version = field("Version")?;
            installed.then(|| PackageVersion { name: name.to_string(), version: version.to_string() })
        })
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_installed_packages_only() {
        let status = "\
Package: sudo
Status: install ok installed
Priority: optional
Version: 1.9.13p3-1+deb12u1
Description: Provide limited super user privileges
 Sudo is a program designed to allow a sysadmin
 Package: not-a-field

Package: removed-thing
Status: deinstall ok config-files
Version: 1.0

Package: adduser
Status: install ok installed
Version: 3.134
";
        let got = parse(status);
        assert_eq!(
            got,
            [
                PackageVersion { name: "adduser".into(), version: "3.134".into() },
                PackageVersion { name: "sudo".into(), version: "1.9.13p3-1+deb12u1".into() },
            ]
        );
    }
}
