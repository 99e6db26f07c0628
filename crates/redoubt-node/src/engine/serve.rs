//! The responder's side: admitting pulls under grants or invitations, serving chunks, and
//! answering pushes by pulling.

use std::time::Instant;

use libp2p::{PeerId, request_response::ResponseChannel};
use redoubt_protocol::{
    Mode, Opening, Peers, Refusal, RefusalCode, Request, Scope, Serve, SessionId,
};
use tracing::{info, warn};

use super::{
    Behaviour, Done, Engine, MAX_INVITED_PULLS_PER_PEER, MAX_PULLS, MAX_SESSIONS,
    MAX_SESSIONS_PER_PEER, Served,
};
use crate::{
    NodeEvent,
    grants::{Direction, granted_clients, granted_mode},
};

impl Engine {
    pub(super) fn open_session(&mut self, peer: PeerId, frame: &[u8], open: Opening) -> Vec<u8> {
        let bound = open.is_bound();
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
        let granted = self
            .vault
            .read(|v| granted_clients(v.grants(), &peer, Direction::Out));
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
        // A bound session's key covers both peer ids, the requester (the peer) first.
        let local = self.local;
        let started = self.vault.read(|v| {
            let scope = Scope::resolve(open.mode(), v, &readable)?;
            Ok::<_, Refusal>(
                bound
                    .then(|| Peers::new(peer.to_bytes(), local.to_bytes()))
                    .transpose()
                    .and_then(|peers| Serve::open(frame, open, scope, v, peers)),
            )
        });
        let started = match started {
            Ok(started) => started,
            Err(refusal) => {
                if refusal.code == RefusalCode::PermissionDenied {
                    return self.deny(peer, refusal.detail);
                }
                if refusal.code == RefusalCode::Internal {
                    warn!(%peer, "sync request refused: our store could not be read");
                }
                return refusal.to_frame();
            }
        };
        match started {
            Ok((serve, answer)) => {
                let session = serve.session();
                info!(%peer, %session, "sync session opened");
                let served = Served {
                    peer,
                    serve,
                    touched: Instant::now(),
                };
                self.after_step(session, &served);
                if !served.serve.is_done() {
                    self.sessions.insert(session, served);
                }
                answer
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

    /// Answers `request` (decoded from `frame`) inside the served `session`.
    pub(super) fn in_session(
        &mut self,
        peer: PeerId,
        session: SessionId,
        frame: &[u8],
        request: Request,
    ) -> Vec<u8> {
        let Some(mut served) = self.sessions.remove(&session).filter(|s| s.peer == peer) else {
            return Refusal::new(RefusalCode::UnknownSession, "").to_frame();
        };
        served.touched = Instant::now();
        let result = self
            .vault
            .read(|v| served.serve.handle_decoded(frame, request, v));
        match result {
            Ok(answer) => {
                self.after_step(session, &served);
                if !served.serve.is_done() {
                    self.sessions.insert(session, served);
                }
                answer
            }
            Err(e) => {
                warn!(%peer, %session, "sync session ended: {e}");
                Refusal::from(e).to_frame()
            }
        }
    }

    /// Reports a session that just finished.
    fn after_step(&mut self, session: SessionId, served: &Served) {
        if !served.serve.is_done() {
            return;
        }
        let peer = served.peer;
        if let Some(reason) = served.serve.fell_back() {
            info!(%peer, %session, "asked the peer to reconcile by shapes: {reason}");
            return;
        }
        let (records, bytes) = served.serve.complement_size();
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
        let pull_mode = self.vault.read(|v| match mode {
            Mode::Import { clients } if !clients.is_empty() => {
                let writable = granted_clients(v.grants(), &peer, Direction::In);
                let clients: Vec<Vec<u8>> = clients
                    .into_iter()
                    .filter(|c| writable.contains(c))
                    .collect();
                (!clients.is_empty()).then_some(Mode::Import { clients })
            }
            mode => granted_mode(v.grants(), &peer, mode, Direction::In)
                .ok()
                .flatten(),
        });
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
