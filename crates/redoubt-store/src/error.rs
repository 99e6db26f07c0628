//! The store crate's error type.

use std::path::PathBuf;

/// What went wrong opening, reading or changing a store. Never carries a password, a key, a
/// secret value or a plaintext path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No file at the path.
    #[error("no store at {}", .0.display())]
    NotFound(PathBuf),
    /// `create` found something already at the path; it never overwrites.
    #[error("{} already exists; refusing to overwrite it with a new store", .0.display())]
    AlreadyExists(PathBuf),
    /// The file is not a Redoubt store: not a redb database, or a redb database without the
    /// store's format row.
    #[error("{} is not a Redoubt store: {reason}", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: &'static str,
    },
    /// The store's format version is not one this build reads.
    #[error("unsupported store format version {0} (this build reads versions 1 and 2)")]
    UnsupportedVersion(u16),
    /// The KDF parameters are out of the accepted range (creating), or a file asks for more
    /// than the caller's `KdfLimits` allow (opening).
    #[error("invalid KDF parameters: {0}")]
    InvalidKdfParams(String),
    /// The password does not open this store (its check value does not match).
    #[error("wrong password")]
    WrongPassword,
    /// The database file is damaged (truncated, or altered since it was written): the
    /// database layer's own checks failed.
    #[error("store file {} is damaged (truncated or altered): {detail}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The database layer's message.
        detail: String,
    },
    /// A store row other than a record (format, KDF, key, identity, clock, grant) is missing
    /// or fails to open or decode.
    #[error("store is corrupted: {0}")]
    Corrupted(&'static str),
    /// A sealed record row fails to open or decode. Names the row by its keyed id (the table
    /// key, in hex), never by its paths.
    #[error("record row {row} is corrupted: {reason}")]
    RecordCorrupted {
        /// The row's table key, hex.
        row: String,
        /// What failed.
        reason: &'static str,
    },
    /// A journal event fails to open or decode, or does not follow the one before it (its
    /// parent hash or sequence number disagrees, or an event is missing). Names the event by
    /// its sequence number.
    #[error("journal event {seq} is broken: {reason}")]
    JournalBroken {
        /// The event's sequence number (its row key).
        seq: u64,
        /// What failed.
        reason: &'static str,
    },
    /// Another process (or another handle in this one) has the store open.
    #[error("store {} is in use by another process", .0.display())]
    Locked(PathBuf),
    /// A grant names its peer by raw bytes rather than by its text id (base58 for a libp2p
    /// peer, what a connecting peer is checked against): such a grant would match no one.
    #[error(
        "a grant's peer id must be its text form (base58 for a libp2p peer, as `redoubt id` \
         prints), not raw bytes"
    )]
    PeerIdNotText,
    /// Bytes given to the codec do not follow their format, or a field is over its cap.
    #[error("malformed bytes: {0}")]
    Malformed(&'static str),
    /// The database layer failed (I/O, a transaction, a commit).
    #[error("store database: {0}")]
    Database(#[source] Box<redb::Error>),
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
    /// A cryptographic primitive failed (the random number generator, or sealing).
    #[error("cryptography: {0}")]
    Crypto(#[from] redoubt_crypto::Error),
    /// A vault-model rule refused the change (a path, a value size, an exhausted clock, no
    /// record to delete).
    #[error(transparent)]
    Vault(#[from] redoubt_vault::Error),
}

impl redoubt_vault::codec::CodecError for Error {
    fn malformed(what: &'static str) -> Self {
        Self::Malformed(what)
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Self::Database(Box::new(redb::Error::from(e)))
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);
