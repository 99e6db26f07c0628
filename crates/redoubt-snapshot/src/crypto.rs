//! Every cryptographic step of the snapshot, each a short function: KDF, subkeys, seal, open.

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use zeroize::Zeroizing;

use crate::{Error, KdfParams};

/// Subkey context: the body encryption key.
pub const BODY_KEY_CONTEXT: &str = "redoubt snapshot v1 body key";
/// Subkey context: the password check value stored in the header.
pub const PASSWORD_CHECK_CONTEXT: &str = "redoubt snapshot v1 password check";

/// A password: wiped on drop, never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// Wraps password bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Keys derived from a password: kept after a load so that saving needs no second KDF run.
#[derive(Clone)]
pub struct SealKey {
    pub(crate) params: KdfParams,
    pub(crate) salt: [u8; 16],
    pub(crate) body_key: Zeroizing<[u8; 32]>,
    pub(crate) check: [u8; 32],
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl SealKey {
    /// Runs Argon2id over the password with a fresh random salt.
    pub fn generate(password: &Password, params: KdfParams) -> Result<Self, Error> {
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        Self::derive(password, params, salt)
    }

    /// Runs Argon2id (version 0x13, 32-byte output) and derives the subkeys.
    pub fn derive(password: &Password, params: KdfParams, salt: [u8; 16]) -> Result<Self, Error> {
        let argon_params = argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(|e| Error::InvalidKdfParams(e.to_string()))?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon_params,
        );
        let mut master = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(password.expose(), &salt, master.as_mut())
            .map_err(|e| Error::InvalidKdfParams(e.to_string()))?;
        Ok(Self {
            params,
            salt,
            body_key: Zeroizing::new(blake3::derive_key(BODY_KEY_CONTEXT, master.as_ref())),
            check: blake3::derive_key(PASSWORD_CHECK_CONTEXT, master.as_ref()),
        })
    }

    /// The KDF parameters this key was derived with.
    pub fn params(&self) -> KdfParams {
        self.params
    }
}

/// Seals `plaintext` with XChaCha20-Poly1305, binding `aad`.
pub(crate) fn seal(
    key: &[u8; 32],
    nonce: &[u8; 24],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| Error::Corrupted("encryption failed"))
}

/// Opens what [`seal`] made; any change to key, nonce, `aad` or ciphertext fails.
pub(crate) fn open(
    key: &[u8; 32],
    nonce: &[u8; 24],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Error> {
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| Error::Corrupted("body authentication failed"))
}

/// Compares two byte strings in time independent of where they differ.
pub(crate) fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}
