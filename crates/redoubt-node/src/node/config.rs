//! How a node is set up, and the swarm built from it: identity, transport, connection limits
//! and the behaviour (sync, pairing, discovery, identify).

use std::{sync::Arc, time::Duration};

use futures::{FutureExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, Swarm, connection_limits,
    identity::Keypair,
    multiaddr::Protocol,
    noise,
    swarm::{NetworkBehaviour, SwarmEvent, behaviour::toggle::Toggle},
    tcp, yamux,
};
use redoubt_protocol::ShapeFallback;
use tokio::time::{Instant, timeout};

use super::discovery;
use crate::{Behaviour, Error, Quota, ResponseHook, behaviour, behaviour_v1_only, pairing};

/// Everything a node's swarm runs: sync, pairing, identify and (when on) mDNS discovery.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(super) struct NodeBehaviour {
    pub(super) limits: connection_limits::Behaviour,
    pub(super) sync: Behaviour,
    pub(super) pair: pairing::PairBehaviour,
    pub(super) mdns: Toggle<libp2p::mdns::tokio::Behaviour>,
    /// Tells peers where we listen, and hears where they do (kept in the address book, so a
    /// peer that dialed us can be dialed back).
    pub(super) identify: libp2p::identify::Behaviour,
}

/// The protocol version identify announces (its own protocol is `/ipfs/id/1.0.0`).
pub(super) const IDENTIFY_VERSION: &str = "/redoubt/1.0.0";

/// How a node is set up.
pub struct NodeConfig {
    /// The node's libp2p identity (its peer id is what peers grant rights to).
    pub keypair: Keypair,
    /// Addresses to listen on; empty for a node that only dials.
    pub listen: Vec<Multiaddr>,
    /// How long to wait for each response.
    pub request_timeout: Duration,
    /// How long an unused connection stays open.
    pub idle_timeout: Duration,
    /// A hook on every response frame (tests of hostile peers). Not a stable API.
    #[doc(hidden)]
    pub hook: Option<Arc<dyn ResponseHook>>,
    /// Speak `/redoubt/sync/1` only, as nodes before version 2 did (tests of the fallback).
    /// Not a stable API.
    #[doc(hidden)]
    pub v1_only: bool,
    /// Speak pairing `/redoubt/pair/2` only, as nodes before version 3 did (tests of the
    /// fallback: such a device pairs but gets no remotes). Not a stable API.
    #[doc(hidden)]
    pub pair_v2_only: bool,
    /// Find peers, and be found, on the local network by mDNS (off by default; the CLI turns
    /// it on unless told `--no-discovery`).
    pub discovery: bool,
    /// Serve and run sessions of versions 1 and 2 with peers that speak nothing newer. Their
    /// session keys bind no peer ids, so a peer in the middle could relay such a session
    /// between two others; off by default (nodes of this release all speak version 3).
    pub allow_unbound: bool,
    /// When a sketch session may fall back to sending every shape: never on the responder's
    /// word alone beyond this many shapes (see `docs/protocol.md`, section 11).
    pub shape_fallback: ShapeFallback,
    /// What merges from peers may make the vault hold.
    pub quota: Quota,
    /// How far ahead of our clock a received record's stamp may be (10 minutes by default, as
    /// iroh-docs allows); records stamped further ahead are refused, logged, never observed.
    pub max_ahead: Duration,
    /// Connections the node accepts or keeps at once.
    pub limits: ConnectionLimits,
}

/// Bounds on libp2p connections, so whoever connects gets bounded work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Incoming connections still in their handshake.
    pub pending_incoming: u32,
    /// Outgoing connections still in their handshake.
    pub pending_outgoing: u32,
    /// Established incoming connections (our own dials are not counted, so strangers who
    /// connect cannot use up the room our syncs need).
    pub established_incoming: u32,
    /// Established connections to one peer.
    pub per_peer: u32,
}

impl Default for ConnectionLimits {
    /// 128 pending incoming (a burst as large as the sessions served at once, 128), 64 pending
    /// outgoing (as many as the pulls run at once), 256 established incoming, 4 per peer
    /// (sessions are multiplexed on one).
    fn default() -> Self {
        Self {
            pending_incoming: 128,
            pending_outgoing: 64,
            established_incoming: 256,
            per_peer: 4,
        }
    }
}

impl ConnectionLimits {
    fn behaviour(self) -> connection_limits::Behaviour {
        connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(self.pending_incoming))
                .with_max_pending_outgoing(Some(self.pending_outgoing))
                .with_max_established_incoming(Some(self.established_incoming))
                .with_max_established_per_peer(Some(self.per_peer)),
        )
    }
}

impl NodeConfig {
    /// Defaults: no listener, 30 s per request, 30 s idle connections.
    pub fn new(keypair: Keypair) -> Self {
        Self {
            keypair,
            listen: Vec::new(),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            hook: None,
            v1_only: false,
            pair_v2_only: false,
            discovery: false,
            allow_unbound: false,
            shape_fallback: ShapeFallback::default(),
            quota: Quota::default(),
            max_ahead: Duration::from_millis(redoubt_vault::DEFAULT_MAX_AHEAD_MS),
            limits: ConnectionLimits::default(),
        }
    }

