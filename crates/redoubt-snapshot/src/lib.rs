//! Redoubt's encrypted snapshot file.
//!
//! A snapshot holds a node's whole state: its identity key, its table of peer permissions and
//! every client's records. On disk it is a 136-byte header (magic, format version, Argon2id
//! parameters and salt, nonce, password check, body length, checksum) and the body sealed with
//! XChaCha20-Poly1305 under a key derived from the password, the header authenticated as
//! associated data. `docs/snapshot-format.md` specifies every byte.
//!
//! ```
//! use redoubt_snapshot::{KdfParams, Password, Snapshot, VaultFile};
//! use redoubt_vault::{Location, SecretValue};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("vault.rdb");
//! let password = Password::new(b"correct horse battery staple".to_vec());
//! let file = VaultFile::lock_exclusive(&path)?;
//! let mut snapshot = Snapshot::generate()?;
//! let loc = Location::new("wallet", "seed")?;
//! snapshot.instance.write(b"alice", &loc, SecretValue::new(b"s3cret".to_vec()))?;
//! // Tests may lower the KDF cost; real vaults use KdfParams::default().
//! file.create(&snapshot, &password, KdfParams::insecure_fast())?;
//! let (loaded, _key) = file.load(&password)?;
//! assert_eq!(loaded.instance.read(b"alice", &loc).map(|v| v.expose()), Some(&b"s3cret"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod body;
mod codec;
mod crypto;
mod error;
mod file;
mod format;
mod identity;

pub use crypto::{BODY_KEY_CONTEXT, PASSWORD_CHECK_CONTEXT, Password, SealKey};
pub use error::Error;
pub use file::VaultFile;
pub use format::{FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_BODY_LEN};
pub use identity::{Identity, NODE_ID_CONTEXT};
use redoubt_vault::{AccessTable, Instance};

/// Argon2id cost parameters, stored in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: RFC 9106's second recommendation, one lane for small devices.
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// Upper bounds a loader accepts, so a hostile header cannot demand unbounded memory or time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfLimits {
    /// Most memory in KiB.
    pub max_memory_kib: u32,
    /// Most passes.
    pub max_iterations: u32,
    /// Most lanes.
    pub max_parallelism: u32,
}

impl Default for KdfLimits {
    /// 2 GiB, 64 passes, 16 lanes.
    fn default() -> Self {
        Self {
            max_memory_kib: 2 * 1024 * 1024,
            max_iterations: 64,
            max_parallelism: 16,
        }
    }
}

impl KdfParams {
    /// Cheap parameters (8 KiB, 1 pass) for tests only: they make offline guessing cheap.
    pub fn insecure_fast() -> Self {
        Self {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Checks the parameters against the default [`KdfLimits`] and Argon2's own minimums.
    pub fn check(&self) -> Result<(), Error> {
        self.check_within(&KdfLimits::default())
    }

    /// Checks the parameters against `limits` and Argon2's own minimums (at least 8 KiB per
    /// lane), before any KDF runs: what a file may demand of this machine. The store applies
    /// the same rule.
    pub fn check_within(&self, limits: &KdfLimits) -> Result<(), Error> {
        let ok = (1..=limits.max_parallelism).contains(&self.parallelism)
            && (1..=limits.max_iterations).contains(&self.iterations)
            && (8 * self.parallelism..=limits.max_memory_kib).contains(&self.memory_kib);
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidKdfParams(format!(
                "memory {} KiB, {} passes, {} lanes (accepted: up to {} KiB, {} passes, {} lanes; \
                 at least 8 KiB per lane)",
                self.memory_kib,
                self.iterations,
                self.parallelism,
                limits.max_memory_kib,
                limits.max_iterations,
                limits.max_parallelism
            )))
        }
    }
}

/// A node's whole state as a snapshot stores it.
#[derive(Debug)]
pub struct Snapshot {
    /// The node's identity key.
    pub identity: Identity,
    /// Which peer may read or write which client.
    pub access: AccessTable,
    /// The records.
    pub instance: Instance,
}

impl Snapshot {
    /// An empty snapshot for `identity`.
    pub fn new(identity: Identity) -> Self {
        let node = identity.node_id();
        Self {
            identity,
            access: AccessTable::default(),
            instance: Instance::new(node),
        }
    }

    /// An empty snapshot with a fresh random identity.
    pub fn generate() -> Result<Self, Error> {
        Ok(Self::new(Identity::generate()?))
    }

    /// The complete file bytes, sealed under `key` with a fresh random nonce.
    pub fn seal(&self, key: &SealKey) -> Result<Vec<u8>, Error> {
        let body = body::encode(self)?;
        let mut nonce = [0u8; 24];
        crypto::fill_random(&mut nonce)?;
        let header = format::Header {
            params: key.params,
            salt: key.salt,
            nonce,
            check: key.check,
            body_len: body.len() as u64 + format::TAG_LEN,
        };
        if header.body_len > MAX_BODY_LEN {
            return Err(Error::TooLarge {
                len: header.body_len,
                max: MAX_BODY_LEN,
            });
        }
        let aad = header.encode();
        let ciphertext = crypto::seal(&key.body_key, &nonce, &aad, &body)?;
        let mut out = Vec::with_capacity(aad.len() + ciphertext.len());
        out.extend_from_slice(&aad);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Opens snapshot bytes with `password`, with the default [`KdfLimits`].
    pub fn open(bytes: &[u8], password: &Password) -> Result<(Self, SealKey), Error> {
        Self::open_with_limits(bytes, password, &KdfLimits::default())
    }

    /// Opens snapshot bytes, refusing KDF parameters beyond `limits` before running the KDF.
    ///
    /// Errors, in the order checked: [`Error::NotASnapshot`], [`Error::UnsupportedVersion`],
    /// [`Error::Truncated`], [`Error::Corrupted`] (header), [`Error::UnsupportedAlgorithm`],
    /// [`Error::TooLarge`], [`Error::InvalidKdfParams`], [`Error::WrongPassword`],
    /// [`Error::Corrupted`] (body), [`Error::Malformed`].
    pub fn open_with_limits(
        bytes: &[u8],
        password: &Password,
        limits: &KdfLimits,
    ) -> Result<(Self, SealKey), Error> {
        let (header, ciphertext) = format::Header::parse(bytes)?;
        header.params.check_within(limits)?;
        let key = SealKey::derive(password, header.params, header.salt)?;
        if !redoubt_crypto::ct_eq(&key.check, &header.check) {
            return Err(Error::WrongPassword);
        }
        let aad = &bytes[..HEADER_LEN];
        let body = crypto::open(&key.body_key, &header.nonce, aad, ciphertext)?;
        Ok((body::decode(&body)?, key))
    }
}

/// Entry points for the fuzz targets in `fuzz/`. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use crate::{KdfLimits, Password, Snapshot};

    /// Opens arbitrary bytes as a snapshot with tiny KDF limits and the password of
    /// `tests/vectors/snapshot-v1.rdb`, so that seed reaches the body decoder.
    pub fn open_snapshot(data: &[u8]) {
        let limits = KdfLimits {
            max_memory_kib: 64,
            max_iterations: 2,
            max_parallelism: 1,
        };
        let _ = Snapshot::open_with_limits(
            data,
            &Password::new(b"redoubt test vector v1".to_vec()),
            &limits,
        );
    }

    /// Decodes arbitrary bytes as a plaintext snapshot body.
    pub fn decode_body(data: &[u8]) {
        let _ = crate::body::decode(data);
    }
}
