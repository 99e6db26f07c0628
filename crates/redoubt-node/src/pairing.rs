//! Pairing over libp2p (`/redoubt/pair/1`): the host's open offer, the joiner's attempt, and
//! what the app sees of them. The SPAKE2 exchange itself is `redoubt_protocol::pairing`.

use std::time::{Duration, Instant};

use libp2p::{
    Multiaddr, PeerId, StreamProtocol,
    request_response::{
        self, Message, OutboundFailure, OutboundRequestId, ProtocolSupport, ResponseChannel,
    },
};
use redoubt_protocol::pairing::{
    Host, Joiner, PAIR_PROTOCOL_NAME, PairCode, PairRefusal, PairRequest, PairResponse,
};
use redoubt_vault::Rights;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::{Error, FrameCodec, Shared};

/// The request-response behaviour that carries pairing frames.
pub type PairBehaviour = request_response::Behaviour<FrameCodec>;

/// How long a code stays valid by default.
pub const PAIR_CODE_TTL: Duration = Duration::from_secs(300);
/// How long a joiner waits for the host's answer (it includes the host user's confirmation).
pub const PAIR_REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

/// The pairing behaviour.
pub(crate) fn pair_behaviour() -> PairBehaviour {
    request_response::Behaviour::with_codec(
        FrameCodec,
        [(
            StreamProtocol::new(PAIR_PROTOCOL_NAME),
            ProtocolSupport::Full,
        )],
        request_response::Config::default()
            .with_request_timeout(PAIR_REQUEST_TIMEOUT)
            .with_max_concurrent_streams(4),
    )
}

/// What happens to an open offer, as the host's app sees it.
#[derive(Debug)]
pub enum PairingEvent {
    /// A device proved it holds the code; accept or reject it.
    Request(PairRequestHandle),
    /// A device tried a wrong code, or the code expired: the offer is over.
    Failed {
        /// The device, if one tried.
        peer: Option<PeerId>,
        /// Why.
        reason: PairRefusal,
    },
    /// Paired: both read and write grants are recorded; the device imports next.
    Paired {
        /// The device.
        peer: PeerId,
        /// The clients it may now read and write.
        clients: Vec<Vec<u8>>,
    },
}

/// A device that proved it holds the code, waiting for the host's user.
#[derive(Debug)]
pub struct PairRequestHandle {
    peer: PeerId,
    answer: mpsc::Sender<(PeerId, bool)>,
}

impl PairRequestHandle {
    /// The device's peer id (show it, or its start, to the user).
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Accepts: both sides record read and write grants on the offered clients.
    pub async fn accept(self) -> Result<(), Error> {
        self.answer
            .send((self.peer, true))
            .await
            .map_err(|_| Error::Shutdown)
    }

    /// Rejects: nothing changes on either side.
    pub async fn reject(self) -> Result<(), Error> {
        self.answer
            .send((self.peer, false))
            .await
            .map_err(|_| Error::Shutdown)
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
}

/// The host's side: at most one open offer.
struct Offer {
    code: PairCode,
    clients: Vec<Vec<u8>>,
    expires: Instant,
    burned: bool,
    attempt: Option<(PeerId, Host)>,
    waiting: Option<(PeerId, ResponseChannel<Vec<u8>>)>,
    events: mpsc::Sender<PairingEvent>,
}

/// The joiner's side of one pairing: the hosts to try, in order.
struct Join {
    code: PairCode,
    candidates: Vec<(PeerId, Vec<Multiaddr>)>,
    current: Option<(PeerId, Vec<Multiaddr>, Joiner)>,
    reply: oneshot::Sender<Result<Paired, Error>>,
}

/// Pairing state of a node: the offer it hosts and the attempts it runs.
pub(crate) struct Pairing {
    shared: Shared,
    local: PeerId,
    offer: Option<Offer>,
    joins: std::collections::HashMap<OutboundRequestId, Join>,
    decisions: mpsc::Sender<(PeerId, bool)>,
}

impl Pairing {
    pub(crate) fn new(
        shared: Shared,
        local: PeerId,
        decisions: mpsc::Sender<(PeerId, bool)>,
    ) -> Self {
        Self {
            shared,
            local,
            offer: None,
            joins: std::collections::HashMap::new(),
            decisions,
        }
    }

    /// Opens an offer of `clients` (replacing any open one).
    pub(crate) fn open(
        &mut self,
        clients: Vec<Vec<u8>>,
        ttl: Duration,
        payload_addrs: &[Multiaddr],
    ) -> Result<PairOffer, Error> {
        let code = PairCode::generate().map_err(Error::Protocol)?;
        let (tx, rx) = mpsc::channel(8);
        let expires = Instant::now() + ttl;
        let payload = redoubt_protocol::pairing::PairPayload {
            code: code.clone(),
            peer: self.local.to_base58(),
            addrs: payload_addrs
                .iter()
                .take(redoubt_protocol::pairing::MAX_PAYLOAD_ADDRS)
                .map(ToString::to_string)
                .collect(),
        }
        .to_string();
        self.offer = Some(Offer {
            code: code.clone(),
            clients,
            expires,
            burned: false,
            attempt: None,
            waiting: None,
            events: tx,
        });
        info!("pairing open (nameplate {})", code.nameplate());
        Ok(PairOffer {
            code,
            payload,
            expires,
            events: rx,
        })
    }

