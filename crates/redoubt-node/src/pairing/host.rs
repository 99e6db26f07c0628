//! The host's side: one open offer, and the one attempt its code allows.

use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId, request_response::ResponseChannel};
use redoubt_protocol::pairing::{
    Host, MAX_PAYLOAD_ADDRS, PAIR_VERSION, PAIR_VERSION_3, PairCode, PairPayload, PairRefusal,
    PairRequest, PairResponse,
};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{
    PAIR_REQUEST_TIMEOUT, PairBehaviour, PairOffer, PairRequestHandle, Pairing, PairingEvent,
    grant, shareable_remotes,
};
use crate::Error;

/// An open offer: at most one per node.
pub(super) struct Offer {
    code: PairCode,
    clients: Vec<Vec<u8>>,
    expires: Instant,
    /// Set by the first `Hello` with the nameplate (or by expiry): the code works no more.
    burned: bool,
    attempt: Option<Attempt>,
    events: mpsc::Sender<PairingEvent>,
}

/// The one attempt of an offer, until it ends (then `Offer::attempt` is `None`).
enum Attempt {
    /// The host answered `Hello`; the joiner's `Confirm` is next.
    Challenged {
        peer: PeerId,
        host: Host,
        /// The version of the joiner's `Hello`: every frame of the attempt is in it.
        version: u8,
        deadline: Instant,
    },
    /// Both proved the code and the host's app was asked. `confirm` holds the answer to the
    /// joiner's `Confirm` until the host's user decides; then, if the host's user accepted,
    /// the joiner's `Decide` is next.
    Asking {
        peer: PeerId,
        host: Host,
        version: u8,
        confirm: Option<ResponseChannel<Vec<u8>>>,
        host_accepted: bool,
        deadline: Instant,
    },
}

impl Attempt {
    fn peer(&self) -> PeerId {
        match self {
            Self::Challenged { peer, .. } | Self::Asking { peer, .. } => *peer,
        }
    }

    fn version(&self) -> u8 {
        match self {
            Self::Challenged { version, .. } | Self::Asking { version, .. } => *version,
        }
    }
}

/// Sends `frame` in `version` (the version of the request it answers).
fn respond_as(
    behaviour: &mut PairBehaviour,
    channel: ResponseChannel<Vec<u8>>,
    frame: PairResponse,
    version: u8,
) {
    let bytes = frame.encode_as(version).unwrap_or_default();
    let _ = behaviour.send_response(channel, bytes);
}

fn refuse_as(
    behaviour: &mut PairBehaviour,
    channel: ResponseChannel<Vec<u8>>,
    reason: PairRefusal,
    version: u8,
) {
    respond_as(
        behaviour,
        channel,
        PairResponse::Refused { reason },
        version,
    );
}

impl Offer {
    /// Ends the attempt with `reason`, telling the app.
    fn fail(&mut self, peer: PeerId, reason: PairRefusal) {
        self.attempt = None;
        let _ = self.events.try_send(PairingEvent::Failed {
            peer: Some(peer),
            reason,
        });
    }
}

