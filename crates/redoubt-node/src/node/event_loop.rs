//! The event loop: one task owns the swarm, drives the sync engine and the pairing state with
//! the behaviour's events, and runs the handle's commands.

use std::time::Duration;

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm,
    swarm::{
        DialError, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
};
use redoubt_protocol::Mode;
use redoubt_vault::MergeReport;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info};

use super::{
    config::{NodeBehaviour, NodeBehaviourEvent, peer_id_of},
    discovery::Discovered,
};
use crate::{
    Engine, Error, NodeEvent, PairOffer, Progress, PullOrder, PullOutcome, RecordSink,
    book::Learner,
    pairing::{Decision, JoinStarted, Pairing},
};

/// Peers of one mDNS answer whose addresses are candidates for the book (the rest are still
/// dialable, as discovery keeps them).
const MAX_MDNS_NOTED: usize = 16;

/// What the handle asks of the event loop; each carries its reply.
pub(super) enum Command {
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
    /// Stop; `stopped`, when given, hears once the loop has dropped everything it held (the
    /// swarm, and its holds on the vault).
    Shutdown {
        stopped: Option<oneshot::Sender<()>>,
    },
}

/// What the event loop owns besides the swarm.
pub(super) struct Loop {
    pub(super) engine: Engine,
    pub(super) pairing: Pairing,
    pub(super) decisions: mpsc::Receiver<Decision>,
    pub(super) discovered: Discovered,
    pub(super) listen_addrs: Vec<Multiaddr>,
    /// The app's events (connections; the engine reports its own).
    pub(super) events: Option<mpsc::Sender<NodeEvent>>,
    /// What is learned of paired peers' addresses, for the address book.
    pub(super) learner: Learner,
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
            NodeBehaviourEvent::Mdns(e) => {
                // Unsigned answers: candidates, checked by a dial before the book keeps them.
                if let libp2p::mdns::Event::Discovered(found) = &e {
                    for (peer, addr) in found.iter().take(MAX_MDNS_NOTED) {
                        self.learner.discovered(*peer, addr);
                    }
                    probe(&mut self.learner, swarm);
                }
                self.discovered.on_event(swarm, e)
            }
            NodeBehaviourEvent::Identify(libp2p::identify::Event::Received {
                connection_id,
                peer_id,
                info,
            }) => {
                self.learner
                    .claimed(connection_id, peer_id, &info.listen_addrs);
                probe(&mut self.learner, swarm);
            }
            NodeBehaviourEvent::Identify(_) => {}
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
                let _ = reply.send(self.discovered.list());
            }
            Command::Shutdown { .. } => {}
        }
    }
}

/// Starts the probes `learner` wants: each dials one claimed address, expecting the peer, even
/// while connected to it (the address is what is checked).
fn probe(learner: &mut Learner, swarm: &mut Swarm<NodeBehaviour>) {
    learner.probe(std::time::Instant::now(), |peer, addr| {
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr])
            .condition(PeerCondition::Always)
            .build();
        let id = opts.connection_id();
        match swarm.dial(opts) {
            Ok(()) => Some(id),
            Err(e) => {
                debug!(%peer, "checking an address it was said to be at failed: {e}");
                None
            }
        }
    });
}

/// Runs the node until the handle asks it to stop (or every handle is gone), first handling
/// the behaviour events that arrived while the listeners started.
pub(super) async fn run(
    mut swarm: Swarm<NodeBehaviour>,
    mut l: Loop,
    mut rx: mpsc::Receiver<Command>,
    early: Vec<NodeBehaviourEvent>,
) {
    for event in early {
        l.on_behaviour(&mut swarm, event);
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let stopped = loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(e) => l.on_behaviour(&mut swarm, e),
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                    debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                    l.learner.opened(
                        connection_id,
                        peer_id,
                        endpoint.get_remote_address(),
                        endpoint.is_dialer(),
                        std::time::Instant::now(),
                    );
                    if num_established.get() == 1
                        && let Some(events) = &l.events
                    {
                        let dialed = endpoint.is_dialer().then(|| endpoint.get_remote_address().clone());
                        let _ = events.try_send(NodeEvent::Connected { peer: peer_id, dialed });
                    }
                }
                SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                    l.learner.dial_failed(connection_id);
                    if let (Some(expected), DialError::WrongPeerId { obtained, .. }) = (peer_id, &error) {
                        debug!(peer = %expected, obtained = %obtained, "dial reached another peer");
                        l.engine.dial_reached_wrong_peer(expected, *obtained);
                    }
                }
                SwarmEvent::IncomingConnectionError { error, send_back_addr, .. } => {
                    debug!(addr = %send_back_addr, "incoming connection failed: {error}");
                }
                SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. } => {
                    l.learner.closed(connection_id);
                    if num_established == 0 {
                        l.engine.peer_disconnected(peer_id);
                    }
                }
                _ => {}
            },
            command = rx.recv() => match command {
                None => break None,
                Some(Command::Shutdown { stopped }) => break stopped,
                Some(command) => l.on_command(&mut swarm, command),
            },
            Some(decision) = l.decisions.recv() => {
                l.pairing.decide(&mut swarm.behaviour_mut().pair, decision);
            }
            _ = tick.tick() => {
                l.engine.expire(std::time::Instant::now());
                l.pairing.expire(std::time::Instant::now());
                l.learner.tick(std::time::Instant::now());
                probe(&mut l.learner, &mut swarm);
            }
        }
        for peer in l.engine.take_disconnects() {
            let _ = swarm.disconnect_peer_id(peer);
        }
    };
    drop(l);
    drop(swarm);
    info!("node stopped");
    if let Some(stopped) = stopped {
        let _ = stopped.send(());
    }
}
