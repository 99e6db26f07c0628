//! Key derivation: blake3 in derive-key mode, under versioned labels.

use crate::Key;

/// Derives a key from `input` (key material, not a password) under `label`: blake3's
/// `derive_key(label, input)`. Labels are versioned, globally unique constants (see
/// [`is_versioned`]); debug builds check the rule here too.
pub fn derive(label: &'static str, input: &[u8]) -> Key {
    debug_assert!(is_versioned(label), "unversioned label {label:?}");
    Key::from_bytes(blake3::derive_key(label, input))
}

/// Whether `label` follows Redoubt's rule for domain-separation labels: it starts with
/// `"redoubt "` and names a version as a word `v` followed by digits, such as
/// `"redoubt sync v3 transcript"`. A `const fn`, so each label can be checked where it is
/// defined: `const _: () = assert!(redoubt_crypto::is_versioned(LABEL));`.
pub const fn is_versioned(label: &str) -> bool {
    let b = label.as_bytes();
    let prefix = b"redoubt ";
    if b.len() < prefix.len() {
        return false;
    }
    let mut i = 0;
    while i < prefix.len() {
        if b[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    // Look for " v<digits>" ending at a space or the end.
    while i < b.len() {
        if b[i] == b'v' && b[i - 1] == b' ' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 && (j == b.len() || b[j] == b' ') {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// A streaming blake3 hash in derive-key mode, for inputs built up over time (a session
/// transcript): `DeriveHasher::new(label)`, then `update` in order, then `finalize`. Equal to
/// [`derive()`] over the concatenated input.
#[derive(Clone)]
pub struct DeriveHasher(blake3::Hasher);

impl DeriveHasher {
    /// A hasher under `label` (versioned, as for [`derive()`]).
    pub fn new(label: &'static str) -> Self {
        debug_assert!(is_versioned(label), "unversioned label {label:?}");
        Self(blake3::Hasher::new_derive_key(label))
    }

    /// Adds `input`.
    pub fn update(&mut self, input: &[u8]) {
        self.0.update(input);
    }

    /// The 32-byte output over everything added so far (the hasher can go on).
    pub fn finalize(&self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

impl std::fmt::Debug for DeriveHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeriveHasher(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// blake3's official test vector for `derive_key` over the empty input, first 32 bytes.
    #[test]
    fn blake3_derive_key_known_answer() {
        let out = blake3::derive_key("BLAKE3 2019-12-27 16:29:52 test vectors context", b"");
        assert_eq!(
            blake3::Hash::from(out).to_hex().as_str(),
            "2cc39783c223154fea8dfb7c1b1660f2ac2dcbd1c1de8277b0b0dd39b7e50d7d"
        );
    }

    #[test]
    fn derive_and_the_streaming_hasher_agree_and_labels_separate() {
        const A: &str = "redoubt test v1 a";
        const B: &str = "redoubt test v1 b";
        let k = derive(A, b"input");
        assert_eq!(k.expose(), &blake3::derive_key(A, b"input"));
        assert_ne!(k.expose(), derive(B, b"input").expose());
        assert_ne!(k.expose(), derive(A, b"inpuT").expose());
        let mut h = DeriveHasher::new(A);
        h.update(b"in");
        h.update(b"put");
        assert_eq!(&h.finalize(), k.expose());
    }

    #[test]
    fn labels_must_name_a_version() {
        for good in [
            "redoubt sync v1 transcript",
            "redoubt sync v3 complement key",
            "redoubt snapshot v1 body key",
            "redoubt v1 record hash",
            "redoubt x v12",
        ] {
            assert!(is_versioned(good), "{good}");
        }
        for bad in [
            "",
            "redoubt",
            "redoubt sync transcript",
            "redoubt sync v transcript",
            "redoubt sync v1x key",
            "other sync v1 key",
            "redoubt sync version1",
        ] {
            assert!(!is_versioned(bad), "{bad}");
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "unversioned label")]
    fn derive_refuses_an_unversioned_label_in_debug_builds() {
        derive("redoubt key", b"");
    }
}
