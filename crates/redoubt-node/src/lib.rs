//! Redoubt's libp2p node: serves `/redoubt/sync/3` pulls (sessions bound to both peer ids;
//! `/redoubt/sync/2` and `/1` only when [`NodeConfig::allow_unbound`]) under per-peer,
//! per-client grants, pulls from and pushes to peers under the same grants (our table
//! decides what leaves us and what enters us, whoever dialed), pairs new devices with a
//! one-time code (`/redoubt/pair/2`, see [`Handle::pair_offer`] and [`Handle::pair_join`]),
//! and finds peers on the local network by mDNS when [`NodeConfig::discovery`] is on.
//!
//! One event-loop task owns the swarm (TCP, Noise, Yamux, request-response, connection
//! limits); the app holds a cloneable [`Handle`]. A store shared with [`Shared::durable`] is
//! committed after every merge, before the node acknowledges it to anyone; a [`Quota`] bounds
//! what merges may make it hold. The complement streams as sealed chunks of at most about 2 MiB, one
//! per request, so memory stays bounded whatever its size. An app with its own swarm can add
//! [`Behaviour`] to it and drive an [`Engine`] with the behaviour's events.
//!
//! The grant rule, the quota and the pull-then-push rule of [`Handle::sync`] are
//! [`redoubt_sync`]'s, which knows no libp2p; [`Handle::link`] makes a peer a
//! [`redoubt_sync::Link`].
//!
//! ```
//! use redoubt_node::{NodeConfig, Shared, Store, spawn};
//! use redoubt_protocol::Mode;
//! use redoubt_vault::{AccessTable, Instance, Location, NodeId, Rights, SecretValue};
//! use libp2p::identity::Keypair;
//!
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let desktop_key = Keypair::generate_ed25519();
//! let phone_key = Keypair::generate_ed25519();
//! let mut desktop = Store { instance: Instance::new(NodeId::from_bytes([1; 16])), access: AccessTable::default() };
//! desktop.instance.write(b"alice", &Location::new("wallet", "seed")?, SecretValue::new(b"s3cret".to_vec()))?;
//! // The desktop lets the phone read client "alice".
//! let phone_id = phone_key.public().to_peer_id().to_base58();
//! desktop.access.grant(phone_id.as_bytes(), b"alice", Rights { read: true, write: false })?;
//!
//! let config = NodeConfig::new(desktop_key).listen_on("/ip4/127.0.0.1/tcp/0".parse()?);
//! let (server, _events) = spawn(config, Shared::new(desktop)).await?;
//! // And the phone lets the desktop write "alice" into it: its own grants decide what enters.
//! let mut phone = Store { instance: Instance::new(NodeId::from_bytes([2; 16])), access: AccessTable::default() };
//! let desktop_id = server.peer_id().to_base58();
//! phone.access.grant(desktop_id.as_bytes(), b"alice", Rights { read: false, write: true })?;
//! let (client, _) = spawn(NodeConfig::new(phone_key), Shared::new(phone)).await?;
//!
//! let outcome = client.pull(&server.listen_addrs()[0], Mode::Full { client: b"alice".to_vec() }).await?;
//! assert_eq!(outcome.report.added, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

// The quota (and the usage the engine counts) live in the transport-neutral sync layer.
use redoubt_sync::quota;

mod codec;
mod engine;
mod error;
mod event;
mod grants;
mod hook;
mod node;
mod pairing;
mod store;

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
    PAIR_CODE_TTL, PAIR_REFUSALS_PER_PEER_PER_SECOND, PAIR_REFUSALS_PER_SECOND,
    PAIR_REQUEST_TIMEOUT, PairBehaviour, PairJoinRequest, PairOffer, PairRequestHandle, Paired,
    PairingEvent,
};
pub use redoubt_sync::Quota;
pub use store::{Persist, Shared, Store};

/// Re-exported so apps name the same libp2p types the node uses.
pub use libp2p;
