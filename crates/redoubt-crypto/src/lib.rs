//! Redoubt's cryptographic primitives, each a short documented function that the protocol and
//! the snapshot file build on:
//!
//! - [`seal`] / [`open`]: ChaCha20-Poly1305 (RFC 8439) under a 96-bit nonce the caller chooses
//!   (the sync stream's counter nonces), binding associated data;
//! - [`seal_x`] / [`open_x`]: XChaCha20-Poly1305 under a 192-bit nonce, safe to draw at random
//!   (the snapshot file);
//! - [`derive()`] and [`DeriveHasher`]: blake3 in key-derivation mode, under a versioned label
//!   such as `"redoubt sync v1 complement key"` ([`is_versioned`] states the rule, which the
//!   callers assert at compile time);
//! - [`fill_random`] and [`Key::random`]: the operating system's random number generator;
//! - [`ct_eq`] and [`is_all_zero`]: comparisons whose time does not depend on the bytes.
//!
//! Protocol constructions (x25519 agreement, the key schedules and transcripts, the chunk
//! nonces) live in `redoubt-protocol`, the password KDF in `redoubt-snapshot`; this crate has
//! no format of its own, so its outputs are those of the underlying algorithms, byte for byte.
//!
//! ```
//! use redoubt_crypto::{Key, derive, open, seal};
//!
//! const LABEL: &str = "redoubt example v1 key";
//! const _: () = assert!(redoubt_crypto::is_versioned(LABEL));
//!
//! let key: Key = derive(LABEL, b"input key material");
//! let nonce = [0u8; 12];
//! let sealed = seal(&key, &nonce, b"header", b"secret")?;
//! assert_eq!(&open(&key, &nonce, b"header", &sealed)?[..], b"secret");
//! assert!(open(&key, &nonce, b"other header", &sealed).is_err());
//! # Ok::<(), redoubt_crypto::Error>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod aead;
mod derive;

pub use aead::{NONCE_LEN, TAG_LEN, XNONCE_LEN, open, open_x, seal, seal_x};
pub use derive::{DeriveHasher, derive, is_versioned};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a [`Key`], in bytes.
pub const KEY_LEN: usize = 32;

/// What went wrong in a primitive. Never carries key or plaintext bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The plaintext is longer than the cipher can seal under one nonce.
    #[error("plaintext too large to seal")]
    TooLarge,
    /// Opening failed: the key, nonce, associated data or ciphertext is not the one sealed.
    #[error("authentication failed")]
    Authentication,
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random(#[source] getrandom::Error),
}

/// A 256-bit symmetric key: wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the operating system's random number generator.
    pub fn random() -> Result<Self, Error> {
        let mut key = Self([0; KEY_LEN]);
        fill_random(&mut key.0)?;
        Ok(key)
    }

    /// The key's bytes, for the few places that must hand them on (a cipher, a KDF input).
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Fills `buf` from the operating system's random number generator.
pub fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(Error::Random)
}

/// Whether `a` and `b` are equal, in time independent of where they differ.
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether all 32 bytes are zero, looking at every byte (no early exit): how an x25519 caller
/// rejects the all-zero shared secret of a low-order point.
pub fn is_all_zero(bytes: &[u8; 32]) -> bool {
    bytes.iter().fold(0u8, |acc, b| acc | b) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ_and_fill_the_buffer() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(!is_all_zero(&a));
        assert_ne!(Key::random().unwrap().expose(), &[0; 32]);
        fill_random(&mut []).unwrap();
    }

    #[test]
    fn comparisons() {
        let a = [3u8; 32];
        let mut b = a;
        assert!(ct_eq(&a, &b));
        b[31] ^= 1;
        assert!(!ct_eq(&a, &b));
        assert!(is_all_zero(&[0; 32]));
        let mut z = [0u8; 32];
        z[17] = 0x80;
        assert!(!is_all_zero(&z));
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", Key::from_bytes([7; 32])), "Key(..)");
    }
}