    /// Starts a join towards the first of `candidates`.
    pub(crate) fn join(
        &mut self,
        behaviour: &mut PairBehaviour,
        code: PairCode,
        candidates: Vec<(PeerId, Vec<Multiaddr>)>,
        reply: oneshot::Sender<Result<Paired, Error>>,
    ) {
        let join = Join {
            code,
            candidates,
            current: None,
            reply,
        };
        self.next_candidate(behaviour, join);
    }

    fn next_candidate(&mut self, behaviour: &mut PairBehaviour, mut join: Join) {
        if join.candidates.is_empty() {
            let _ = join.reply.send(Err(Error::Pairing(
                "no device with that code answered (is `redoubt pair` still waiting on it?)".into(),
            )));
            return;
        }
        let (peer, addrs) = join.candidates.remove(0);
        let (joiner, hello) = Joiner::start(&join.code, &peer.to_bytes(), &self.local.to_bytes());
        match hello.encode() {
            Ok(frame) => {
                let id = behaviour.send_request_with_addresses(&peer, frame, addrs.clone());
                join.current = Some((peer, addrs, joiner));
                self.joins.insert(id, join);
            }
            Err(e) => {
                let _ = join.reply.send(Err(Error::Protocol(e)));
            }
        }
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
            } => {
                if let Some(join) = self.joins.remove(&request_id) {
                    warn!("pairing request failed: {error}");
                    if matches!(error, OutboundFailure::DialFailure) && !join.candidates.is_empty()
                    {
                        return self.next_candidate(behaviour, join);
                    }
                    let _ = join
                        .reply
                        .send(Err(Error::Pairing(format!("the other device: {error}"))));
                }
            }
            _ => {}
        }
    }

    fn refuse(
        behaviour: &mut PairBehaviour,
        channel: ResponseChannel<Vec<u8>>,
        reason: PairRefusal,
    ) {
        let frame = PairResponse::Refused { reason }
            .encode()
            .unwrap_or_default();
        let _ = behaviour.send_response(channel, frame);
    }

    fn on_request(
        &mut self,
        behaviour: &mut PairBehaviour,
        peer: PeerId,
        frame: &[u8],
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let request = match PairRequest::decode(frame) {
            Ok(r) => r,
            Err(e) => {
                warn!(%peer, "malformed pairing request: {e}");
                return Self::refuse(behaviour, channel, PairRefusal::NoPairing);
            }
        };
        let Some(offer) = self.offer.as_mut() else {
            return Self::refuse(behaviour, channel, PairRefusal::NoPairing);
        };
        match request {
            PairRequest::Hello { nameplate, spake } => {
                if nameplate != offer.code.nameplate() {
                    // Another host's code: not ours to burn.
                    return Self::refuse(behaviour, channel, PairRefusal::NoPairing);
                }
                if Instant::now() >= offer.expires {
                    return Self::refuse(behaviour, channel, PairRefusal::Expired);
                }
                if offer.burned {
                    warn!(%peer, "pairing attempt with a code already tried");
                    return Self::refuse(behaviour, channel, PairRefusal::Used);
                }
                // The first attempt burns the code, whatever its outcome.
                offer.burned = true;
                match Host::answer(
                    &offer.code,
                    &self.local.to_bytes(),
                    &peer.to_bytes(),
                    &spake,
                ) {
                    Ok((host, challenge)) => {
                        offer.attempt = Some((peer, host));
                        let _ = behaviour
                            .send_response(channel, challenge.encode().unwrap_or_default());
                    }
                    Err(e) => {
                        warn!(%peer, "pairing attempt failed: {e}");
                        let _ = offer.events.try_send(PairingEvent::Failed {
                            peer: Some(peer),
                            reason: PairRefusal::WrongCode,
                        });
                        Self::refuse(behaviour, channel, PairRefusal::WrongCode);
                    }
                }
            }
            PairRequest::Confirm { tag } => {
                let Some((attempt_peer, host)) = offer.attempt.take() else {
                    return Self::refuse(behaviour, channel, PairRefusal::NoPairing);
                };
                if attempt_peer != peer {
                    offer.attempt = Some((attempt_peer, host));
                    return Self::refuse(behaviour, channel, PairRefusal::NoPairing);
                }
                if host.confirm(&tag).is_err() {
                    warn!(%peer, "pairing attempt with a wrong code; the code is burned");
                    let _ = offer.events.try_send(PairingEvent::Failed {
                        peer: Some(peer),
                        reason: PairRefusal::WrongCode,
                    });
                    return Self::refuse(behaviour, channel, PairRefusal::WrongCode);
                }
                info!(%peer, "a device proved the pairing code; asking the user");
                offer.waiting = Some((peer, channel));
                let request = PairRequestHandle {
                    peer,
                    answer: self.decisions.clone(),
                };
                if offer
                    .events
                    .try_send(PairingEvent::Request(request))
                    .is_err()
                {
                    // Nobody listens to the offer any more: decline.
                    if let Some((_, channel)) = offer.waiting.take() {
                        Self::refuse(behaviour, channel, PairRefusal::Declined);
                    }
                }
            }
        }
    }

    /// The host's user answered the request of `peer`.
    pub(crate) fn decide(&mut self, behaviour: &mut PairBehaviour, peer: PeerId, accept: bool) {
        let Some(offer) = self.offer.as_mut() else {
            return;
        };
        let Some((waiting, channel)) = offer.waiting.take() else {
            return;
        };
        if waiting != peer {
            offer.waiting = Some((waiting, channel));
            return;
        }
        if !accept {
            info!(%peer, "pairing declined");
            Self::refuse(behaviour, channel, PairRefusal::Declined);
            let _ = offer.events.try_send(PairingEvent::Failed {
                peer: Some(peer),
                reason: PairRefusal::Declined,
            });
            return;
        }
        let clients = offer.clients.clone();
        grant(&self.shared, &peer, &clients);
        let frame = PairResponse::Welcome {
            clients: clients.clone(),
        }
        .encode()
        .unwrap_or_default();
        let _ = behaviour.send_response(channel, frame);
        info!(%peer, "paired on {} clients", clients.len());
        let _ = offer
            .events
            .try_send(PairingEvent::Paired { peer, clients });
        // The burned offer stays until it expires, so a second use reads "already used".
    }

    fn on_response(&mut self, behaviour: &mut PairBehaviour, id: OutboundRequestId, frame: &[u8]) {
        let Some(mut join) = self.joins.remove(&id) else {
            return;
        };
        let Some((peer, addrs, mut joiner)) = join.current.take() else {
            return;
        };
        let response = match PairResponse::decode(frame) {
            Ok(r) => r,
            Err(e) => {
                let _ = join.reply.send(Err(Error::Protocol(e)));
                return;
            }
        };
        match response {
            PairResponse::Refused {
                reason: PairRefusal::NoPairing,
            } if !join.candidates.is_empty() => self.next_candidate(behaviour, join),
            PairResponse::Challenge { .. } => match joiner.challenge(&response) {
                Ok(confirm) => match confirm.encode() {
                    Ok(frame) => {
                        let id = behaviour.send_request(&peer, frame);
                        join.current = Some((peer, addrs, joiner));
                        self.joins.insert(id, join);
                    }
                    Err(e) => {
                        let _ = join.reply.send(Err(Error::Protocol(e)));
                    }
                },
                Err(e) => {
                    let _ = join.reply.send(Err(pair_error(e)));
                }
            },
            other => {
                let result = joiner.welcome(&other).map_err(pair_error).map(|clients| {
                    grant(&self.shared, &peer, &clients);
                    info!(%peer, "paired on {} clients", clients.len());
                    Paired {
                        peer,
                        addrs,
                        clients,
                    }
                });
                let _ = join.reply.send(result);
            }
        }
    }

    /// Tells the app once when its offer's code expired untried. The offer stays (answering
    /// "expired" to late attempts) until the next one replaces it.
    pub(crate) fn expire(&mut self, now: Instant) {
        if let Some(offer) = &mut self.offer
            && now >= offer.expires
            && !offer.burned
        {
            offer.burned = true;
            let _ = offer.events.try_send(PairingEvent::Failed {
                peer: None,
                reason: PairRefusal::Expired,
            });
        }
    }
}

/// A pairing failure as the user reads it.
fn pair_error(e: redoubt_protocol::Error) -> Error {
    match e {
        redoubt_protocol::Error::PairRefused(reason) => Error::Pairing(reason.to_string()),
        e @ redoubt_protocol::Error::BadCode(_) => Error::Pairing(e.to_string()),
        e => Error::Protocol(e),
    }
}

/// Records read and write grants for `peer` on `clients`.
fn grant(shared: &Shared, peer: &PeerId, clients: &[Vec<u8>]) {
    let key = peer.to_base58();
    let mut store = shared.lock();
    for c in clients {
        if let Err(e) = store.access.grant(
            key.as_bytes(),
            c,
            Rights {
                read: true,
                write: true,
            },
        ) {
            warn!(%peer, "could not record a grant: {e}");
        }
    }
}
