//! A node: one event-loop task owns the swarm; the app holds a cloneable [`Handle`].
//!
//! `config` builds the swarm from a [`NodeConfig`], `event_loop` runs it, `handle` is what the
//! app holds, `discovery` finds peers by mDNS, and `pairing_flow` is the handle's side of
//! pairing.

mod config;
mod discovery;
mod event_loop;
mod handle;
mod pairing_flow;
mod spawn_error;

use tokio::sync::mpsc;

pub use self::{
    config::{ConnectionLimits, NodeConfig, keypair_from_seed, peer_id_of},
    handle::{Handle, PeerLink},
    spawn_error::SpawnError,
};
use self::{
    config::{SwarmSettings, build_swarm, listen},
    discovery::Discovered,
    event_loop::{Loop, run},
};
use crate::{Engine, NodeEvent, Vault, book::Learner, pairing::Pairing, vault::Owner};

/// Starts a node that owns `vault`, on the current tokio runtime. Returns once every listener
/// is up, with the handle (through which the app reads and changes the vault) and the node's
/// events (a bounded channel; events are dropped if it is left full, and nothing depends on
/// them: every merge and grant is committed before it is acknowledged).
///
/// A node that cannot start (an address it cannot listen on, a transport that fails to
/// build) gives the vault back in the [`SpawnError`], untouched, so the app can retry without
/// opening the file again; `?` turns it into the plain [`Error`](crate::Error).
pub async fn spawn(
    config: NodeConfig,
    vault: Vault,
) -> Result<(Handle, mpsc::Receiver<NodeEvent>), SpawnError> {
    let v1_only = config.v1_only;
    let settings = SwarmSettings {
        request_timeout: config.request_timeout,
        idle_timeout: config.idle_timeout,
        v1_only,
        pair_v2_only: config.pair_v2_only,
        discovery: config.discovery,
        limits: config.limits,
    };
    let mut swarm = match build_swarm(config.keypair, &settings) {
        Ok(swarm) => swarm,
        Err(error) => return Err(SpawnError::new(error, vault)),
    };
    let peer_id = *swarm.local_peer_id();
    let (listen_addrs, early) = match listen(&mut swarm, &config.listen, peer_id).await {
        Ok(up) => up,
        Err(error) => return Err(SpawnError::new(error, vault)),
    };
    let vault = Owner::new(vault);
    let (tx, rx) = mpsc::channel(64);
    let (events_tx, events_rx) = mpsc::channel(256);
    for addr in &listen_addrs {
        let _ = events_tx.try_send(NodeEvent::Listening { addr: addr.clone() });
    }
    let mut engine = Engine::over(peer_id, vault.clone(), Some(events_tx.clone()));
    engine.set_allow_unbound(config.allow_unbound || v1_only);
    engine.set_shape_fallback(config.shape_fallback);
    let hook = config.hook.clone();
    engine.set_hook(config.hook);
    engine.set_v1_only(v1_only);
    engine.set_quota(config.quota);
    engine.set_max_ahead(config.max_ahead);
    let (decisions_tx, decisions_rx) = mpsc::channel(8);
    let mut pairing = Pairing::new(vault.clone(), peer_id, decisions_tx);
    pairing.set_test_options(config.pair_v2_only, hook);
    let looped = Loop {
        engine,
        pairing,
        decisions: decisions_rx,
        discovered: Discovered::default(),
        listen_addrs: listen_addrs.clone(),
        learner: Learner::new(vault.clone(), Some(events_tx.clone())),
        events: Some(events_tx),
    };
    tokio::spawn(run(swarm, looped, rx, early));
    Ok((
        Handle {
            tx,
            peer_id,
            listen_addrs,
            vault,
        },
        events_rx,
    ))
}
