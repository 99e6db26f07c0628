//! Redoubt's vault model: the data a node keeps and the rules by which replicas converge.
//!
//! An [`Instance`] holds, per client, records addressed by a [`Location`] (vault path, record
//! path). Every version carries a hybrid logical clock [`Stamp`] and names the version it
//! replaced (its parent); a deletion leaves a tombstone, and a record keeps its earlier and
//! losing versions in a bounded [`history`].
//! A [`Shape`] summarizes a version for reconciliation; [`Instance::complement`] gives what
//! another replica lacks; [`Instance::sync_from`] merges another replica under a
//! [`MergePolicy`] and returns a [`MergeReport`]. Merges refuse versions stamped more than
//! [`MergeBounds`] allow ahead of the receiver's clock, so no writer's clock can freeze another's.
//!
//! This crate does no I/O: files live in `redoubt-snapshot`, the network in later layers. Both
//! encode with [`codec`], the one bounded byte codec, and write records with
//! [`codec::record::RecordLayout`], one frozen layout per released format.
//!
//! ```
//! use redoubt_vault::{Instance, Location, NodeId, SecretValue, SyncConfig};
//!
//! let loc = Location::new("wallet", "seed")?;
//! let mut desktop = Instance::new(NodeId::from_bytes([1; 16]));
//! let mut phone = Instance::new(NodeId::from_bytes([2; 16]));
//! desktop.write(b"alice", &loc, SecretValue::new(b"correct horse".to_vec()))?;
//! phone.sync_from(&desktop, &SyncConfig::full())?;
//! phone.delete(b"alice", &loc)?;
//! desktop.sync_from(&phone, &SyncConfig::full())?;
//! assert!(desktop.read(b"alice", &loc).is_none()); // the deletion propagated
//! # Ok::<(), redoubt_vault::Error>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod access;
pub mod codec;
mod error;
pub mod history;
mod id;
mod instance;
mod limits;
mod merge;
mod record;
mod secret;
mod selection;
pub mod sketch;
mod stamp;
mod version;

pub use access::{AccessTable, Rights};
pub use error::Error;
pub use history::{MAX_HISTORY, MAX_HISTORY_VALUE_BYTES, Replaced};
pub use id::{
    CLIENT_ID_CONTEXT, ClientId, Location, NodeId, RECORD_ID_CONTEXT, RecordId, VAULT_ID_CONTEXT,
    VaultId, hex,
};
pub use instance::{Instance, STATE_DIGEST_CONTEXT, describe};
pub use limits::{MAX_PATH_LEN, MAX_PEER_ID_LEN, MAX_VALUE_LEN};
pub use merge::{
    Conflict, MAX_NAMED_CONFLICTS, MergePolicy, MergeReport, Merged, SyncConfig, merge_one,
    should_take,
};
pub use record::{
    RECORD_HASH_CONTEXT, RECORD_STATE_CONTEXT, Record, Shape, record_hash, stored_len,
};
pub use secret::SecretValue;
pub use selection::Selection;
pub use stamp::{Clock, DEFAULT_MAX_AHEAD_MS, MergeBounds, Stamp, now_ms};
pub use version::{VERSION_HASH_CONTEXT, Version, version_hash};
