//! The node crate's error type.

use redoubt_protocol::{RefusalCode, pairing::PairRefusal};

/// What went wrong in a node operation. Messages name peers, addresses and clients, never
/// secret values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer could not be reached at the address.
    #[error("peer unreachable at {addr}")]
    Unreachable {
        /// The address dialed.
        addr: String,
    },
    /// A device answered at the address, but with another peer id than the address names (so
    /// nothing was sent to it).
    #[error(
        "the device at {addr} is peer {obtained}, not {expected}: check the address, or run \
         `redoubt id` on that device"
    )]
    WrongPeer {
        /// The address dialed.
        addr: String,
        /// The peer id the address named.
        expected: String,
        /// The peer id the device proved it holds.
        obtained: String,
    },
    /// The peer refused: no grant allows the request.
    #[error("permission denied by peer: {detail}")]
    PermissionDenied {
        /// The peer's explanation.
        detail: String,
    },
    /// The peer refused for another reason.
    #[error("refused by peer: {code}: {detail}")]
    Refused {
        /// Why.
        code: RefusalCode,
        /// The peer's explanation.
        detail: String,
    },
    /// The stream failed authentication or carried a record that did not match its shape:
    /// nothing from the failing chunk was merged.
    #[error("tampered stream: {0}")]
    Tampered(String),
    /// The connection ended before the final chunk; verified chunks were merged, a new sync
    /// completes the rest.
    #[error("truncated stream: connection lost after {chunks} chunks, before the final one")]
    Truncated {
        /// Chunks received and merged.
        chunks: u64,
    },
    /// The peer did not answer in time.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// The peer sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(#[from] redoubt_protocol::Error),
    /// A transport failure other than the ones above.
    #[error("transport error: {0}")]
    Transport(String),
    /// The address cannot be dialed as given.
    #[error("invalid peer address {addr:?}: {reason}")]
    InvalidAddress {
        /// The address.
        addr: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A vault rule was broken while merging.
    #[error(transparent)]
    Vault(#[from] redoubt_vault::Error),
    /// The node's event loop has stopped.
    #[error("the node has shut down")]
    Shutdown,
    /// The node stopped, but its vault cannot be given back: another clone of the handle
    /// still holds it (it closes when the last one is dropped).
    #[error("the node stopped, but another clone of its handle still holds the vault")]
    VaultInUse,
    /// Pairing failed on this side: a malformed code or payload, no device answering, a
    /// pairing already over (a refusal by the other device is [`Error::PairRefused`]).
    #[error("pairing failed: {0}")]
    Pairing(String),
    /// The other device refused the pairing, for the reason it gave: a wrong code (burned on
    /// the host; start a new pairing), a used or expired one, a declined request.
    #[error("pairing failed: {0}")]
    PairRefused(PairRefusal),
    /// Our own grant table does not let the peer take part in this transfer: we send records
    /// of a client only to a peer we grant `read` on it, and merge records of a client only
    /// from a peer we grant `write` on it.
    #[error("no {right} grant for peer {peer} on client {client:?} in this vault")]
    NotGranted {
        /// The grant that is missing: `read` (to send to the peer) or `write` (to merge from it).
        right: &'static str,
        /// The peer, in base58.
        peer: String,
        /// The client path, shown lossily as UTF-8.
        client: String,
    },
    /// A merge would make a client hold more than the node's quota allows; nothing of the
    /// refused batch was merged.
    #[error("quota exceeded on client {client:?}: {what}")]
    QuotaExceeded {
        /// The client path, shown lossily as UTF-8.
        client: String,
        /// Which limit, with the figures.
        what: String,
    },
    /// The peer speaks only a protocol version whose session keys bind no peer ids, and this
    /// node does not allow such sessions.
    #[error(
        "peer {peer} speaks only /redoubt/sync/{version}, whose sessions are not bound to both \
         peer ids; this node refuses them (NodeConfig::allow_unbound, `--allow-unbound`)"
    )]
    Unbound {
        /// The peer, in base58.
        peer: String,
        /// The newest version it speaks.
        version: u8,
    },
    /// The vault's store failed (a commit, a read, a sealed row that does not open): what the
    /// failing change would have made is neither kept nor acknowledged.
    #[error(transparent)]
    Store(redoubt_store::Error),
    /// The sync layer refused for a reason other than grants, quota and vault rules (which map
    /// to [`Self::NotGranted`], [`Self::QuotaExceeded`] and [`Self::Vault`]). No such variant
    /// exists today: this is the catch-all `From<redoubt_sync::Error>` needs because that enum
    /// is `#[non_exhaustive]`, so a variant added there maps here rather than fail the build.
    #[error(transparent)]
    Sync(redoubt_sync::Error),
    /// Discovery on the local network found no such peer in time.
    #[error("peer {peer} not found on the local network (is discovery on and the peer running?)")]
    NotDiscovered {
        /// The peer id looked for.
        peer: String,
    },
}

impl Error {
    /// Whether the peer refused because it holds no such client. A two-way sync tolerates it
    /// in one direction: the other side then creates the client.
    pub fn is_client_not_found(&self) -> bool {
        matches!(
            self,
            Self::Refused {
                code: RefusalCode::ClientNotFound,
                ..
            }
        )
    }

    /// Whether the peer refused for lack of a grant on its side. A sync of every client
    /// tolerates it in either direction: the peer's table allows nothing that way, so nothing
    /// moves.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::PermissionDenied { .. })
    }

    /// Maps a protocol error met while receiving, keeping refusals and tampering distinct.
    pub(crate) fn from_protocol(e: redoubt_protocol::Error) -> Self {
        use redoubt_protocol::Error as P;
        match e {
            P::Refused {
                code: RefusalCode::PermissionDenied,
                detail,
            } => Self::PermissionDenied {
                detail: printable(&detail),
            },
            P::Refused { code, detail } => Self::Refused {
                code,
                detail: printable(&detail),
            },
            e @ (P::Tampered { .. } | P::BadRecord { .. } | P::WeakKey) => {
                Self::Tampered(e.to_string())
            }
            e => Self::Protocol(e),
        }
    }
}

impl From<redoubt_sync::Error> for Error {
    /// Keeps the node's own variants for grants, quota and vault rules.
    fn from(e: redoubt_sync::Error) -> Self {
        use redoubt_sync::Error as S;
        match e {
            S::NotGranted {
                right,
                peer,
                client,
            } => Self::NotGranted {
                right,
                peer,
                client,
            },
            S::QuotaExceeded { client, what } => Self::QuotaExceeded { client, what },
            S::Vault(e) => Self::Vault(e),
            e => Self::Sync(e),
        }
    }
}

impl From<redoubt_store::Error> for Error {
    /// Keeps the node's own variant for vault rules (a bad path, no record to delete).
    fn from(e: redoubt_store::Error) -> Self {
        match e {
            redoubt_store::Error::Vault(e) => Self::Vault(e),
            e => Self::Store(e),
        }
    }
}

impl redoubt_sync::LinkError for Error {
    fn is_client_not_found(&self) -> bool {
        Error::is_client_not_found(self)
    }

    fn is_permission_denied(&self) -> bool {
        Error::is_permission_denied(self)
    }
}

/// A peer's text with control characters (newlines, escapes) replaced, so it cannot forge log
/// lines or terminal output when shown.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
