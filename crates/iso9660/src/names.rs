//! Names in the image: the checks on labels and file names, the primary
//! tree's 8.3 identifiers, and the order records are sorted in.

use crate::SeedIsoError;
use std::cmp::Ordering;
use std::collections::BTreeSet;

pub const MAX_NAME_LEN: usize = 64;
pub const MAX_LABEL_LEN: usize = 32;

/// 1 to 32 characters of `[A-Za-z0-9_]`.
pub fn check_label(label: &str) -> Result<(), SeedIsoError> {
    let ok = (1..=MAX_LABEL_LEN).contains(&label.len())
        && label
            .bytes()
            .all(|b| b == b'_' || b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(SeedIsoError::InvalidLabel(label.to_string()))
    }
}

pub fn check_name(name: &str) -> Result<(), SeedIsoError> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\' | ':' | ';' | '*' | '?'));
    if bad {
        Err(SeedIsoError::InvalidName(name.to_string()))
    } else {
        Ok(())
    }
}

/// Maps a name to a unique 8.3 identifier of d-characters: the part before
/// the last dot (a leading dot does not count) becomes an upper-cased base of
/// at most 8 characters, the rest an extension of at most 3, and every other
/// character becomes `_`. On a clash the base ends in `_N` with the smallest
/// free N. Names must be fed in sorted order to stay deterministic.
pub fn primary_id(name: &str, used: &mut BTreeSet<Vec<u8>>) -> Vec<u8> {
    let (base, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot + 1..]),
        _ => (name, ""),
    };
    let d_chars = |s: &str, max: usize| -> Vec<u8> {
        s.chars()
            .take(max)
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' => c.to_ascii_uppercase() as u8,
                _ => b'_',
            })
            .collect()
    };
    let base = d_chars(base, 8);
    let ext = d_chars(ext, 3);
    let join = |base: &[u8]| [base, b".", &ext].concat();

    let mut id = join(&base);
    let mut n = 1u32;
    while used.contains(&id) {
        let suffix = format!("_{n}");
        let keep = base.len().min(8usize.saturating_sub(suffix.len()));
        id = join(&[&base[..keep], suffix.as_bytes()].concat());
        n += 1;
    }
    used.insert(id.clone());
    id
}

/// ECMA-119 9.3 order: by name, then by extension, each compared as if the
/// shorter one were padded with spaces.
pub fn ecma_order<T: Copy + Ord + From<u8>>(a: &[T], b: &[T]) -> Ordering {
    let split = |id: &[T]| -> (Vec<T>, Vec<T>) {
        match id.iter().rposition(|&c| c == T::from(b'.')) {
            Some(dot) => (id[..dot].to_vec(), id[dot + 1..].to_vec()),
            None => (id.to_vec(), Vec::new()),
        }
    };
    let padded = |x: &[T], y: &[T]| -> Ordering {
        let pad = T::from(b' ');
        (0..x.len().max(y.len()))
            .map(|i| {
                let l = x.get(i).copied().unwrap_or(pad);
                let r = y.get(i).copied().unwrap_or(pad);
                l.cmp(&r)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    };
    let (a_name, a_ext) = split(a);
    let (b_name, b_ext) = split(b);
    padded(&a_name, &b_name).then_with(|| padded(&a_ext, &b_ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecma_order_compares_the_name_before_the_extension() {
        // Space-padded, so "a.b" sorts before "a-c" although '.' > '-'.
        let utf16 = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        assert_eq!(ecma_order(&utf16("a.b"), &utf16("a-c")), Ordering::Less);
        assert_eq!(ecma_order(&utf16("a-c"), &utf16("a.b")), Ordering::Greater);
        assert_eq!(ecma_order(b"AB.", b"A.ZZZ"), Ordering::Greater);
        assert_eq!(ecma_order(b"A.B", b"A.B"), Ordering::Equal);
    }
}
