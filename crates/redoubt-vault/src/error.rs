//! The vault crate's error type.

/// What went wrong in a vault operation. Messages name paths, never secret values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client, vault or record path is empty or too long.
    #[error("invalid {what}: {len} bytes (must be 1 to {max})", max = crate::MAX_PATH_LEN)]
    InvalidPath {
        /// Which path.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A secret value is larger than [`crate::MAX_VALUE_LEN`].
    #[error("secret value too large: {len} bytes (at most {max})", max = crate::MAX_VALUE_LEN)]
    ValueTooLarge {
        /// Its length.
        len: usize,
    },
    /// There is no live record at the location.
    #[error("no record at {location}")]
    RecordNotFound {
        /// `client/vault/record`, paths shown lossily as UTF-8.
        location: String,
    },
    /// The record holds no version with the hash asked for (neither current nor in its
    /// history).
    #[error("no version {version} of the record at {location}")]
    VersionNotFound {
        /// `client/vault/record`, paths shown lossily as UTF-8.
        location: String,
        /// The version asked for, as hex.
        version: String,
    },
    /// A sync selected a client the source does not hold.
    #[error("client {client:?} not found in the source")]
    ClientNotFound {
        /// The client path, shown lossily as UTF-8.
        client: String,
    },
    /// A peer id is empty or too long for the access table.
    #[error("invalid peer id: {len} bytes (must be 1 to {max})", max = crate::MAX_PEER_ID_LEN)]
    InvalidPeerId {
        /// Its length.
        len: usize,
    },
    /// This node's clock reads `(u64::MAX, u32::MAX)`: no later stamp exists, so it cannot
    /// write again (a clock never goes back or reissues a stamp).
    #[error("this node's clock is exhausted: no stamp after (u64::MAX, u32::MAX) exists")]
    ClockExhausted,
    /// Bytes given to [`crate::codec`] do not follow their format (or a field to encode is
    /// over its cap): the message names the field.
    #[error("malformed bytes: {0}")]
    Malformed(&'static str),
}
