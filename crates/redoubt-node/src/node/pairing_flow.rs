//! The handle's side of pairing: opening an offer, and joining a device by its code or QR
//! payload (finding it by address, payload or discovery), handed to the event loop's
//! [`crate::pairing`] state.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;

use super::{config::peer_id_of, event_loop::Command};
use crate::{Error, Handle, PairJoinRequest, PairOffer};

impl Handle {
    /// Opens a pairing offer of `clients` valid for `ttl` (see [`crate::PAIR_CODE_TTL`]; at
    /// most [`crate::MAX_PAIR_CODE_TTL`], else [`Error::Pairing`]; a zero `ttl` opens one that
    /// has already expired, which cancels an open offer):
    /// show [`PairOffer::code`] (and [`PairOffer::payload`] as a QR code), then answer the
    /// [`crate::PairingEvent::Request`] that [`PairOffer::next`] yields. Opening an offer
    /// replaces any open one.
    pub async fn pair_offer(
        &self,
        clients: Vec<Vec<u8>>,
        ttl: Duration,
    ) -> Result<PairOffer, Error> {
        if ttl > crate::MAX_PAIR_CODE_TTL {
            return Err(Error::Pairing(format!(
                "a pairing code is valid for at most {} s, not {} s",
                crate::MAX_PAIR_CODE_TTL.as_secs(),
                ttl.as_secs()
            )));
        }
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
}
