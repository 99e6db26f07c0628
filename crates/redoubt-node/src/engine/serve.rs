//! The responder's side: admitting pulls under grants or invitations, serving chunks, and
//! answering pushes by pulling.

use std::time::Instant;

use libp2p::{PeerId, request_response::ResponseChannel};
use redoubt_protocol::{
    Mode, Open, OpenSketch, Peers, Refusal, RefusalCode, Responder, Response, Scope, SessionId,
};
use redoubt_vault::Instance;
use tracing::{info, warn};

use super::{
    Behaviour, Done, Engine, MAX_INVITED_PULLS_PER_PEER, MAX_PULLS, MAX_SESSIONS,
    MAX_SESSIONS_PER_PEER, Served,
};
use crate::{
    NodeEvent,
    grants::{Direction, granted_clients, granted_mode},
};

/// The first request of a session, of either version.
pub(super) enum Opening {
    V1(Open),
    V2(OpenSketch),
}

impl From<Open> for Opening {
    fn from(open: Open) -> Self {
        Self::V1(open)
    }
}

impl From<OpenSketch> for Opening {
    fn from(open: OpenSketch) -> Self {
        Self::V2(open)
    }
}

impl Opening {
    fn mode(&self) -> &Mode {
        match self {
            Self::V1(o) => &o.mode,
            Self::V2(o) => &o.mode,
        }
    }

    fn bound(&self) -> bool {
        match self {
            Self::V1(o) => o.bound,
            Self::V2(o) => o.bound,
        }
    }

    fn invite(&self) -> Option<[u8; 16]> {
        match self {
            Self::V1(o) => o.invite,
            Self::V2(o) => o.invite,
        }
    }
}

impl Engine {
    pub(super) fn open_session(&mut self, peer: PeerId, frame: &[u8], open: Opening) -> Vec<u8> {
        let bound = open.bound();
        if !bound && !self.allow_unbound {
            warn!(%peer, "refused an unbound (version 1 or 2) session");
            return Refusal::new(
                RefusalCode::BadRequest,
                "this node serves only sessions bound to both peer ids (/redoubt/sync/3); \
                 upgrade, or let it allow unbound sessions",
            )
            .to_frame();
        }
        // Whoever dialed, our grants decide what leaves: an invitation narrows the scope to
        // the clients our push offered, and only those our table still lets the peer read.
        let granted = granted_clients(&self.shared.lock().access, &peer, Direction::Out);
        let readable: Vec<Vec<u8>> = match open.invite() {
            Some(invite) => match self.invites.get(&invite) {
                // The invitation stays valid until the push it belongs to is answered (or it
                // expires), so the invited pull may retry: by shapes, or after a failed check.
                Some(i) if i.peer == peer => i
                    .readable
                    .iter()
                    .filter(|c| granted.contains(c))
                    .cloned()
                    .collect(),
                _ => {
                    return self.deny(peer, "unknown or expired invitation".into());
                }
            },
            None => granted,
        };
        let per_peer = self.sessions.values().filter(|s| s.peer == peer).count();
        if self.sessions.len() >= MAX_SESSIONS || per_peer >= MAX_SESSIONS_PER_PEER {
            return Refusal::new(RefusalCode::Busy, "too many sessions; retry later").to_frame();
        }
        let store = self.shared.lock();
        let scope = match Scope::resolve(open.mode(), &store.instance, &readable) {
            Ok(scope) => scope,
            Err(refusal) => {
                drop(store);
                if refusal.code == RefusalCode::PermissionDenied {
                    return self.deny(peer, refusal.detail);
                }
                return refusal.to_frame();
            }
        };
        // A bound session's key covers both peer ids, the requester (the peer) first.
        let started = match (open, bound) {
            (Opening::V1(open), false) => Responder::start(frame, open, scope, &store.instance),
            (Opening::V2(open), false) => {
                Responder::start_sketch(frame, open, scope, &store.instance)
            }
            (Opening::V1(open), true) => Peers::new(peer.to_bytes(), self.local.to_bytes())
                .and_then(|p| Responder::start_bound(frame, open, scope, &store.instance, p)),
            (Opening::V2(open), true) => Peers::new(peer.to_bytes(), self.local.to_bytes())
                .and_then(|p| {
                    Responder::start_sketch_bound(frame, open, scope, &store.instance, p)
                }),
        };
        match started {
            Ok((responder, response)) => {
                drop(store);
                let session = responder.session();
                info!(%peer, %session, "sync session opened");
                let mut served = Served {
                    peer,
                    responder,
                    touched: Instant::now(),
                };
                self.after_step(session, &mut served, &response);
                if !served.responder.is_done() {
                    self.sessions.insert(session, served);
                }
                response.encode().unwrap_or_default()
            }
            Err(e) => {
                warn!(%peer, "sync request refused: {e}");
                Refusal::from(e).to_frame()
            }
        }
    }