impl Pairing {
    /// Opens an offer of `clients` (replacing any open one).
    pub(crate) fn open(
        &mut self,
        clients: Vec<Vec<u8>>,
        ttl: Duration,
        payload_addrs: &[Multiaddr],
    ) -> Result<PairOffer, Error> {
        let code = PairCode::generate().map_err(Error::Protocol)?;
        let (tx, rx) = mpsc::channel(8);
        let expires = Instant::now()
            .checked_add(ttl)
            .ok_or_else(|| Error::Pairing("a pairing code's validity is out of range".into()))?;
        let payload = PairPayload {
            code: code.clone(),
            peer: self.local.to_base58(),
            addrs: payload_addrs
                .iter()
                .take(MAX_PAYLOAD_ADDRS)
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

    /// Answers a refusal that costs no work (no pairing here, a used or expired code), within
    /// the bounded rate; beyond it the request is dropped unanswered.
    fn refuse_cheaply(
        &mut self,
        behaviour: &mut PairBehaviour,
        peer: PeerId,
        channel: ResponseChannel<Vec<u8>>,
        reason: PairRefusal,
        version: u8,
    ) {
        if self.limiter.allow(peer, Instant::now()) {
            if reason == PairRefusal::Used {
                warn!(%peer, "pairing attempt with a code already tried");
            }
            refuse_as(behaviour, channel, reason, version);
        } else {
            debug!(%peer, "pairing refusal dropped: over the rate bound");
        }
    }

    /// Refuses cheaply with "no pairing here", in `version`.
    fn no_pairing(
        &mut self,
        behaviour: &mut PairBehaviour,
        peer: PeerId,
        channel: ResponseChannel<Vec<u8>>,
        version: u8,
    ) {
        self.refuse_cheaply(behaviour, peer, channel, PairRefusal::NoPairing, version);
    }

    /// One frame from a joiner.
    pub(super) fn on_request(
        &mut self,
        behaviour: &mut PairBehaviour,
        peer: PeerId,
        frame: &[u8],
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let decoded = match PairRequest::decode_any(frame) {
            Ok((version, _)) if version == PAIR_VERSION_3 && self.v2_only => {
                Err(redoubt_protocol::Error::UnsupportedVersion(version))
            }
            other => other,
        };
        let (version, request) = match decoded {
            Ok(r) => r,
            Err(e) => {
                debug!(%peer, "malformed pairing request: {e}");
                // Answered in version 3 when the frame says so (and this node speaks it).
                let version = match frame.first() {
                    Some(&PAIR_VERSION_3) if !self.v2_only => PAIR_VERSION_3,
                    _ => PAIR_VERSION,
                };
                return self.no_pairing(behaviour, peer, channel, version);
            }
        };
        let Some(offer) = self.offer.as_mut() else {
            return self.no_pairing(behaviour, peer, channel, version);
        };
        let now = Instant::now();
        let in_turn = offer
            .attempt
            .as_ref()
            .is_some_and(|a| a.peer() == peer && a.version() == version);
        match request {
            PairRequest::Hello {
                nameplate,
                spake,
                commitment,
            } => {
                let refusal = if nameplate != offer.code.nameplate() {
                    // Another host's code: not ours to burn.
                    Some(PairRefusal::NoPairing)
                } else if now >= offer.expires {
                    Some(PairRefusal::Expired)
                } else if offer.burned {
                    Some(PairRefusal::Used)
                } else {
                    None
                };
                if let Some(reason) = refusal {
                    return self.refuse_cheaply(behaviour, peer, channel, reason, version);
                }
                // The first attempt burns the code, whatever its outcome.
                offer.burned = true;
                let local = self.local.to_bytes();
                match Host::answer(&offer.code, &local, &peer.to_bytes(), &spake, &commitment) {
                    Ok((host, challenge)) => {
                        offer.attempt = Some(Attempt::Challenged {
                            peer,
                            host,
                            version,
                            deadline: now + PAIR_REQUEST_TIMEOUT,
                        });
                        respond_as(behaviour, channel, challenge, version);
                    }
                    Err(e) => {
                        warn!(%peer, "pairing attempt failed: {e}");
                        offer.fail(peer, PairRefusal::WrongCode);
                        refuse_as(behaviour, channel, PairRefusal::WrongCode, version);
                    }
                }
            }
            PairRequest::Confirm { tag, nonce } => {
                let Some(Attempt::Challenged { host, .. }) =
                    offer.attempt.as_ref().filter(|_| in_turn)
                else {
                    return self.no_pairing(behaviour, peer, channel, version);
                };
                let verification = match host.confirm(&tag, &nonce) {
                    Ok(v) => v,
                    Err(_) => {
                        warn!(%peer, "pairing attempt with a wrong code; the code is burned");
                        offer.fail(peer, PairRefusal::WrongCode);
                        return refuse_as(behaviour, channel, PairRefusal::WrongCode, version);
                    }
                };
                let Some(Attempt::Challenged { host, .. }) = offer.attempt.take() else {
                    return;
                };
                info!(%peer, "a device proved the pairing code; asking the user");
                let request = PairRequestHandle {
                    peer,
                    verification,
                    answer: Some(self.decisions.clone()),
                };
                if offer
                    .events
                    .try_send(PairingEvent::Request(request))
                    .is_err()
                {
                    // Nobody listens to the offer any more: decline.
                    offer.attempt = None;
                    return refuse_as(behaviour, channel, PairRefusal::Declined, version);
                }
                offer.attempt = Some(Attempt::Asking {
                    peer,
                    host,
                    version,
                    confirm: Some(channel),
                    host_accepted: false,
                    deadline: now + PAIR_REQUEST_TIMEOUT,
                });
            }
            PairRequest::Decide { accept } => {
                let Some(Attempt::Asking {
                    confirm,
                    host_accepted,
                    ..
                }) = offer.attempt.as_mut().filter(|_| in_turn)
                else {
                    return self.no_pairing(behaviour, peer, channel, version);
                };
                if !accept {
                    info!(%peer, "pairing declined on the other device");
                    if let Some(pending) = confirm.take() {
                        refuse_as(behaviour, pending, PairRefusal::Declined, version);
                    }
                    offer.fail(peer, PairRefusal::Declined);
                    return refuse_as(behaviour, channel, PairRefusal::Declined, version);
                }
                if !*host_accepted {
                    // Out of turn: the joiner accepts only after the host's `Accepted`.
                    return self.no_pairing(behaviour, peer, channel, version);
                }
                let clients = match grant(&self.vault, &peer, &offer.clients) {
                    Ok(granted) => granted,
                    Err(e) => {
                        warn!(%peer, "pairing not welcomed: {e}");
                        offer.fail(peer, PairRefusal::Unsaved);
                        return refuse_as(behaviour, channel, PairRefusal::Unsaved, version);
                    }
                };
                // The burned offer stays until it expires, so a second use reads "already used".
                let Some(Attempt::Asking { host, .. }) = offer.attempt.take() else {
                    return;
                };
                let (mut remotes, mut withheld) = (Vec::new(), Vec::new());
                let sealed = if version == PAIR_VERSION_3 {
                    match self.vault.read(|v| shareable_remotes(v.store(), &clients)) {
                        Ok((send, kept)) => (remotes, withheld) = (send, kept),
                        Err(e) => warn!(%peer, "no remote shared: {e}"),
                    }
                    match host.seal_remotes(&clients, &remotes) {
                        Ok(sealed) => Some(sealed),
                        Err(e) => {
                            warn!(%peer, "no remote shared: {e}");
                            remotes.clear();
                            host.seal_remotes(&clients, &[]).ok()
                        }
                    }
                } else {
                    None
                };
                let welcome = PairResponse::Welcome {
                    clients: clients.clone(),
                    remotes: sealed,
                };
                let mut bytes = welcome.encode_as(version).unwrap_or_default();
                if let Some(hook) = &self.hook {
                    hook.outgoing_pair(&peer, &mut bytes);
                }
                let _ = behaviour.send_response(channel, bytes);
                let names: Vec<String> = remotes.iter().map(|r| r.name.clone()).collect();
                info!(%peer, "paired on {} clients, {} remotes shared", clients.len(), names.len());
                let _ = offer.events.try_send(PairingEvent::Paired {
                    peer,
                    clients,
                    remotes: names,
                    withheld,
                });
            }
        }
    }

    /// The host's user answered the request of `peer`.
    pub(super) fn host_decides(
        &mut self,
        behaviour: &mut PairBehaviour,
        peer: PeerId,
        accept: bool,
    ) {
        let Some(offer) = self.offer.as_mut() else {
            return;
        };
        let Some(Attempt::Asking {
            peer: asking,
            version,
            confirm,
            host_accepted,
            deadline,
            ..
        }) = offer.attempt.as_mut()
        else {
            return;
        };
        if *asking != peer {
            return;
        }
        let Some(channel) = confirm.take() else {
            return; // answered already
        };
        let version = *version;
        if accept {
            info!(%peer, "pairing accepted here; waiting for the other device's user");
            *host_accepted = true;
            *deadline = Instant::now() + PAIR_REQUEST_TIMEOUT;
            respond_as(behaviour, channel, PairResponse::Accepted, version);
        } else {
            info!(%peer, "pairing declined");
            refuse_as(behaviour, channel, PairRefusal::Declined, version);
            offer.fail(peer, PairRefusal::Declined);
        }
    }

    /// Tells the app once when its offer's code expired untried, and ends an attempt whose
    /// next step did not come in time. The offer stays (answering "expired" to late attempts)
    /// until the next one replaces it.
    pub(super) fn expire_offer(&mut self, now: Instant) {
        let Some(offer) = &mut self.offer else {
            return;
        };
        if now >= offer.expires && !offer.burned {
            offer.burned = true;
            let _ = offer.events.try_send(PairingEvent::Failed {
                peer: None,
                reason: PairRefusal::Expired,
            });
        }
        let late = match &mut offer.attempt {
            Some(Attempt::Challenged { peer, deadline, .. }) if now >= *deadline => {
                Some((*peer, None))
            }
            Some(Attempt::Asking {
                peer,
                confirm,
                deadline,
                ..
            }) if now >= *deadline => Some((*peer, confirm.take())),
            _ => None,
        };
        if let Some((peer, confirm)) = late {
            // A held answer is dropped: the joiner's own request timed out about now too.
            drop(confirm);
            warn!(%peer, "pairing attempt timed out");
            offer.fail(peer, PairRefusal::Expired);
        }
    }
}