    /// Turns mDNS discovery on or off.
    pub fn with_discovery(mut self, on: bool) -> Self {
        self.discovery = on;
        self
    }

    /// Lets peers that speak only version 1 or 2 (unbound sessions) sync with this node.
    pub fn with_allow_unbound(mut self, allow: bool) -> Self {
        self.allow_unbound = allow;
        self
    }

    /// Adds an address to listen on.
    pub fn listen_on(mut self, addr: Multiaddr) -> Self {
        self.listen.push(addr);
        self
    }
}

/// What the swarm is built from, besides the identity.
#[derive(Clone, Copy)]
pub(super) struct SwarmSettings {
    pub(super) request_timeout: Duration,
    pub(super) idle_timeout: Duration,
    pub(super) v1_only: bool,
    pub(super) pair_v2_only: bool,
    pub(super) discovery: bool,
    pub(super) limits: ConnectionLimits,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("peer_id", &self.keypair.public().to_peer_id())
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

/// The swarm a config describes, with its identity `keypair` (moved out of the config, so
/// the secret is not copied).
pub(super) fn build_swarm(
    keypair: Keypair,
    config: &SwarmSettings,
) -> Result<Swarm<NodeBehaviour>, Error> {
    let SwarmSettings {
        request_timeout,
        idle_timeout,
        v1_only,
        pair_v2_only,
        discovery,
        limits,
    } = *config;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_behaviour(|key| {
            let sync = if v1_only {
                behaviour_v1_only(request_timeout)
            } else {
                behaviour(request_timeout)
            };
            Ok(NodeBehaviour {
                limits: limits.behaviour(),
                sync,
                pair: pairing::pair_behaviour(pair_v2_only),
                mdns: discovery::mdns_behaviour(key, discovery)?,
                identify: libp2p::identify::Behaviour::new(libp2p::identify::Config::new(
                    IDENTIFY_VERSION.to_owned(),
                    key.public(),
                )),
            })
        })
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout))
        .build();
    Ok(swarm)
}

/// Starts the listeners and waits for their addresses. Behaviour events that arrive meanwhile
/// (discovery answers fast) are returned for the event loop.
pub(super) async fn listen(
    swarm: &mut Swarm<NodeBehaviour>,
    addrs: &[Multiaddr],
    peer_id: PeerId,
) -> Result<(Vec<Multiaddr>, Vec<NodeBehaviourEvent>), Error> {
    let mut early = Vec::new();
    let mut pending = Vec::new();
    for addr in addrs {
        let id = swarm
            .listen_on(addr.clone())
            .map_err(|e| Error::Transport(format!("cannot listen on {addr}: {e}")))?;
        pending.push(id);
    }
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, swarm.select_next_some()).await {
            Err(_) => return Err(Error::Transport("listeners did not start in 10 s".into())),
            Ok(SwarmEvent::NewListenAddr {
                listener_id,
                address,
            }) => {
                pending.retain(|id| *id != listener_id);
                out.push(address.with(Protocol::P2p(peer_id)));
            }
            Ok(SwarmEvent::ListenerClosed { reason, .. }) => {
                let why = reason.err().map(|e| e.to_string()).unwrap_or_default();
                return Err(Error::Transport(format!("listener closed: {why}")));
            }
            Ok(SwarmEvent::ListenerError { error, .. }) => {
                return Err(Error::Transport(format!("listener failed: {error}")));
            }
            Ok(SwarmEvent::Behaviour(e)) => early.push(e),
            Ok(_) => {}
        }
    }
    // A wildcard address yields one address per interface, all from the one interface listing
    // that produced the first: take those already waiting, without sleeping. A node with only
    // specific addresses (or none, one that only dials) has them all by now. Later interfaces
    // are not waited for (the event loop ignores them, as it did before).
    if addrs.iter().any(is_wildcard) {
        tokio::task::yield_now().await;
        for _ in 0..MAX_EARLY_EVENTS {
            let Some(Some(event)) = swarm.next().now_or_never() else {
                break;
            };
            match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    out.push(address.with(Protocol::P2p(peer_id)));
                }
                SwarmEvent::Behaviour(e) => early.push(e),
                _ => {}
            }
        }
    }
    Ok((out, early))
}

/// At most this many already-waiting swarm events are taken after the listeners started.
const MAX_EARLY_EVENTS: usize = 256;

/// Whether `addr` listens on every interface (`0.0.0.0` or `::`).
fn is_wildcard(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

/// The peer id at the end of `addr` (as `redoubt serve` prints it: `…/p2p/PEER_ID`).
pub fn peer_id_of(addr: &Multiaddr) -> Result<PeerId, Error> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Ok(peer),
        _ => Err(Error::InvalidAddress {
            addr: addr.to_string(),
            reason: "must end with /p2p/PEER_ID (as `redoubt serve` prints it)",
        }),
    }
}

/// The libp2p identity of an ed25519 seed (as kept in the snapshot).
pub fn keypair_from_seed(seed: &[u8; 32]) -> Result<Keypair, Error> {
    let mut copy = *seed;
    Keypair::ed25519_from_bytes(&mut copy).map_err(|e| Error::Transport(e.to_string()))
}
