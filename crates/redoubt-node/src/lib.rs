//! Redoubt's libp2p node over a [`Vault`], the one owner of a vault's state: its store (one
//! sealed redb file, [`store::Store`]), key, identity and grants. Every change
//! — a local write through [`Handle::write`], a batch merged from a peer, a grant made by
//! pairing — is committed by the vault before the node acknowledges it to anyone.
//!
//! Create (or open) two vaults, write on one, serve both on loopback, let each peer in, sync,
//! and read the value back on the other:
//!
//! ```
#![doc = include_str!("../../../examples/embed/src/main.rs")]
//! ```
//!
//! That is `examples/embed/src/main.rs`, a crate outside the workspace with its own lock file
//! that depends on `redoubt-node`, `tokio` and `tempfile` only (CI builds and runs it), so the
//! example builds as written in an app; the types it names are all re-exported here.
//!
//! The node serves `/redoubt/sync/4` pulls (sessions bound to both peer ids, records with
//! their history; `/redoubt/sync/3` for a peer that speaks nothing newer, refusing records
//! with history; `/2` and `/1` only when [`NodeConfig::allow_unbound`]) under per-peer,
//! per-client grants, pulls from and pushes to peers under the same grants (our table decides
//! what leaves us and what enters us, whoever dialed), pairs new devices with a one-time code
//! (`/redoubt/pair/2`, see [`Handle::pair_offer`] and [`Handle::pair_join`]), and finds peers
//! on the local network by mDNS when [`NodeConfig::discovery`] is on.
//!
//! One event-loop task owns the swarm (TCP, Noise, Yamux, request-response, connection
//! limits); the app holds a cloneable [`Handle`], which lends the vault to a closure
//! ([`Handle::read`], [`Handle::write`]) and never hands out a lock. Each verified batch from a
//! peer is one commit of the store, before the pull goes on; a [`Quota`] bounds what merges
//! may make the vault hold. The complement streams as sealed chunks of at most about 2 MiB,
//! one per request, so memory stays bounded whatever its size. An app with its own swarm can
//! add [`Behaviour`] to it and drive an [`Engine`] with the behaviour's events. Tests and
//! examples use [`Vault::in_memory`].
//!
//! An app shows what changed through [`Vault::changes`] (or [`Handle::changes`]): each
//! committed change names its location, what happened (written, deleted, history gained) and
//! why (a local write, a merge from peer P, a resolved conflict), sent after its commit; a
//! subscriber that falls [`CHANGE_BUFFER`] changes behind gets [`ChangeEvent::Lagged`], never
//! a silent gap.
//!
//! The grant rule, the quota, the batch merge ([`redoubt_sync::merge_batch`], into any
//! [`redoubt_sync::MergeTarget`], which [`Vault`] is) and the pull-then-push rule of
//! [`Handle::sync`] are [`redoubt_sync`]'s, which knows no libp2p; [`Handle::link`] makes a
//! peer a [`redoubt_sync::Link`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod book;
mod changes;
mod codec;
mod engine;
mod error;
mod event;
mod grants;
mod hook;
mod node;
mod pairing;
mod replica;
mod vault;

pub use book::{BookEntry, address_book_of, read_address_book, with_peer};
pub use changes::{CHANGE_BUFFER, Cause, Change, ChangeEvent, Changes, Origin, What};
pub use codec::FrameCodec;
pub use engine::{
    Behaviour, Engine, INVITE_TTL, MAX_INVITED_PULLS_PER_PEER, MAX_PULLS, MAX_SESSIONS,
    MAX_SESSIONS_PER_PEER, MAX_STREAMS_PER_CONNECTION, PullOrder, RecordSink, SESSION_IDLE,
    behaviour, behaviour_v1_only,
};
pub use error::Error;
pub use event::{NodeEvent, Progress, PullOutcome, SyncOutcome};
pub use grants::{Direction, granted_clients, granted_mode};
#[doc(hidden)]
pub use hook::{HookAction, ResponseHook};
pub use node::{
    ConnectionLimits, Handle, NodeConfig, PeerLink, SpawnError, keypair_from_seed, peer_id_of,
    spawn,
};
pub use pairing::{
    MAX_PAIR_CODE_TTL, PAIR_CODE_TTL, PAIR_REFUSALS_PER_PEER_PER_SECOND, PAIR_REFUSALS_PER_SECOND,
    PAIR_REQUEST_TIMEOUT, PairBehaviour, PairJoinRequest, PairOffer, PairRequestHandle, Paired,
    PairingEvent, RemoteJoin, RemoteOutcome, shareable_remotes,
};
pub use redoubt_protocol::{Mode, pairing::PairRefusal};
/// The vault's sealed embedded store, re-exported so apps create and open vaults with the
/// same types the node uses.
pub use redoubt_store as store;
pub use redoubt_sync::Quota;
pub use redoubt_vault::{
    AccessTable, ClientId, Instance, Location, MergeReport, NodeId, Record, Rights, SecretValue,
    Stamp,
};
pub use vault::Vault;

/// Re-exported so apps name the same libp2p types the node uses.
pub use libp2p;
/// A device's id (what grants name), its address, and its key, as the node takes them.
pub use libp2p::{Multiaddr, PeerId, identity::Keypair};
