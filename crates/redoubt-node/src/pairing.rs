//! Pairing over libp2p (`/redoubt/pair/3`, and `/redoubt/pair/2` with older devices): the
//! host's open offer, the joiner's attempt, and
//! what the apps on both devices see of them. The SPAKE2 exchange itself is
//! `redoubt_protocol::pairing`; `docs/pairing.md` gives the flow.
//!
//! Both devices show the same [`Verification`] string and ask their users: the host's app gets a
//! [`PairingEvent::Request`], the joiner's app the [`PairJoinRequest`] that
//! [`crate::Handle::pair_join`] returns. Nothing is granted on either side unless both accept.
//!
//! In version 3 the host's welcome also carries the remotes on shared storage whose clients
//! are all shared with the joiner ([`shareable_remotes`]), sealed under the session's key; the
//! joiner stores each as a remote of its vault ([`PairJoinRequest::accept`]).

mod remotes;

mod host;
mod join;
mod limit;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use libp2p::{
    Multiaddr, PeerId, StreamProtocol,
    multiaddr::Protocol,
    request_response::{self, Message, ProtocolSupport},
};
use redoubt_protocol::{
    Mode,
    pairing::{
        PAIR_PROTOCOL_NAME, PAIR_PROTOCOL_NAME_V3, PairCode, PairRefusal, SharedRemote,
        Verification,
    },
};
use redoubt_vault::{AccessTable, Rights};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

pub use self::{
    limit::{PAIR_REFUSALS_PER_PEER_PER_SECOND, PAIR_REFUSALS_PER_SECOND},
    remotes::{RemoteJoin, RemoteOutcome, shareable_remotes},
};
use crate::{Error, FrameCodec, Handle, PullOutcome, ResponseHook, vault::Owner};

/// The request-response behaviour that carries pairing frames.
pub type PairBehaviour = request_response::Behaviour<FrameCodec>;

/// How long a code stays valid by default.
pub const PAIR_CODE_TTL: Duration = Duration::from_secs(300);
/// The longest a code may be made valid for: a day.
pub const MAX_PAIR_CODE_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a joiner waits for each of the host's answers (one includes the host user's
/// confirmation), and how long a host waits for the joiner's next step (one includes the
/// joiner user's confirmation).
pub const PAIR_REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

/// The pairing behaviour: versions 3 and 2 (asked for in that order), or 2 only.
pub(crate) fn pair_behaviour(v2_only: bool) -> PairBehaviour {
    let v3 = (!v2_only).then(|| {
        (
            StreamProtocol::new(PAIR_PROTOCOL_NAME_V3),
            ProtocolSupport::Full,
        )
    });
    let v2 = (
        StreamProtocol::new(PAIR_PROTOCOL_NAME),
        ProtocolSupport::Full,
    );
    request_response::Behaviour::with_codec(
        FrameCodec,
        v3.into_iter().chain([v2]),
        request_response::Config::default()
            .with_request_timeout(PAIR_REQUEST_TIMEOUT)
            .with_max_concurrent_streams(4),
    )
}

/// What happens to an open offer, as the host's app sees it.
#[derive(Debug)]
pub enum PairingEvent {
    /// A device proved it holds the code; show its verification string, then accept or
    /// reject it.
    Request(PairRequestHandle),
    /// A device tried a wrong code, a user declined (on either device), or the code or the
    /// attempt expired: the offer is over and nothing was granted.
    Failed {
        /// The device, if one tried.
        peer: Option<PeerId>,
        /// Why.
        reason: PairRefusal,
    },
    /// Paired: both users accepted and both read and write grants are recorded; the device
    /// imports next.
    Paired {
        /// The device.
        peer: PeerId,
        /// The clients it may now read and write.
        clients: Vec<Vec<u8>>,
        /// The remotes on shared storage sent to it, by name (none to a version 2 device).
        remotes: Vec<String>,
        /// The remotes kept back because they carry a client not shared with it.
        withheld: Vec<String>,
    },
}

/// An answer of a user, for the event loop.
#[derive(Debug)]
pub(crate) enum Decision {
    /// The host's user, on the device `peer` that proved the code.
    Host { peer: PeerId, accept: bool },
    /// The joiner's user, on the join `id`; `reply` hears the outcome.
    Join {
        id: u64,
        accept: bool,
        reply: Option<oneshot::Sender<Result<Paired, Error>>>,
    },
}

