//! `$name` / `${name}` substitution with the exact semantics of Python's
//! `string.Template(template).safe_substitute(mapping)`.
//!
//! Rules (default delimiter `$`, identifiers `[_A-Za-z][_A-Za-z0-9]*`, ASCII only):
//! - `$$` becomes `$`;
//! - `$name` and `${name}` become the value of `name`, or stay verbatim when
//!   `name` is unknown; identifiers are matched greedily;
//! - any other `$` (before a space, a digit, `{ bad }`, an unterminated `{`,
//!   or at the end) is kept as is. Nothing is ever an error.

/// Substitutes placeholders in `template`, asking `lookup` for each name.
///
/// With a map: `safe_substitute(text, |name| vars.get(name))`.
pub fn safe_substitute<F, S>(template: &str, mut lookup: F) -> String
where
    F: FnMut(&str) -> Option<S>,
    S: AsRef<str>,
{
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];

        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }

        let n = ident_len(after);
        if n > 0 {
            let name = &after[..n];
            match lookup(name) {
                Some(value) => out.push_str(value.as_ref()),
                None => out.push_str(&rest[pos..pos + 1 + n]),
            }
            rest = &after[n..];
            continue;
        }

        if let Some(inner) = after.strip_prefix('{') {
            let n = ident_len(inner);
            if n > 0 && inner[n..].starts_with('}') {
                match lookup(&inner[..n]) {
                    Some(value) => out.push_str(value.as_ref()),
                    // `${` + name + `}`
                    None => out.push_str(&rest[pos..pos + n + 3]),
                }
                rest = &inner[n + 1..];
                continue;
            }
        }

        // Python's "invalid" group: the lone delimiter is kept and scanning
        // resumes right after it.
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Length in bytes of the identifier at the start of `s` (0 if none).
/// Identifier characters are ASCII, so the result is a char boundary.
fn ident_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(&b) if b == b'_' || b.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    1 + bytes[1..]
        .iter()
        .take_while(|&&b| b == b'_' || b.is_ascii_alphanumeric())
        .count()
}

#[cfg(test)]
mod tests {
    use super::safe_substitute;
    use std::collections::{BTreeMap, HashMap};

    fn vars() -> BTreeMap<String, String> {
        [
            ("VM_NAME", "web-1"),
            ("VM_NAMEx", "greedy"),
            ("user", "admin"),
            ("_x1", "u"),
            ("empty", ""),
            ("dollar", "$VM_NAME"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn sub(template: &str) -> String {
        let v = vars();
        safe_substitute(template, |name| v.get(name))
    }

    // Every expected value below was checked against CPython 3.11:
    // string.Template(t).safe_substitute(vars).
    #[test]
    fn simple_and_braced_forms() {
        assert_eq!(sub("hostname: $VM_NAME"), "hostname: web-1");
        assert_eq!(sub("hostname: ${VM_NAME}"), "hostname: web-1");
        assert_eq!(sub("${VM_NAME}x"), "web-1x");
        assert_eq!(sub("$_x1 ${_x1}"), "u u");
        assert_eq!(sub("[$empty]"), "[]");
    }

    #[test]
    fn escaped_dollar() {
        assert_eq!(sub("$$"), "$");
        assert_eq!(sub("cost: $$5"), "cost: $5");
        assert_eq!(sub("$$VM_NAME"), "$VM_NAME");
        assert_eq!(sub("$$$VM_NAME"), "$web-1");
        assert_eq!(sub("$${VM_NAME}"), "${VM_NAME}");
        assert_eq!(sub("$$$$"), "$$");
    }

    #[test]
    fn unknown_names_stay_verbatim() {
        assert_eq!(sub("$nope"), "$nope");
        assert_eq!(sub("${nope}"), "${nope}");
        assert_eq!(
            sub("final_message: \"$VM_NAME is up after $UPTIME seconds\""),
            "final_message: \"web-1 is up after $UPTIME seconds\""
        );
        assert_eq!(sub("${UPTIME}s"), "${UPTIME}s");
    }

    #[test]
    fn names_are_case_sensitive_and_greedy() {
        assert_eq!(sub("$vm_name"), "$vm_name");
        assert_eq!(sub("$VM_NAMEx"), "greedy");
        assert_eq!(sub("$VM_NAMEy"), "$VM_NAMEy");
        assert_eq!(sub("$VM_NAME-x"), "web-1-x");
        assert_eq!(sub("$VM_NAME.x"), "web-1.x");
    }

    #[test]
    fn adjacent_placeholders() {
        assert_eq!(sub("$user$VM_NAME"), "adminweb-1");
        assert_eq!(sub("${user}${VM_NAME}"), "adminweb-1");
        assert_eq!(sub("$user${VM_NAME}$nope$user"), "adminweb-1$nopeadmin");
    }

    #[test]
    fn placeholder_at_end_and_dollar_at_end() {
        assert_eq!(sub("name=$VM_NAME"), "name=web-1");
        assert_eq!(sub("trailing $"), "trailing $");
        assert_eq!(sub("$"), "$");
        assert_eq!(sub("$VM_NAME$"), "web-1$");
        assert_eq!(sub(""), "");
    }

    #[test]
    fn invalid_forms_are_left_alone() {
        assert_eq!(sub("$ x"), "$ x");
        assert_eq!(sub("$1"), "$1");
        assert_eq!(sub("$1VM_NAME"), "$1VM_NAME");
        assert_eq!(sub("${1x}"), "${1x}");
        assert_eq!(sub("${ VM_NAME }"), "${ VM_NAME }");
        assert_eq!(sub("${}"), "${}");
        assert_eq!(sub("${VM_NAME"), "${VM_NAME");
        assert_eq!(sub("${VM_NAME-x}"), "${VM_NAME-x}");
        assert_eq!(sub("${unterminated $user"), "${unterminated admin");
        assert_eq!(sub("${{VM_NAME}}"), "${{VM_NAME}}");
        assert_eq!(sub("{$VM_NAME}"), "{web-1}");
    }

    #[test]
    fn values_are_not_rescanned() {
        assert_eq!(sub("$dollar"), "$VM_NAME");
    }

    #[test]
    fn unicode_is_not_an_identifier() {
        assert_eq!(sub("$é"), "$é");
        assert_eq!(sub("$VM_NAMEé"), "web-1é");
        assert_eq!(sub("${VM_NAMEé}"), "${VM_NAMEé}");
        assert_eq!(sub("ünï $VM_NAME ∑"), "ünï web-1 ∑");
        // Characters Python would fold to ASCII without the (?a:) flag.
        assert_eq!(sub("$ſ $\u{212A}"), "$ſ $\u{212A}");
    }

    #[test]
    fn works_with_hashmap_and_closures() {
        let mut map = HashMap::new();
        map.insert("a", "1");
        assert_eq!(safe_substitute("$a$b", |k| map.get(k).copied()), "1$b");
        assert_eq!(safe_substitute("${x}", |k| Some(k.to_uppercase())), "X");
    }
}
