//! A node: one event-loop task owns the swarm; the app holds a cloneable [`Handle`].

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use std::collections::HashMap;

use libp2p::{
    Multiaddr, PeerId, Swarm, connection_limits,
    identity::Keypair,
    mdns,
    multiaddr::Protocol,
    noise,
    swarm::{NetworkBehaviour, SwarmEvent, behaviour::toggle::Toggle},
    tcp, yamux,
};
use redoubt_protocol::{Mode, ShapeFallback};
use redoubt_vault::MergeReport;
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::{Instant, timeout},
};
use tracing::{debug, info};

use crate::{
    Behaviour, Direction, Engine, Error, NodeEvent, Progress, PullOrder, PullOutcome, Quota,
    RecordSink, ResponseHook, Shared, SyncOutcome, behaviour, behaviour_v1_only, granted_mode,
    pairing::{
        Decision, JoinStarted, PairBehaviour, PairJoinRequest, PairOffer, Pairing, pair_behaviour,
    },
};

/// How often mDNS asks the network again (it also answers others' questions at any time).
const MDNS_QUERY_INTERVAL: Duration = Duration::from_secs(10);
/// Most peers (and addresses per peer) remembered from discovery.
const MAX_DISCOVERED: usize = 256;

/// Everything a node's swarm runs: sync, pairing and (when on) mDNS discovery.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct NodeBehaviour {
    limits: connection_limits::Behaviour,
    sync: Behaviour,
    pair: PairBehaviour,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

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

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("peer_id", &self.keypair.public().to_peer_id())
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

enum Command {
    Pull {
        addr: Multiaddr,
        mode: Mode,
        progress: Option<watch::Sender<Progress>>,
        sink: Option<RecordSink>,
        reply: oneshot::Sender<Result<PullOutcome, Error>>,
    },
    Push {
        addr: Multiaddr,
        mode: Mode,
        reply: oneshot::Sender<Result<MergeReport, Error>>,
    },
    PairOffer {
        clients: Vec<Vec<u8>>,
        ttl: Duration,
        reply: oneshot::Sender<Result<PairOffer, Error>>,
    },
    PairJoin {
        code: redoubt_protocol::pairing::PairCode,
        candidates: Vec<(PeerId, Vec<Multiaddr>)>,
        reply: oneshot::Sender<Result<JoinStarted, Error>>,
    },
    Discovered {
        reply: oneshot::Sender<Vec<(PeerId, Vec<Multiaddr>)>>,
    },
    Shutdown,
}

/// A running node's handle: cheap to clone, usable from any task.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
    listen_addrs: Vec<Multiaddr>,
    shared: Shared,
}

/// Starts a node over `shared` on the current tokio runtime. Returns once every listener is
/// up, with the handle and the node's events (a bounded channel; events are dropped if it is
/// left full).
pub async fn spawn(
    config: NodeConfig,
    shared: Shared,
) -> Result<(Handle, mpsc::Receiver<NodeEvent>), Error> {
    let timeout_per_request = config.request_timeout;
    let v1_only = config.v1_only;
    let discovery = config.discovery;
    let limits = config.limits;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_behaviour(|key| {
            let sync = if v1_only {
                behaviour_v1_only(timeout_per_request)
            } else {
                behaviour(timeout_per_request)
            };
            let mdns = if discovery {
                let config = mdns::Config {
                    query_interval: MDNS_QUERY_INTERVAL,
                    ..mdns::Config::default()
                };
                Some(mdns::tokio::Behaviour::new(
                    config,
                    key.public().to_peer_id(),
                )?)
            } else {
                None
            };
            Ok(NodeBehaviour {
                limits: limits.behaviour(),
                sync,
                pair: pair_behaviour(),
                mdns: Toggle::from(mdns),
            })
        })
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    let peer_id = *swarm.local_peer_id();
    let (listen_addrs, early) = listen(&mut swarm, &config.listen, peer_id).await?;
    let (tx, rx) = mpsc::channel(64);
    let (events_tx, events_rx) = mpsc::channel(256);
    for addr in &listen_addrs {
        let _ = events_tx.try_send(NodeEvent::Listening { addr: addr.clone() });
    }
    let mut engine = Engine::new(peer_id, shared.clone(), Some(events_tx));
    engine.set_allow_unbound(config.allow_unbound || v1_only);
    engine.set_shape_fallback(config.shape_fallback);
    engine.set_hook(config.hook);
    engine.set_v1_only(v1_only);
    engine.set_quota(config.quota);
    engine.set_max_ahead(config.max_ahead);
    let (decisions_tx, decisions_rx) = mpsc::channel(8);
    let pairing = Pairing::new(shared.clone(), peer_id, decisions_tx);
    let looped = Loop {
        engine,
        pairing,
        decisions: decisions_rx,
        discovered: HashMap::new(),
        listen_addrs: listen_addrs.clone(),
    };
    tokio::spawn(run(swarm, looped, rx, early));
    Ok((
        Handle {
            tx,
            peer_id,
            listen_addrs,
            shared,
        },
        events_rx,
    ))
}

