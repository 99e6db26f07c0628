//! Redoubt's libp2p node over a [`Vault`], the one owner of a vault's state: its store (one
//! sealed redb file, [`store::Store`]), key, identity and grants. Every change
//! — a local write through [`Handle::write`], a batch merged from a peer, a grant made by
//! pairing — is committed by the vault before the node acknowledges it to anyone.
//!
//! Create (or open) two vaults, write on one, serve both on loopback, let each peer in, sync,
//! and read the value back on the other:
//!
//! ```
//! use redoubt_node::{
//!     Location, Mode, NodeConfig, Rights, SecretValue, Vault, keypair_from_seed,
//!     libp2p::Multiaddr,
//!     spawn,
//!     store::{KdfLimits, KdfParams, Password, Store},
//! };
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let password = Password::new(b"correct horse battery staple".to_vec());
//! let fast = KdfParams::insecure_fast(); // tests only; real vaults use KdfParams::default()
//! drop(Store::create(&dir.path().join("desktop.redb"), &password, fast)?);
//! let desktop = Store::open(&dir.path().join("desktop.redb"), &password, &KdfLimits::default())?;
//! let phone = Store::create(&dir.path().join("phone.redb"), &password, fast)?;
//!
//! // Each device's libp2p key is its vault's identity, so its peer id stays the same.
//! let desktop_key = keypair_from_seed(desktop.identity().expose_seed())?;
//! let phone_key = keypair_from_seed(phone.identity().expose_seed())?;
//! let loopback: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse()?;
//! let config = NodeConfig::new(desktop_key).listen_on(loopback.clone());
//! let (desktop, _events) = spawn(config, Vault::new(desktop)).await?;
//! let config = NodeConfig::new(phone_key).listen_on(loopback);
//! let (phone, _events) = spawn(config, Vault::new(phone)).await?;
//!
//! let seed = Location::new("wallet", "seed")?;
//! let both = Rights { read: true, write: true };
//! let phone_id = phone.peer_id().to_base58();
//! desktop.write(|v| {
//!     v.put(b"alice", &seed, SecretValue::new(b"s3cret".to_vec()))?; // committed here
//!     // The desktop lets the phone read and write client "alice"...
//!     v.set_rights(phone_id.as_bytes(), b"alice", both)
//! })?;
//! // ...and the phone the desktop: each side's own grants decide what leaves and enters it.
//! let desktop_id = desktop.peer_id().to_base58();
//! phone.write(|v| v.set_rights(desktop_id.as_bytes(), b"alice", both))?;
//!
//! let alice = Mode::Full { client: b"alice".to_vec() };
//! let synced = phone.sync(&desktop.listen_addrs()[0], alice, None).await?;
//! assert_eq!(synced.pulled.report.added, 1); // committed on the phone before it returned
//! let value = phone.read(|v| v.get(b"alice", &seed))?;
//! assert_eq!(value.map(|v| v.expose().to_vec()), Some(b"s3cret".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
    ConnectionLimits, Handle, NodeConfig, PeerLink, keypair_from_seed, peer_id_of, spawn,
};
pub use pairing::{
    MAX_PAIR_CODE_TTL, PAIR_CODE_TTL, PAIR_REFUSALS_PER_PEER_PER_SECOND, PAIR_REFUSALS_PER_SECOND,
    PAIR_REQUEST_TIMEOUT, PairBehaviour, PairJoinRequest, PairOffer, PairRequestHandle, Paired,
    PairingEvent, RemoteJoin, RemoteOutcome, shareable_remotes,
};
pub use redoubt_protocol::Mode;
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
