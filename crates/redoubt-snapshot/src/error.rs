//! The snapshot crate's error type.

use std::path::PathBuf;

/// What went wrong reading or writing a snapshot. Never carries a password or a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not start with the snapshot magic: this is not a Redoubt snapshot.
    #[error("not a Redoubt snapshot (bad magic bytes)")]
    NotASnapshot,
    /// The file ends before the header or the body it announces.
    #[error("snapshot is truncated: {actual} bytes, expected {expected}")]
    Truncated {
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The format version is not one this build reads.
    #[error("unsupported snapshot format version {0} (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// The header names a KDF or cipher this build does not know.
    #[error("unsupported snapshot algorithm: {0}")]
    UnsupportedAlgorithm(&'static str),
    /// The header's KDF parameters are out of the accepted range.
    #[error("invalid KDF parameters: {0}")]
    InvalidKdfParams(String),
    /// The password does not open this snapshot.
    #[error("wrong password")]
    WrongPassword,
    /// A byte was changed: a checksum or the authentication tag does not match.
    #[error("snapshot is corrupted: {0}")]
    Corrupted(&'static str),
    /// The decrypted body does not follow the format.
    #[error("snapshot body is malformed: {0}")]
    Malformed(&'static str),
    /// The snapshot is larger than this build accepts.
    #[error("snapshot too large: {len} bytes (at most {max})")]
    TooLarge {
        /// Announced or actual length.
        len: u64,
        /// The cap.
        max: u64,
    },
    /// Another process holds the vault's lock.
    #[error(
        "vault {} is in use by another process (lock held on {})",
        path.display(),
        lock.display()
    )]
    Locked {
        /// The snapshot path.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// Saving needs the exclusive lock, but this handle holds a shared one.
    #[error("vault {} was opened read-only", .0.display())]
    ReadOnly(PathBuf),
    /// `create` found a snapshot already there.
    #[error("a vault already exists at {}", .0.display())]
    AlreadyExists(PathBuf),
    /// Something already exists at a save's fresh temporary path (a name no save reuses):
    /// the save refuses to write through it, whatever it is.
    #[error(
        "{} already exists; refusing to write the snapshot through it",
        .0.display()
    )]
    TempFileExists(PathBuf),
    /// No snapshot at the path.
    #[error("no vault at {} (run `redoubt init` first)", .0.display())]
    NotFound(PathBuf),
    /// A file system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The system random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
    /// A vault-model rule was broken by the snapshot's content.
    #[error(transparent)]
    Vault(#[from] redoubt_vault::Error),
}

impl Error {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}
