//! The remote crate's error type.

/// What went wrong setting up or syncing with a remote. Never carries a passphrase, a key, a
/// secret value or a client path; objects are named by their storage name (opaque) and devices
/// by their opaque device id.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not one this build can sync with.
    #[error("unsupported remote URL: {0}")]
    InvalidUrl(String),
    /// A backend option (from the caller) is not one the backend knows.
    #[error("unknown option {key} for the {backend} backend")]
    InvalidOption {
        /// The backend.
        backend: &'static str,
        /// The option's name.
        key: String,
    },
    /// The storage already holds a key object: it was set up before (join it instead).
    #[error("the remote storage is already set up (it holds a key object): join it instead")]
    AlreadySetUp,
    /// The storage holds no key object: nobody set it up (add it instead).
    #[error("the remote storage is not set up (no key object): add it from the first device")]
    NotSetUp,
    /// The passphrase does not open the key object (or the key object was altered).
    #[error("wrong recovery passphrase (or the key object was altered)")]
    WrongPassphrase,
    /// The key object asks for KDF parameters outside the accepted limits.
    #[error("the key object's KDF parameters are refused: {0}")]
    InvalidKdfParams(String),
    /// A remote with this name already exists in the vault.
    #[error("this vault already has a remote named {0}")]
    RemoteExists(String),
    /// No remote with this name in the vault.
    #[error("this vault has no remote named {0}")]
    NoSuchRemote(String),
    /// An object on the storage is larger than its format allows; refused before reading it.
    #[error("object {name} is {size} bytes, over the {max}-byte cap of its kind")]
    TooLarge {
        /// The object's storage name.
        name: String,
        /// Its size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// An object fails to open or decode: altered, truncated, moved from another name, or
    /// not sealed under this remote's storage key.
    #[error("object {name} is refused: {reason}")]
    Tampered {
        /// The object's storage name.
        name: String,
        /// What failed.
        reason: &'static str,
    },
    /// A device's segment chain does not lead to its head, or its head went backwards (a
    /// segment deleted or replaced, or a head rolled back).
    #[error("device {device}: {reason}")]
    ChainBroken {
        /// The opaque device id.
        device: String,
        /// What disagrees.
        reason: &'static str,
    },
    /// This device's head on the storage is not the one it last wrote: another vault with
    /// the same identity (a cloned or restored vault) writes under the same device id.
    #[error(
        "device {device}'s head on the storage was written by someone else (a cloned or restored vault with this identity?)"
    )]
    HeadConflict {
        /// The opaque device id.
        device: String,
    },
    /// A local journal event could not be carried (an event schema this build cannot filter
    /// by client).
    #[error("journal event {seq} cannot be uploaded: {reason}")]
    Unsupported {
        /// The local event's sequence number.
        seq: u64,
        /// Why.
        reason: &'static str,
    },
    /// The remote's state in the vault is malformed.
    #[error("the remote state stored in the vault is malformed: {0}")]
    State(&'static str),
    /// Bytes do not follow their format, or a field is over its cap.
    #[error("malformed bytes: {0}")]
    Malformed(&'static str),
    /// The storage backend failed (network, permissions, a missing object) on one request.
    #[error("storage: {request} {name} failed: {source}")]
    Storage {
        /// The kind of request: `list`, `get`, `put-create`, `put-update`, `delete`.
        request: &'static str,
        /// The object's (or prefix's) storage name, opaque.
        name: String,
        /// What the backend said.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A storage request did not answer within the remote's per-request timeout.
    #[error("storage: {request} {name} timed out after {after_ms} ms")]
    Timeout {
        /// The kind of request: `list`, `get`, `put-create`, `put-update`, `delete`.
        request: &'static str,
        /// The object's (or prefix's) storage name, opaque.
        name: String,
        /// The timeout.
        after_ms: u64,
    },
    /// A segment a device's chain names is gone from the storage, and no base of that device
    /// covers it (deleted by someone with access to the storage).
    #[error("device {device}: segment {name}, which its chain names, is missing")]
    SegmentMissing {
        /// The opaque device id.
        device: String,
        /// The missing segment's storage name.
        name: String,
    },
    /// The vault's store failed.
    #[error(transparent)]
    Store(#[from] redoubt_store::Error),
    /// The vault model refused something (a path, a record).
    #[error(transparent)]
    Vault(#[from] redoubt_vault::Error),
    /// A cryptographic primitive failed (the random number generator).
    #[error("cryptography: {0}")]
    Crypto(#[from] redoubt_crypto::Error),
}

impl Error {
    /// A failed storage request.
    pub(crate) fn storage(request: &'static str, name: &str, e: object_store::Error) -> Self {
        Self::Storage {
            request,
            name: name.to_owned(),
            source: Box::new(e),
        }
    }

    /// Whether this is the backend saying the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Storage { source, .. } if matches!(**source, object_store::Error::NotFound { .. }))
    }
}

impl redoubt_vault::codec::CodecError for Error {
    fn malformed(what: &'static str) -> Self {
        Self::Malformed(what)
    }
}
