//! The handle: what an app holds to ask a running node for pulls, pushes and syncs (commands
//! sent to the event loop, their replies awaited), and to read and change the node's vault
//! ([`Handle::read`], [`Handle::write`]: a closure on the vault, never a lock guard).

use libp2p::{Multiaddr, PeerId};
use redoubt_protocol::Mode;
use redoubt_sync::{Directions, Link, pull_then_push};
use redoubt_vault::MergeReport;
use tokio::sync::{mpsc, oneshot, watch};

use super::{config::peer_id_of, event_loop::Command};
use crate::{
    Direction, Error, Progress, PullOutcome, RecordSink, SyncOutcome, Vault, granted_mode,
    vault::Owner,
};

/// A running node's handle: cheap to clone, usable from any task.
#[derive(Clone, Debug)]
pub struct Handle {
    pub(super) tx: mpsc::Sender<Command>,
    pub(super) peer_id: PeerId,
    pub(super) listen_addrs: Vec<Multiaddr>,
    /// The node's vault, lent to closures only.
    pub(super) vault: Owner,
}

impl Handle {
    /// Runs `f` on the node's vault and returns what it returns. Keep it short and never
    /// await inside: the node's event loop waits for the vault meanwhile. Not re-entrant:
    /// calling [`Self::read`] or [`Self::write`] from inside `f` deadlocks. The node itself
    /// holds the vault for one step at a time (a shape batch, a chunk, one merge with its
    /// fsync), so a call may wait that long.
    pub fn read<R>(&self, f: impl FnOnce(&Vault) -> R) -> R {
        self.vault.read(f)
    }

    /// Runs `f` on the node's vault to change it. Every mutator of [`Vault`] commits before it
    /// returns `Ok`, so what `f` changed is durable (for a vault on a file) when this returns.
    /// Keep it short, as [`Self::read`].
    pub fn write<R>(&self, f: impl FnOnce(&mut Vault) -> R) -> R {
        self.vault.write(f)
    }

    /// A stream of the vault's changes from now on, whoever made them (this app, a peer's
    /// merge): see [`Vault::changes`].
    pub fn changes(&self) -> crate::Changes {
        self.vault.read(Vault::changes)
    }

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
    /// vault (for apps that keep records elsewhere). The outcome's report stays empty.
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
            self.read(|v| {
                for direction in [Direction::In, Direction::Out] {
                    granted_mode(v.grants(), &peer, mode.clone(), direction)?;
                }
                Ok::<_, Error>(())
            })?;
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
        let _ = self.tx.send(Command::Shutdown { stopped: None }).await;
    }

    /// Stops the node and gives its vault back, once the event loop has let go of it (closing
    /// the database, or reopening the same file, then works). In-flight operations fail with
    /// [`Error::Shutdown`]. Fails with [`Error::VaultInUse`] while another clone of this
    /// handle is alive (the node is stopped all the same).
    pub async fn stop(self) -> Result<Vault, Error> {
        let (stopped, rx) = oneshot::channel();
        let sent = self
            .tx
            .send(Command::Shutdown {
                stopped: Some(stopped),
            })
            .await;
        if sent.is_ok() {
            // An error here means the loop had already ended (and dropped what it held).
            let _ = rx.await;
        }
        self.vault.into_vault().ok_or(Error::VaultInUse)
    }
}

/// A live peer reached through a [`Handle`], as a [`Link`]: pulls merge into the node's vault,
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

/// A running node's vault synced with a remote on shared storage: each step of the sync holds
/// the vault briefly (see [`Handle::read`]), never across a request to storage, so the node
/// serves its peers meanwhile.
impl redoubt_remote::Access for Handle {
    fn read<R>(&self, f: impl FnOnce(&redoubt_store::Store) -> R) -> R {
        self.vault.read(|v| redoubt_remote::Access::read(v, f))
    }

    fn write<R>(&mut self, f: impl FnOnce(&mut redoubt_store::Store) -> R) -> R {
        self.vault.write(|v| redoubt_remote::Access::write(v, f))
    }

    fn merge<R>(
        &mut self,
        remote: &str,
        f: impl FnOnce(&mut redoubt_store::Store, Option<&mut redoubt_remote::Noter<'_>>) -> R,
    ) -> R {
        self.vault
            .write(|v| redoubt_remote::Access::merge(v, remote, f))
    }
}
