//! Keys of db.yaml that look like a typo of one we read (`ip_pol:` for
//! `ip_pool:`): an edit distance of at most 2 (`strsim`'s Damerau–Levenshtein)
//! from a known key. Keys other components own, and any key not near one of
//! ours, are theirs: never named, never touched.

use serde_json::Value;

/// The top-level keys we read, each with the keys of its mapping we read.
const OURS: &[(&str, &[&str])] = &[
    ("db_file", &[]),
    ("ip_pool", &["network", "start", "end", "gateway"]),
    ("ipv6_pool", &["start", "end", "prefix"]),
    ("vmid_range", &["start", "end"]),
    ("vmid_pool", &["start", "end"]),
    ("gc_grace_days", &[]),
    ("default_expiry_days", &[]),
    ("bridge", &[]),
    ("db_lock_timeout_seconds", &[]),
    ("agent_timeout_seconds", &[]),
    ("libvirt", &[]),
    ("overcommit", &["cpu", "memory", "disk"]),
    ("metrics_max_age_seconds", &[]),
];

/// Top-level keys other BlockHost components write (facts §2.1); near ours, but theirs.
const THEIRS: &[&str] = &["fields", "terraform_dir", "storage_pool", "storage_path"];

/// An unknown key and the known key it probably meant, both dotted (`ip_pool.netwrok`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typo {
    pub key: String,
    pub meant: String,
}

/// Every likely typo in the document, in its order.
pub fn typos(doc: &Value) -> Vec<Typo> {
    let Some(top) = doc.as_object() else { return Vec::new() };
    let mut found = Vec::new();
    let names: Vec<&str> = OURS.iter().map(|(name, _)| *name).collect();
    for (key, value) in top {
        if let Some((name, inner)) = OURS.iter().find(|(name, _)| name == key) {
            for sub in value.as_object().into_iter().flat_map(|m| m.keys()) {
                if let Some(meant) = nearest(sub, inner) {
                    found.push(Typo { key: format!("{name}.{sub}"), meant: format!("{name}.{meant}") });
                }
            }
        } else if !THEIRS.contains(&key.as_str()) {
            if let Some(meant) = nearest(key, &names) {
                found.push(Typo { key: key.clone(), meant: meant.to_string() });
            }
        }
    }
    found
}

/// The known key `key` is 1 or 2 edits away from, when it is not one itself.
fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    if known.contains(&key) {
        return None;
    }
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .filter(|(distance, k)| *distance <= 2 && *distance < k.len() / 2 + 1)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(yaml: &str) -> Vec<(String, String)> {
        let doc = serde_saphyr::from_str(yaml).unwrap();
        typos(&doc).into_iter().map(|t| (t.key, t.meant)).collect()
    }

    #[test]
    fn a_key_two_edits_from_ours_is_named_with_the_key_it_meant() {
        let pairs = |list: &[(&str, &str)]| list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        assert_eq!(found("ip_pol: {network: 10.0.0.0/24}\n"), pairs(&[("ip_pol", "ip_pool")]));
        assert_eq!(found("brdige: br1\ngc_grace_dyas: 3\n"), pairs(&[("brdige", "bridge"), ("gc_grace_dyas", "gc_grace_days")]));
        assert_eq!(found("ip_pool: {netwrok: 10.0.0.0/24, strat: 5}\n"), pairs(&[("ip_pool.netwrok", "ip_pool.network"), ("ip_pool.strat", "ip_pool.start")]));
    }

    #[test]
    fn keys_of_other_components_and_keys_far_from_ours_stay_silent() {
        let yaml = "db_file: /x\nfields: {a: b}\nterraform_dir: /t\nstorage_pool: p\nstorage_path: /s\nengine_url: http://x\nbridge: br0\nip_pool: {network: 10.0.0.0/24, dhcp: yes}\nxyz: 1\n";
        assert_eq!(found(yaml), Vec::<(String, String)>::new());
    }

    #[test]
    fn three_edits_is_not_a_typo() {
        assert_eq!(found("bxidgxx: br0\n"), Vec::<(String, String)>::new());
    }
}