/// A device that proved it holds the code, waiting for the host's user. Dropping it without an
/// answer rejects it.
#[derive(Debug)]
pub struct PairRequestHandle {
    peer: PeerId,
    verification: Verification,
    answer: Option<mpsc::Sender<Decision>>,
}

impl PairRequestHandle {
    /// The device's peer id (show it, or its start, to the user).
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The verification string the other device shows too: the user accepts only if both
    /// devices show the same one.
    pub fn verification(&self) -> Verification {
        self.verification
    }

    /// Accepts. The pairing completes (grants on both sides) once the other device's user
    /// accepts too; [`PairOffer::next`] then yields [`PairingEvent::Paired`].
    pub async fn accept(mut self) -> Result<(), Error> {
        self.answer(true).await
    }

    /// Rejects: nothing changes on either side.
    pub async fn reject(mut self) -> Result<(), Error> {
        self.answer(false).await
    }

    async fn answer(&mut self, accept: bool) -> Result<(), Error> {
        let tx = self.answer.take().ok_or(Error::Shutdown)?;
        tx.send(Decision::Host {
            peer: self.peer,
            accept,
        })
        .await
        .map_err(|_| Error::Shutdown)
    }
}

impl Drop for PairRequestHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.answer.take() {
            let _ = tx.try_send(Decision::Host {
                peer: self.peer,
                accept: false,
            });
        }
    }
}

/// An open pairing on the host, as the app holds it.
#[derive(Debug)]
pub struct PairOffer {
    /// The one-time code to show.
    pub code: PairCode,
    /// The QR payload: the code, this node's peer id and addresses.
    pub payload: String,
    /// When the code stops working.
    pub expires: Instant,
    pub(crate) events: mpsc::Receiver<PairingEvent>,
}

impl PairOffer {
    /// The next thing that happens to the offer; `None` once it is over.
    pub async fn next(&mut self) -> Option<PairingEvent> {
        self.events.recv().await
    }
}

/// A completed pairing, on the joiner's side.
#[derive(Clone, Debug)]
pub struct Paired {
    /// The host's peer id.
    pub peer: PeerId,
    /// Addresses the host answered on.
    pub addrs: Vec<Multiaddr>,
    /// The clients shared, with read and write grants both ways.
    pub clients: Vec<Vec<u8>>,
    /// What became of each remote the host shared (filled by [`PairJoinRequest::accept`]).
    pub remotes: Vec<RemoteJoin>,
    /// Why the remotes the host sent were all refused (they did not open or decode), if so.
    pub remotes_refused: Option<String>,
    /// The remotes as received, until they are joined.
    pub(crate) received: Vec<SharedRemote>,
}

/// What the event loop hands back when the host proved it knows the code.
#[derive(Debug)]
pub(crate) struct JoinStarted {
    pub(crate) peer: PeerId,
    pub(crate) verification: Verification,
    pub(crate) id: u64,
    pub(crate) decisions: mpsc::Sender<Decision>,
}

/// A host that proved it knows the code, waiting for this device's user: show the
/// [`Self::verification`] string (the host shows the same one), then accept or reject.
/// Dropping it without an answer rejects it.
#[derive(Debug)]
pub struct PairJoinRequest {
    started: JoinStarted,
    answered: bool,
    node: Handle,
    wait: Duration,
}

impl PairJoinRequest {
    pub(crate) fn new(started: JoinStarted, node: Handle, wait: Duration) -> Self {
        Self {
            started,
            answered: false,
            node,
            wait,
        }
    }

    /// The host's peer id.
    pub fn peer(&self) -> PeerId {
        self.started.peer
    }

    /// The verification string the host shows too: the user accepts only if both devices
    /// show the same one.
    pub fn verification(&self) -> Verification {
        self.started.verification
    }

    /// Accepts, then waits for the host's user (up to [`PAIR_REQUEST_TIMEOUT`]). Once both
    /// accepted, both sides hold read and write grants on the shared clients; this node stores
    /// the remotes the host shared ([`Paired::remotes`] says what became of each) and imports
    /// the clients at once; returns the pairing and that import. The grants stay even if
    /// the import then fails (a later sync completes it).
    pub async fn accept(mut self) -> Result<(Paired, PullOutcome), Error> {
        let mut paired = self.answer(true).await?;
        let received = std::mem::take(&mut paired.received);
        paired.remotes = remotes::join_all(&self.node, &paired.clients, received).await;
        let addr = match paired.addrs.first() {
            Some(a) if matches!(a.iter().last(), Some(Protocol::P2p(_))) => a.clone(),
            Some(a) => a.clone().with(Protocol::P2p(paired.peer)),
            None => self.node.discover(paired.peer, self.wait).await?,
        };
        let imported = self
            .node
            .pull(
                &addr,
                Mode::Import {
                    clients: paired.clients.clone(),
                },
            )
            .await?;
        Ok((paired, imported))
    }