    pub(super) fn deny(&mut self, peer: PeerId, reason: String) -> Vec<u8> {
        warn!(%peer, "permission denied: {reason}");
        self.emit(NodeEvent::Denied {
            peer,
            reason: reason.clone(),
        });
        Refusal::new(RefusalCode::PermissionDenied, reason).to_frame()
    }

    pub(super) fn in_session(
        &mut self,
        peer: PeerId,
        session: SessionId,
        step: impl FnOnce(&mut Responder, &Instance) -> Result<Response, redoubt_protocol::Error>,
    ) -> Vec<u8> {
        let Some(mut served) = self.sessions.remove(&session).filter(|s| s.peer == peer) else {
            return Refusal::new(RefusalCode::UnknownSession, "").to_frame();
        };
        served.touched = Instant::now();
        let result = {
            let store = self.shared.lock();
            step(&mut served.responder, &store.instance)
        };
        match result {
            Ok(response) => {
                self.after_step(session, &mut served, &response);
                if !served.responder.is_done() {
                    self.sessions.insert(session, served);
                }
                response.encode().unwrap_or_default()
            }
            Err(e) => {
                warn!(%peer, %session, "sync session ended: {e}");
                Refusal::from(e).to_frame()
            }
        }
    }

    /// Reports a session that just finished.
    fn after_step(&mut self, session: SessionId, served: &mut Served, response: &Response) {
        if !served.responder.is_done() {
            return;
        }
        let peer = served.peer;
        if let Response::Fallback { reason } = response {
            info!(%peer, %session, "asked the peer to reconcile by shapes: {reason}");
            return;
        }
        let (records, bytes) = served.responder.complement_size();
        info!(%peer, %session, "served {records} records ({bytes} value bytes)");
        self.emit(NodeEvent::Served {
            peer,
            records,
            bytes,
        });
    }

    pub(super) fn on_push(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        invite: [u8; 16],
        mode: Mode,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        // We pull only what our table lets the pusher write, whatever it offers: of a listed
        // import, the listed clients we let it write.
        let pull_mode = {
            let store = self.shared.lock();
            match mode {
                Mode::Import { clients } if !clients.is_empty() => {
                    let writable = granted_clients(&store.access, &peer, Direction::In);
                    let clients: Vec<Vec<u8>> = clients
                        .into_iter()
                        .filter(|c| writable.contains(c))
                        .collect();
                    (!clients.is_empty()).then_some(Mode::Import { clients })
                }
                mode => granted_mode(&store.access, &peer, mode, Direction::In)
                    .ok()
                    .flatten(),
            }
        };
        let Some(pull_mode) = pull_mode else {
            let frame = self.deny(peer, "no write grant for the pushed clients".into());
            return self.respond(behaviour, peer, channel, frame);
        };
        let invited_here = self.pulls.values().filter(|t| t.invited_by(&peer)).count();
        if self.pulls.len() >= MAX_PULLS || invited_here >= MAX_INVITED_PULLS_PER_PEER {
            let frame = Refusal::new(RefusalCode::Busy, "too many pulls running").to_frame();
            return self.respond(behaviour, peer, channel, frame);
        }
        info!(%peer, "peer asked us to pull; pulling");
        self.begin_pull(
            behaviour,
            (peer, Vec::new()),
            (pull_mode, Some(invite)),
            (None, None),
            Done::Invited(channel),
            super::pull::Attempt::default(),
        );
    }
}
