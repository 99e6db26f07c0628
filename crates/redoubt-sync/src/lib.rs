//! Redoubt's sync layer, apart from any transport: the grant rule (what may leave us and what
//! may enter us, per peer and client), the quota on what peers may make us hold, the merge of
//! a verified batch under both, and the pull-then-push orchestration of a two-way sync over
//! any [`Link`]. The libp2p node and the sync through dumb storage both build on it; it knows
//! no sockets, no async runtime and no libp2p.
//!
//! A peer is named by its text id, as the access table stores it (base58 for a libp2p peer).
//!
//! ```
//! use redoubt_protocol::{Mode, Received};
//! use redoubt_sync::{Direction, MergeRules, InMemory, granted_mode, merge_batch};
//! use redoubt_vault::{AccessTable, ClientId, Instance, Location, NodeId, Rights, SecretValue};
//!
//! let peer = "12D3KooWExamplePeer";
//! let mut access = AccessTable::default();
//! access.grant(peer.as_bytes(), b"alice", Rights { read: false, write: true })?;
//! // We may pull "alice" from the peer, not offer it.
//! let alice = Mode::Full { client: b"alice".to_vec() };
//! assert!(granted_mode(&access, peer, alice.clone(), Direction::In)?.is_some());
//! assert!(granted_mode(&access, peer, alice, Direction::Out).is_err());
//!
//! // A verified batch the peer sent merges under those grants and the quota.
//! let loc = Location::new("wallet", "seed")?;
//! let mut theirs = Instance::new(NodeId::from_bytes([2; 16]));
//! theirs.write(b"alice", &loc, SecretValue::new(b"s3cret".to_vec()))?;
//! let record = theirs.record(&ClientId::from_path(b"alice"), loc.ids()).unwrap().clone();
//! let batch = vec![Received { client: b"alice".to_vec(), record }];
//!
//! let mut ours = InMemory::new(Instance::new(NodeId::from_bytes([1; 16])), access);
//! let merged = merge_batch(&mut ours, peer, batch, &MergeRules::default())?;
//! assert_eq!(merged.report.added, 1);
//! assert!(ours.instance().read(b"alice", &loc).is_some());
//! assert!(merged.refused_ahead.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod grants;
mod merge;
pub mod quota;
mod two_way;

pub use error::Error;
pub use grants::{Direction, granted_clients, granted_mode};
pub use merge::{
    BatchMerged, InMemory, MergeRules, MergeTarget, RefusedAhead, check_writable, merge_batch,
};
pub use quota::{Quota, Usage};
pub use two_way::{Directions, Failed, Link, LinkError, Note, Step, TwoWay, pull_then_push};
