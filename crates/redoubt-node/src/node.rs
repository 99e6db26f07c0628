//! A node: one event-loop task owns the swarm; the app holds a cloneable [`Handle`].

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm, identity::Keypair, multiaddr::Protocol, noise, swarm::SwarmEvent,
    tcp, yamux,
};
use redoubt_protocol::Mode;
use redoubt_vault::MergeReport;
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::{Instant, timeout},
};
use tracing::{debug, info};

use crate::{
    Behaviour, Engine, Error, NodeEvent, Progress, PullOrder, PullOutcome, RecordSink,
    ResponseHook, Shared, SyncOutcome, behaviour, behaviour_v1_only,
};

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
        }
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
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_behaviour(|_| {
            if v1_only {
                behaviour_v1_only(timeout_per_request)
            } else {
                behaviour(timeout_per_request)
            }
        })
        .map_err(|e| Error::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    let peer_id = *swarm.local_peer_id();
    let listen_addrs = listen(&mut swarm, &config.listen, peer_id).await?;
    let (tx, rx) = mpsc::channel(64);
    let (events_tx, events_rx) = mpsc::channel(256);
    for addr in &listen_addrs {
        let _ = events_tx.try_send(NodeEvent::Listening { addr: addr.clone() });
    }
    let mut engine = Engine::new(shared.clone(), Some(events_tx));
    engine.set_hook(config.hook);
    engine.set_v1_only(v1_only);
    tokio::spawn(run(swarm, engine, rx));
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

/// Starts the listeners and waits for their addresses.
async fn listen(
    swarm: &mut Swarm<Behaviour>,
    addrs: &[Multiaddr],
    peer_id: PeerId,
) -> Result<Vec<Multiaddr>, Error> {
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
            Ok(_) => {}
        }
    }
    // A wildcard address yields one address per interface; take those that follow at once.
    while let Ok(Some(SwarmEvent::NewListenAddr { address, .. })) =
        timeout(Duration::from_millis(50), swarm.next()).await
    {
        out.push(address.with(Protocol::P2p(peer_id)));
    }
    Ok(out)
}

async fn run(mut swarm: Swarm<Behaviour>, mut engine: Engine, mut rx: mpsc::Receiver<Command>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(e) => engine.handle_event(swarm.behaviour_mut(), e),
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                    debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                }
                SwarmEvent::IncomingConnectionError { error, send_back_addr, .. } => {
                    debug!(addr = %send_back_addr, "incoming connection failed: {error}");
                }
                _ => {}
            },
            command = rx.recv() => match command {
                None | Some(Command::Shutdown) => break,
                Some(Command::Pull { addr, mode, progress, sink, reply }) => match split(&addr) {
                    Ok(peer) => {
                        let order = PullOrder { peer, addrs: vec![addr], mode, progress, sink };
                        engine.start_pull(swarm.behaviour_mut(), order, reply);
                    }
                    Err(e) => { let _ = reply.send(Err(e)); }
                },
                Some(Command::Push { addr, mode, reply }) => match split(&addr) {
                    Ok(peer) => engine.start_push(swarm.behaviour_mut(), peer, vec![addr], mode, reply),
                    Err(e) => { let _ = reply.send(Err(e)); }
                },
            },
            _ = tick.tick() => engine.expire(std::time::Instant::now()),
        }
        for peer in engine.take_disconnects() {
            let _ = swarm.disconnect_peer_id(peer);
        }
    }
    info!("node stopped");
}

/// The peer id at the end of `addr`.
fn split(addr: &Multiaddr) -> Result<PeerId, Error> {
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

    /// Pulls then pushes, so both sides end converged on `mode`. A side that lacks the client
    /// is not an error as long as the other holds it.
    pub async fn sync(
        &self,
        addr: &Multiaddr,
        mode: Mode,
        progress: Option<watch::Sender<Progress>>,
    ) -> Result<SyncOutcome, Error> {
        let (pulled, missing_there) =
            match self.pull_with_progress(addr, mode.clone(), progress).await {
                Ok(p) => (p, None),
                Err(e) if e.is_client_not_found() => (PullOutcome::default(), Some(e)),
                Err(e) => return Err(e),
            };
        let pushed = match self.push(addr, mode).await {
            Ok(r) => r,
            Err(e) if e.is_client_not_found() => match missing_there {
                Some(first) => return Err(first),
                None => MergeReport::default(),
            },
            Err(e) => return Err(e),
        };
        Ok(SyncOutcome { pulled, pushed })
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