/// Starts the listeners and waits for their addresses. Behaviour events that arrive meanwhile
/// (discovery answers fast) are returned for the event loop.
async fn listen(
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
    // A wildcard address yields one address per interface; take those that follow at once.
    while let Ok(Some(event)) = timeout(Duration::from_millis(50), swarm.next()).await {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                out.push(address.with(Protocol::P2p(peer_id)));
            }
            SwarmEvent::Behaviour(e) => early.push(e),
            _ => {}
        }
    }
    Ok((out, early))
}

/// What the event loop owns besides the swarm.
struct Loop {
    engine: Engine,
    pairing: Pairing,
    decisions: mpsc::Receiver<Decision>,
    discovered: HashMap<PeerId, Vec<Multiaddr>>,
    listen_addrs: Vec<Multiaddr>,
}

impl Loop {
    fn on_behaviour(&mut self, swarm: &mut Swarm<NodeBehaviour>, event: NodeBehaviourEvent) {
        match event {
            NodeBehaviourEvent::Limits(never) => match never {},
            NodeBehaviourEvent::Sync(e) => {
                self.engine.handle_event(&mut swarm.behaviour_mut().sync, e)
            }
            NodeBehaviourEvent::Pair(e) => self
                .pairing
                .handle_event(&mut swarm.behaviour_mut().pair, e),
            NodeBehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, addr) in found {
                    if self.discovered.len() >= MAX_DISCOVERED
                        && !self.discovered.contains_key(&peer)
                    {
                        continue;
                    }
                    debug!(%peer, %addr, "discovered on the local network");
                    swarm.add_peer_address(peer, addr.clone());
                    let addrs = self.discovered.entry(peer).or_default();
                    if !addrs.contains(&addr) && addrs.len() < MAX_DISCOVERED {
                        addrs.push(addr);
                    }
                }
            }
            NodeBehaviourEvent::Mdns(mdns::Event::Expired(gone)) => {
                for (peer, addr) in gone {
                    if let Some(addrs) = self.discovered.get_mut(&peer) {
                        addrs.retain(|a| *a != addr);
                        if addrs.is_empty() {
                            self.discovered.remove(&peer);
                        }
                    }
                }
            }
        }
    }

    fn on_command(&mut self, swarm: &mut Swarm<NodeBehaviour>, command: Command) {
        match command {
            Command::Pull {
                addr,
                mode,
                progress,
                sink,
                reply,
            } => match peer_id_of(&addr) {
                Ok(peer) => {
                    let order = PullOrder {
                        peer,
                        addrs: vec![addr],
                        mode,
                        progress,
                        sink,
                    };
                    self.engine
                        .start_pull(&mut swarm.behaviour_mut().sync, order, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Push { addr, mode, reply } => match peer_id_of(&addr) {
                Ok(peer) => self.engine.start_push(
                    &mut swarm.behaviour_mut().sync,
                    peer,
                    vec![addr],
                    mode,
                    reply,
                ),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::PairOffer {
                clients,
                ttl,
                reply,
            } => {
                let _ = reply.send(self.pairing.open(clients, ttl, &self.listen_addrs));
            }
            Command::PairJoin {
                code,
                candidates,
                reply,
            } => {
                self.pairing
                    .join(&mut swarm.behaviour_mut().pair, code, candidates, reply);
            }
            Command::Discovered { reply } => {
                let _ = reply.send(
                    self.discovered
                        .iter()
                        .map(|(p, a)| (*p, a.clone()))
                        .collect(),
                );
            }
            Command::Shutdown => {}
        }
    }
}

async fn run(
    mut swarm: Swarm<NodeBehaviour>,
    mut l: Loop,
    mut rx: mpsc::Receiver<Command>,
    early: Vec<NodeBehaviourEvent>,
) {
    for event in early {
        l.on_behaviour(&mut swarm, event);
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(e) => l.on_behaviour(&mut swarm, e),
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                    debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                }
                SwarmEvent::IncomingConnectionError { error, send_back_addr, .. } => {
                    debug!(addr = %send_back_addr, "incoming connection failed: {error}");
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    l.engine.peer_disconnected(peer_id);
                }
                _ => {}
            },
            command = rx.recv() => match command {
                None | Some(Command::Shutdown) => break,
                Some(command) => l.on_command(&mut swarm, command),
            },
            Some(decision) = l.decisions.recv() => {
                l.pairing.decide(&mut swarm.behaviour_mut().pair, decision);
            }
            _ = tick.tick() => {
                l.engine.expire(std::time::Instant::now());
                l.pairing.expire(std::time::Instant::now());
            }
        }
        for peer in l.engine.take_disconnects() {
            let _ = swarm.disconnect_peer_id(peer);
        }
    }
    info!("node stopped");
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

impl Handle {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses this node listens on, each ending with `/p2p/PEER_ID`.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// The store this node serves and merges into.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Pulls `mode` from the peer at `addr` (ending with `/p2p/PEER_ID`) and merges it.
    pub async fn pull(&self, addr: &Multiaddr, mode: Mode) -> Result<PullOutcome, Error> {
        self.pull_with_progress(addr, mode, None).await
    }

    /// [`Self::pull`], reporting the stream's progress on `progress`.
    pub async fn pull_with_progress(
        &self,
        addr: &Multiaddr,
        mode: Mode,
        progress: Option<watch::Sender<Progress>>,
    ) -> Result<PullOutcome, Error> {
        self.pull_inner(addr, mode, progress, None).await
    }

    /// Pulls `mode` and hands each verified record to `sink` instead of merging it into the
    /// store (for apps that keep records elsewhere). The outcome's report stays empty.
    pub async fn pull_into(
        &self,
        addr: &Multiaddr,
        mode: Mode,
        sink: RecordSink,
    ) -> Result<PullOutcome, Error> {
        self.pull_inner(addr, mode, None, Some(sink)).await
    }

    async fn pull_inner(
        &self,
        addr: &Multiaddr,
        mode: Mode,
        progress: Option<watch::Sender<Progress>>,
        sink: Option<RecordSink>,
    ) -> Result<PullOutcome, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Pull {
                addr: addr.clone(),
                mode,
                progress,
                sink,
                reply,
            })
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Asks the peer at `addr` to pull `mode` from us; returns what it merged. The peer checks
    /// its own `write` grants for us.
    pub async fn push(&self, addr: &Multiaddr, mode: Mode) -> Result<MergeReport, Error> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Push {
                addr: addr.clone(),
                mode,
                reply,
            })
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Pulls then pushes, so both sides end converged on `mode`, as far as our grants let
    /// records move: the pull takes only clients we let the peer write, the push offers only
    /// clients we let it read. A mode that names a client needs both grants and fails with
    /// [`Error::NotGranted`] before anything moves; an import of every client moves exactly
    /// those both tables allow. A side that lacks the client is not an error as long as the
    /// other holds it.
    pub async fn sync(
        &self,
        addr: &Multiaddr,
        mode: Mode,
        progress: Option<watch::Sender<Progress>>,
    ) -> Result<SyncOutcome, Error> {
        {
            let peer = peer_id_of(addr)?;
            let store = self.shared.lock();
            for direction in [Direction::In, Direction::Out] {
                granted_mode(&store.access, &peer, mode.clone(), direction)?;
            }
        }
        // Of every client, a direction the peer's table closes moves nothing: not an error.
        let every = matches!(&mode, Mode::Import { clients } if clients.is_empty());
        let (pulled, missing_there) =
            match self.pull_with_progress(addr, mode.clone(), progress).await {
                Ok(p) => (p, None),
                Err(e) if e.is_client_not_found() => (PullOutcome::default(), Some(e)),
                Err(e) if every && e.is_permission_denied() => (PullOutcome::default(), None),
                Err(e) => return Err(e),
            };
        let pushed = match self.push(addr, mode).await {
            Ok(r) => r,
            Err(e) if e.is_client_not_found() => match missing_there {
                Some(first) => return Err(first),
                None => MergeReport::default(),
            },
            Err(e) if every && e.is_permission_denied() => MergeReport::default(),
            Err(e) => return Err(e),
        };
        Ok(SyncOutcome { pulled, pushed })
    }

    /// Opens a pairing offer of `clients` valid for `ttl` (see [`crate::PAIR_CODE_TTL`]):
    /// show [`PairOffer::code`] (and [`PairOffer::payload`] as a QR code), then answer the
    /// [`crate::PairingEvent::Request`] that [`PairOffer::next`] yields. Opening an offer
    /// replaces any open one.
    pub async fn pair_offer(
        &self,
        clients: Vec<Vec<u8>>,
        ttl: Duration,
    ) -> Result<PairOffer, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::PairOffer {
            clients,
            ttl,
            reply,
        })
        .await?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Starts pairing with the device showing `code`: either the code alone (`NN-DDDD-DDDD`)
    /// or the QR payload (`redoubt-pair:1:…`, which names the host and its addresses). The
    /// host is dialed at `addrs` when given, else at the payload's addresses, else at every
    /// peer discovery finds within `wait` (the code's nameplate picks the right one).
    ///
    /// Returns once the host proved it knows the code, with the request this device's user
    /// answers: show [`PairJoinRequest::verification`] (the host shows the same string), then
    /// [`PairJoinRequest::accept`] (which waits for the host's user, records the grants and
    /// imports the shared clients) or [`PairJoinRequest::reject`]. Nothing is granted on
    /// either side unless both users accept.
    pub async fn pair_join(
        &self,
        code: &str,
        addrs: Vec<Multiaddr>,
        wait: Duration,
    ) -> Result<PairJoinRequest, Error> {
        use redoubt_protocol::pairing::{PAYLOAD_PREFIX, PairCode, PairPayload};
        let bad = |e: redoubt_protocol::Error| Error::Pairing(e.to_string());
        let (code, mut candidates) = if code.trim().starts_with(PAYLOAD_PREFIX) {
            let payload: PairPayload = code.parse().map_err(bad)?;
            let peer: PeerId = payload.peer.parse().map_err(|_| {
                Error::Pairing("the payload's peer id is not a libp2p peer id".into())
            })?;
            let mut dial = Vec::new();
            for a in &payload.addrs {
                let addr: Multiaddr = a.parse().map_err(|_| {
                    Error::Pairing(format!("the payload's address {a:?} is not a multiaddr"))
                })?;
                dial.push(addr);
            }
            (payload.code, vec![(peer, dial)])
        } else {
            (code.parse::<PairCode>().map_err(bad)?, Vec::new())
        };
        for addr in addrs {
            let peer = peer_id_of(&addr)?;
            candidates.retain(|(p, _)| *p != peer);
            candidates.insert(0, (peer, vec![addr]));
        }
        if candidates.is_empty() {
            candidates = self.discovered_within(wait).await?;
            if candidates.is_empty() {
                return Err(Error::Pairing(
                    "no device found on the local network; give its address, or scan its QR \
                     code"
                        .into(),
                ));
            }
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::PairJoin {
            code,
            candidates,
            reply,
        })
        .await?;
        let started = rx.await.map_err(|_| Error::Shutdown)??;
        Ok(PairJoinRequest::new(started, self.clone(), wait))
    }

    /// Peers found by discovery so far, each with its addresses.
    pub async fn discovered(&self) -> Result<Vec<(PeerId, Vec<Multiaddr>)>, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Discovered { reply }).await?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Waits up to `wait` for discovery to find any peer; returns those found.
    async fn discovered_within(
        &self,
        wait: Duration,
    ) -> Result<Vec<(PeerId, Vec<Multiaddr>)>, Error> {
        let deadline = Instant::now() + wait;
        loop {
            let found = self.discovered().await?;
            if !found.is_empty() || Instant::now() >= deadline {
                return Ok(found);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits up to `wait` for discovery to find `peer` on the local network; returns an address
    /// to dial it at (ending with `/p2p/PEER_ID`). Needs [`NodeConfig::discovery`].
    pub async fn discover(&self, peer: PeerId, wait: Duration) -> Result<Multiaddr, Error> {
        let deadline = Instant::now() + wait;
        loop {
            let found = self.discovered().await?;
            if let Some(addr) = found
                .into_iter()
                .find(|(p, _)| *p == peer)
                .and_then(|(_, addrs)| addrs.into_iter().next())
            {
                return Ok(addr.with(Protocol::P2p(peer)));
            }
            if Instant::now() >= deadline {
                return Err(Error::NotDiscovered {
                    peer: peer.to_base58(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn send(&self, command: Command) -> Result<(), Error> {
        self.tx.send(command).await.map_err(|_| Error::Shutdown)
    }

    /// Stops the event loop; in-flight operations fail with [`Error::Shutdown`].
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }
}

/// The libp2p identity of an ed25519 seed (as kept in the snapshot).
pub fn keypair_from_seed(seed: &[u8; 32]) -> Result<Keypair, Error> {
    let mut copy = *seed;
    Keypair::ed25519_from_bytes(&mut copy).map_err(|e| Error::Transport(e.to_string()))
}
