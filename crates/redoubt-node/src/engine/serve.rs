//! The responder's side: admitting pulls under grants or invitations, serving chunks, and
//! answering pushes by pulling.

use std::time::Instant;

use libp2p::{PeerId, request_response::ResponseChannel};
use redoubt_protocol::{
    Mode, Open, Refusal, RefusalCode, Requester, Responder, Response, Scope, SessionId,
};
use redoubt_vault::Instance;
use tracing::{info, warn};

use super::{Behaviour, Done, Engine, MAX_PULLS, MAX_SESSIONS, MAX_SESSIONS_PER_PEER, Served};
use crate::NodeEvent;

impl Engine {
    pub(super) fn open_session(&mut self, peer: PeerId, frame: &[u8], open: Open) -> Vec<u8> {
        let peer_key = peer.to_base58();
        let readable: Vec<Vec<u8>> = match open.invite {
            Some(invite) => match self.invites.get(&invite) {
                Some(i) if i.peer == peer => {
                    let readable = match &i.readable {
                        Some(list) => list.clone(),
                        None => {
                            let store = self.shared.lock();
                            store.instance.clients().map(|(_, p)| p.to_vec()).collect()
                        }
                    };
                    self.invites.remove(&invite);
                    readable
                }
                _ => {
                    return self.deny(peer, "unknown or expired invitation".into());
                }
            },
            None => {
                let store = self.shared.lock();
                store
                    .access
                    .clients_of(peer_key.as_bytes())
                    .filter(|(_, r)| r.read)
                    .map(|(c, _)| c.to_vec())
                    .collect()
            }
        };
        let per_peer = self.sessions.values().filter(|s| s.peer == peer).count();
        if self.sessions.len() >= MAX_SESSIONS || per_peer >= MAX_SESSIONS_PER_PEER {
            return Refusal::new(RefusalCode::Busy, "too many sessions; retry later").to_frame();
        }
        let store = self.shared.lock();
        let scope = match Scope::resolve(&open.mode, &store.instance, &readable) {
            Ok(scope) => scope,
            Err(refusal) => {
                drop(store);
                if refusal.code == RefusalCode::PermissionDenied {
                    return self.deny(peer, refusal.detail);
                }
                return refusal.to_frame();
            }
        };
        match Responder::start(frame, open, scope, &store.instance) {
            Ok((responder, response)) => {
                let session = responder.session();
                let (records, _) = responder.complement_size();
                info!(%peer, %session, "sync session opened ({records} records so far)");
                drop(store);
                self.sessions.insert(
                    session,
                    Served {
                        peer,
                        responder,
                        touched: Instant::now(),
                    },
                );
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
        let Some(served) = self.sessions.get_mut(&session).filter(|s| s.peer == peer) else {
            return Refusal::new(RefusalCode::UnknownSession, "").to_frame();
        };
        served.touched = Instant::now();
        let result = {
            let store = self.shared.lock();
            step(&mut served.responder, &store.instance)
        };
        match result {
            Ok(response) => {
                if served.responder.is_done() {
                    let (records, bytes) = served.responder.complement_size();
                    info!(%peer, %session, "served {records} records ({bytes} value bytes)");
                    self.sessions.remove(&session);
                    self.emit(NodeEvent::Served {
                        peer,
                        records,
                        bytes,
                    });
                }
                response.encode().unwrap_or_default()
            }
            Err(e) => {
                warn!(%peer, %session, "sync session ended: {e}");
                self.sessions.remove(&session);
                Refusal::from(e).to_frame()
            }
        }
    }

    pub(super) fn on_push(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        invite: [u8; 16],
        mode: Mode,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let peer_key = peer.to_base58();
        let pull_mode = {
            let store = self.shared.lock();
            let writable = |c: &[u8]| store.access.rights(peer_key.as_bytes(), c).write;
            match mode {
                Mode::Full { ref client } | Mode::Partial { ref client, .. } => {
                    writable(client).then_some(mode)
                }
                Mode::Import { clients } if clients.is_empty() => {
                    // Everything the pusher holds is offered: ask for what we let it write.
                    let clients: Vec<Vec<u8>> = store
                        .access
                        .clients_of(peer_key.as_bytes())
                        .filter(|(_, r)| r.write)
                        .map(|(c, _)| c.to_vec())
                        .collect();
                    (!clients.is_empty()).then_some(Mode::Import { clients })
                }
                Mode::Import { clients } => {
                    let clients: Vec<Vec<u8>> =
                        clients.into_iter().filter(|c| writable(c)).collect();
                    (!clients.is_empty()).then_some(Mode::Import { clients })
                }
            }
        };
        let Some(pull_mode) = pull_mode else {
            let frame = self.deny(peer, "no write grant for the pushed clients".into());
            return self.respond(behaviour, peer, channel, frame);
        };
        if self.pulls.len() >= MAX_PULLS {
            let frame = Refusal::new(RefusalCode::Busy, "too many pulls running").to_frame();
            return self.respond(behaviour, peer, channel, frame);
        }
        info!(%peer, "peer asked us to pull; pulling");
        match Requester::new(pull_mode, Some(invite)) {
            Ok(requester) => self.begin_pull(
                behaviour,
                peer,
                Vec::new(),
                requester,
                (None, None),
                Done::Invited(channel),
            ),
            Err(e) => {
                let frame = Refusal::new(RefusalCode::Internal, e.to_string()).to_frame();
                self.respond(behaviour, peer, channel, frame);
            }
        }
    }
}
