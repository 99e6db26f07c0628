//! The sync crate's error type.

/// What the sync layer refused. Messages name peers and clients, never secret values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Our own grant table does not let the peer take part in this transfer: we send records
    /// of a client only to a peer we grant `read` on it, and merge records of a client only
    /// from a peer we grant `write` on it.
    #[error("no {right} grant for peer {peer} on client {client:?} in this vault")]
    NotGranted {
        /// The grant that is missing: `read` (to send to the peer) or `write` (to merge from it).
        right: &'static str,
        /// The peer, as its text id (base58 for a libp2p peer).
        peer: String,
        /// The client path, shown lossily as UTF-8.
        client: String,
    },
    /// A merge would make a client hold more than the quota allows; nothing of the refused
    /// batch was merged.
    #[error("quota exceeded on client {client:?}: {what}")]
    QuotaExceeded {
        /// The client path, shown lossily as UTF-8.
        client: String,
        /// Which limit, with the figures.
        what: String,
    },
    /// A vault rule was broken while merging.
    #[error(transparent)]
    Vault(#[from] redoubt_vault::Error),
}