    /// Rejects: nothing changes on either side. Returns once the host heard of it (or could
    /// not be told).
    pub async fn reject(mut self) -> Result<(), Error> {
        match self.answer(false).await {
            Err(Error::Shutdown) => Err(Error::Shutdown),
            _ => Ok(()),
        }
    }

    async fn answer(&mut self, accept: bool) -> Result<Paired, Error> {
        self.answered = true;
        let (reply, rx) = oneshot::channel();
        self.started
            .decisions
            .send(Decision::Join {
                id: self.started.id,
                accept,
                reply: Some(reply),
            })
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }
}

impl Drop for PairJoinRequest {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.started.decisions.try_send(Decision::Join {
                id: self.started.id,
                accept: false,
                reply: None,
            });
        }
    }
}

/// Pairing state of a node: the offer it hosts and the attempts it runs.
pub(crate) struct Pairing {
    vault: Owner,
    local: PeerId,
    /// Speak version 2 only (tests of older devices).
    v2_only: bool,
    hook: Option<Arc<dyn ResponseHook>>,
    offer: Option<host::Offer>,
    joins: join::Joins,
    limiter: limit::RefusalLimiter,
    decisions: mpsc::Sender<Decision>,
}

impl Pairing {
    pub(crate) fn new(vault: Owner, local: PeerId, decisions: mpsc::Sender<Decision>) -> Self {
        Self {
            vault,
            local,
            v2_only: false,
            hook: None,
            offer: None,
            joins: join::Joins::default(),
            limiter: limit::RefusalLimiter::new(Instant::now()),
            decisions,
        }
    }

    /// Test options: version 2 only, and a hook on the pairing responses.
    pub(crate) fn set_test_options(&mut self, v2_only: bool, hook: Option<Arc<dyn ResponseHook>>) {
        self.v2_only = v2_only;
        self.hook = hook;
    }

    /// Handles one event of the pairing behaviour.
    pub(crate) fn handle_event(
        &mut self,
        behaviour: &mut PairBehaviour,
        event: request_response::Event<Vec<u8>, Vec<u8>>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => self.on_request(behaviour, peer, &request, channel),
                Message::Response {
                    request_id,
                    response,
                } => self.on_response(behaviour, request_id, &response),
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => self.on_failure(behaviour, request_id, &error),
            _ => {}
        }
    }

    /// A user answered.
    pub(crate) fn decide(&mut self, behaviour: &mut PairBehaviour, decision: Decision) {
        match decision {
            Decision::Host { peer, accept } => self.host_decides(behaviour, peer, accept),
            Decision::Join { id, accept, reply } => {
                self.join_decides(behaviour, id, accept, reply);
            }
        }
    }

    /// Ends attempts and offers whose time is up, telling the app.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.expire_offer(now);
    }
}

/// A pairing failure as the user reads it.
fn pair_error(e: redoubt_protocol::Error) -> Error {
    match e {
        redoubt_protocol::Error::PairRefused(reason) => Error::PairRefused(reason),
        e @ redoubt_protocol::Error::BadCode(_) => Error::Pairing(e.to_string()),
        e => Error::Protocol(e),
    }
}

/// Grants `peer` read and write on `clients` in ONE commit of the vault, and returns the
/// clients granted: the caller acknowledges them (a welcome, or the joiner's import) only once
/// this returned `Ok`, and names only those. A client the grant table refuses (a bad path, as a
/// peer's welcome may carry) is logged and skipped; a failed commit records no grant at all.
fn grant(vault: &Owner, peer: &PeerId, clients: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, Error> {
    let key = peer.to_base58();
    let rights = Rights {
        read: true,
        write: true,
    };
    let mut granted: Vec<Vec<u8>> = Vec::with_capacity(clients.len());
    for c in clients {
        match AccessTable::default().grant(key.as_bytes(), c, rights) {
            Ok(()) if !granted.contains(c) => granted.push(c.clone()),
            Ok(()) => {}
            Err(e) => warn!(%peer, "could not record a grant: {e}"),
        }
    }
    let grants: Vec<(&[u8], Rights)> = granted.iter().map(|c| (c.as_slice(), rights)).collect();
    vault.write(|v| v.set_rights_many(peer, &grants))?;
    Ok(granted)
}
