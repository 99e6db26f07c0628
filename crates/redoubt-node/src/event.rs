//! What the node reports to its owner, and what a pull returns.

use libp2p::{Multiaddr, PeerId};
use redoubt_vault::MergeReport;

/// Something the node did on its own (serving a peer), for logs and the app's display; nothing
/// depends on an event arriving (every change is committed before it is acknowledged).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum NodeEvent {
    /// The node listens on this address.
    Listening {
        /// The full address, ending with `/p2p/PEER_ID`.
        addr: Multiaddr,
    },
    /// A peer pulled from us; the session finished.
    Served {
        /// The peer.
        peer: PeerId,
        /// Records sent.
        records: u64,
        /// Value bytes sent.
        bytes: u64,
    },
    /// A request was refused for lack of a grant (it is also logged).
    Denied {
        /// The peer.
        peer: PeerId,
        /// What was refused.
        reason: String,
    },
    /// A pull merged records into our vault (ours or one a peer's push invited); each batch
    /// was committed as it merged.
    Merged {
        /// The peer pulled from.
        peer: PeerId,
        /// What the merge did.
        report: MergeReport,
    },
    /// The first connection with a peer opened (either side dialed). An app that keeps
    /// peers in sync may sync with it now.
    Connected {
        /// The peer.
        peer: PeerId,
        /// Where we reached it, when we dialed it (an address it listens on); `None` when it
        /// dialed us (its side of the connection is no address to dial back).
        dialed: Option<Multiaddr>,
    },
    /// A paired peer was reached at these addresses (each ending with `/p2p/PEER_ID`, the most
    /// recent first) by a dial of ours, whose handshake proved its id: one the app asked for,
    /// the one a pairing used, or one that checked an address it announced (identify) or mDNS
    /// found. They are kept in the vault's address book ([`crate::Vault::address_book`]); what
    /// is only claimed is never told here.
    Addresses {
        /// The peer.
        peer: PeerId,
        /// Where it was seen.
        addrs: Vec<Multiaddr>,
    },
    /// A pull a peer invited failed; nothing unverified was merged.
    PullFailed {
        /// The peer.
        peer: PeerId,
        /// Why.
        error: String,
    },
}

/// What one pull did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PullOutcome {
    /// The merge report over every received record.
    pub report: MergeReport,
    /// Records received and verified.
    pub records: u64,
    /// Chunks received.
    pub chunks: u64,
    /// Frame bytes sent (requests).
    pub bytes_sent: u64,
    /// Frame bytes received (responses).
    pub bytes_received: u64,
}

/// What a two-way sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncOutcome {
    /// What our pull merged here.
    pub pulled: PullOutcome,
    /// What the peer merged when it pulled from us.
    pub pushed: MergeReport,
}

/// Progress of a pull's complement stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Value bytes received so far.
    pub bytes: u64,
    /// Value bytes announced by the responder.
    pub total: u64,
}
