//! The handle: what an app holds to ask a running node for pulls, pushes and syncs. It sends
//! commands to the event loop and awaits their replies; it offers no lock on the store (the
//! app keeps the [`crate::Shared`] it gave [`crate::spawn`]).

use libp2p::{Multiaddr, PeerId};
use redoubt_protocol::Mode;
use redoubt_sync::{Directions, Link, pull_then_push};
use redoubt_vault::MergeReport;
use tokio::sync::{mpsc, oneshot, watch};

use super::{config::peer_id_of, event_loop::Command};
use crate::{
    Direction, Error, Progress, PullOutcome, RecordSink, Shared, SyncOutcome, granted_mode,
};

/// A running node's handle: cheap to clone, usable from any task.
#[derive(Clone, Debug)]
pub struct Handle {
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) peer_id: PeerId,
    pub(super) listen_addrs: Vec<Multiaddr>,
    /// Read for the grant check before a sync; never handed out.
    pub(super) shared: Shared,
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
        self.send(Command::Pull {
            addr: addr.clone(),
            mode,
            progress,
            sink,
            reply,
        })
        .await?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Asks the peer at `addr` to pull `mode` from us; returns what it merged. The peer checks
    /// its own `write` grants for us.
    pub async fn push(&self, addr: &Multiaddr, mode: Mode) -> Result<MergeReport, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Push {
            addr: addr.clone(),
            mode,
            reply,
        })
        .await?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    /// Pulls then pushes, so both sides end converged on `mode`, as far as our grants let
    /// records move: the pull takes only clients we let the peer write, the push offers only
    /// clients we let it read. A mode that names a client needs both grants and fails with
    /// [`Error::NotGranted`] before anything moves; an import of every client moves exactly
    /// those both tables allow. A side that lacks the client is not an error as long as the
    /// other holds it (the rule is [`redoubt_sync::pull_then_push`]).
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
        match pull_then_push(&mut self.link(addr, progress), mode, Directions::Both).await {
            Ok(done) => Ok(SyncOutcome {
                pulled: done.pulled.unwrap_or_default(),
                pushed: done.pushed.unwrap_or_default(),
            }),
            // Neither side holds the client: the pull's refusal says so first.
            Err(failed) => Err(failed.earlier.unwrap_or(failed.error)),
        }
    }

    /// The peer at `addr` as a [`Link`] for [`redoubt_sync::pull_then_push`]; its first pull
    /// reports progress on `progress`.
    pub fn link<'a>(
        &'a self,
        addr: &'a Multiaddr,
        progress: Option<watch::Sender<Progress>>,
    ) -> PeerLink<'a> {
        PeerLink {
            handle: self,
            addr,
            progress,
        }
    }

    pub(super) async fn send(&self, command: Command) -> Result<(), Error> {
        self.tx.send(command).await.map_err(|_| Error::Shutdown)
    }

    /// Stops the event loop; in-flight operations fail with [`Error::Shutdown`].
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }
}

/// A live peer reached through a [`Handle`], as a [`Link`]: pulls merge into the node's store,
/// pushes ask the peer to pull from us. Made by [`Handle::link`].
#[derive(Debug)]
pub struct PeerLink<'a> {
    handle: &'a Handle,
    addr: &'a Multiaddr,
    progress: Option<watch::Sender<Progress>>,
}

impl Link for PeerLink<'_> {
    type Pulled = PullOutcome;
    type Error = Error;

    async fn pull(&mut self, mode: Mode) -> Result<PullOutcome, Error> {
        let progress = self.progress.take();
        self.handle
            .pull_with_progress(self.addr, mode, progress)
            .await
    }

    async fn push(&mut self, mode: Mode) -> Result<MergeReport, Error> {
        self.handle.push(self.addr, mode).await
    }
}
