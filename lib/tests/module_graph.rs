//! No arrow runs back up: among sibling modules of the library (the top-level
//! `host`, `model`, `provider`, `verbs`, and the modules inside each), none
//! uses one that uses it back. Read from the sources: every `use` tree and
//! every inline `crate::`/`super::`/`self::` path, comments excluded.

use regex_lite::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// The module path of a source file: `src/provider/mock/mod.rs` is `provider::mock`.
fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn strip_comments(text: &str) -> String {
    text.lines().map(|line| line.split_once("//").map_or(line, |(code, _)| code)).collect::<Vec<_>>().join("\n")
}

/// Expands a use tree (`super::{a::B, c}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else { return vec![tree.to_string()] };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').expect("balanced use tree")];
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items.into_iter().filter(|i| !i.trim().is_empty()).flat_map(expand).map(|p| format!("{prefix}{p}")).collect()
}

/// The absolute module path a `crate::`/`super::`/`self::` path points into.
fn resolve(from: &Module, path: &str) -> Option<Module> {
    let mut segments = path.split("::").map(str::trim);
    let mut base: Module = match segments.next()? {
        "crate" => Vec::new(),
        "self" => from.clone(),
        "super" => {
            let mut b = from.clone();
            b.pop();
            b
        }
        _ => return None,
    };
    for segment in segments {
        match segment {
            "super" => {
                base.pop();
            }
            s if s.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && s != "self" => base.push(s.to_string()),
            _ => break,
        }
    }
    Some(base)
}

#[test]
fn no_module_uses_a_sibling_that_uses_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let use_stmt = Regex::new(r"(?s)\buse\s+((?:crate|super|self)\b[^;]*);").unwrap();
    let inline = Regex::new(r"\b(?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+").unwrap();
    let mut edges: BTreeMap<(Module, Module), String> = BTreeMap::new();
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 50, "found only {} source files under {}", files.len(), src.display());
    for file in &files {
        let from = module_of(&src, file);
        let code = strip_comments(&std::fs::read_to_string(file).unwrap());
        let mut paths: Vec<String> = use_stmt.captures_iter(&code).flat_map(|c| expand(&c[1])).collect();
        paths.extend(inline.find_iter(&code).map(|m| m.as_str().to_string()));
        for path in paths {
            let Some(to) = resolve(&from, &path) else { continue };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                let unit = |m: &Module| m[..=common].to_vec();
                edges.entry((unit(&from), unit(&to))).or_insert_with(|| format!("{} uses {path}", file.display()));
            }
        }
    }
    let cycles: BTreeSet<String> = edges
        .iter()
        .filter(|((a, b), _)| a < b && edges.contains_key(&(b.clone(), a.clone())))
        .map(|((a, b), why)| format!("{} <-> {}: {why}; {}", a.join("::"), b.join("::"), edges[&(b.clone(), a.clone())]))
        .collect();
    assert!(cycles.is_empty(), "modules that use each other:\n{}", cycles.into_iter().collect::<Vec<_>>().join("\n"));
    assert!(edges.contains_key(&(vec!["verbs".into()], vec!["provider".into()])), "the scan sees verbs -> provider");
}
