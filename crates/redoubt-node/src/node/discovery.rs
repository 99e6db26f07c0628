//! Finding peers on the local network by mDNS: the behaviour, what the event loop remembers
//! of its answers (bounded), and the handle's ways to ask.

use std::{collections::HashMap, time::Duration};

use libp2p::{
    Multiaddr, PeerId, Swarm, identity::Keypair, mdns, multiaddr::Protocol,
    swarm::behaviour::toggle::Toggle,
};
use tokio::{sync::oneshot, time::Instant};
use tracing::debug;

use super::{config::NodeBehaviour, event_loop::Command};
use crate::{Error, Handle};

/// How often mDNS asks the network again (it also answers others' questions at any time).
const MDNS_QUERY_INTERVAL: Duration = Duration::from_secs(10);
/// Most peers (and addresses per peer) remembered from discovery.
const MAX_DISCOVERED: usize = 256;
/// How often the handle asks the event loop again while it waits for discovery.
const POLL: Duration = Duration::from_millis(200);

/// The mDNS behaviour for the peer `key` names, or none when discovery is off.
pub(super) fn mdns_behaviour(
    key: &Keypair,
    on: bool,
) -> Result<Toggle<mdns::tokio::Behaviour>, std::io::Error> {
    let behaviour = if on {
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
    Ok(Toggle::from(behaviour))
}

/// The peers discovery found and has not seen expire, each with its addresses.
#[derive(Default)]
pub(super) struct Discovered {
    peers: HashMap<PeerId, Vec<Multiaddr>>,
}

impl Discovered {
    /// Remembers what `event` found (and tells the swarm where to dial it), or forgets what
    /// expired. At most [`MAX_DISCOVERED`] peers and addresses per peer are kept.
    pub(super) fn on_event(&mut self, swarm: &mut Swarm<NodeBehaviour>, event: mdns::Event) {
        match event {
            mdns::Event::Discovered(found) => {
                for (peer, addr) in found {
                    if self.peers.len() >= MAX_DISCOVERED && !self.peers.contains_key(&peer) {
                        continue;
                    }
                    debug!(%peer, %addr, "discovered on the local network");
                    swarm.add_peer_address(peer, addr.clone());
                    let addrs = self.peers.entry(peer).or_default();
                    if !addrs.contains(&addr) && addrs.len() < MAX_DISCOVERED {
                        addrs.push(addr);
                    }
                }
            }
            mdns::Event::Expired(gone) => {
                for (peer, addr) in gone {
                    if let Some(addrs) = self.peers.get_mut(&peer) {
                        addrs.retain(|a| *a != addr);
                        if addrs.is_empty() {
                            self.peers.remove(&peer);
                        }
                    }
                }
            }
        }
    }

    /// Every peer known, with its addresses.
    pub(super) fn list(&self) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.peers.iter().map(|(p, a)| (*p, a.clone())).collect()
    }
}

impl Handle {
    /// Peers found by discovery so far, each with its addresses.
    pub async fn discovered(&self) -> Result<Vec<(PeerId, Vec<Multiaddr>)>, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Discovered { reply }).await?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Waits up to `wait` for discovery to find any peer; returns those found.
    pub(super) async fn discovered_within(
        &self,
        wait: Duration,
    ) -> Result<Vec<(PeerId, Vec<Multiaddr>)>, Error> {
        let deadline = Instant::now() + wait;
        loop {
            let found = self.discovered().await?;
            if !found.is_empty() || Instant::now() >= deadline {
                return Ok(found);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits up to `wait` for discovery to find `peer` on the local network; returns an address
    /// to dial it at (ending with `/p2p/PEER_ID`). Needs [`crate::NodeConfig::discovery`].
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
            tokio::time::sleep(POLL).await;
        }
    }
}
