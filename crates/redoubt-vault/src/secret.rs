//! The secret value newtype.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret value: wiped from memory on drop, never printed, revealed only by [`Self::expose`].
///
/// ```
/// use redoubt_vault::SecretValue;
/// let secret = SecretValue::new(b"hunter2".to_vec());
/// assert_eq!(format!("{secret:?}"), "SecretValue(..)");
/// assert_eq!(secret.expose(), b"hunter2");
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Takes ownership of the bytes. Copies the caller made before (for example while a `Vec`
    /// grew) are the caller's to wipe.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Reveals the secret bytes. Every call site that reveals a secret is a place to audit.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(..)")
    }
}
