use crate::host::{self, Host};
use provisioner::provider::TemplateOptions;
use provisioner::verbs::{build_template, VerbError};

#[test]
fn a_template_is_built_once_kept_then_rebuilt_on_force_and_used_by_new_vms() {
    let h = Host::new();
    let s = h.session();
    let mut lines = Vec::new();
    let first = build_template::run(&s, &TemplateOptions::default(), &mut |l: &str| lines.push(l.to_string())).unwrap();
    assert!(first.built);
    assert!(first.path.join("manifest.json").exists(), "{}", first.path.display());
    assert_eq!(lines.len(), 3, "{lines:?}");
    let kept = build_template::run(&s, &TemplateOptions::default(), &mut host::quiet()).unwrap();
    assert!(!kept.built);
    assert_eq!(kept.path, first.path);
    let version = first.path.file_name().unwrap().to_str().unwrap().to_string();
    h.create("t");
    assert_eq!(h.domain("t").unwrap()["template"], serde_json::json!(version));
    let options = TemplateOptions { force: true, suite: Some("trixie".into()), ..Default::default() };
    let rebuilt = build_template::run(&s, &options, &mut host::quiet()).unwrap();
    assert!(rebuilt.built);
    assert_ne!(rebuilt.path, first.path);
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(rebuilt.path.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["suite"], "trixie");
}

#[test]
fn an_unreachable_backend_is_an_error() {
    let h = Host::new();
    h.knobs("unreachable: true\n");
    assert!(matches!(build_template::run(&h.session(), &TemplateOptions::default(), &mut host::quiet()), Err(VerbError::Provider(_))));
}
