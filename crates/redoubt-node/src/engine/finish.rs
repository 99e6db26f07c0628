//! How our pulls and pushes end: transport failures mapped to errors a user can act on (or a
//! retry in the version the peer speaks), the report of what a pull merged (each batch already
//! committed as it merged), and the answer to the peer whose push invited a pull.

use libp2p::{
    PeerId,
    request_response::{OutboundFailure, OutboundRequestId},
};
use redoubt_protocol::{
    PROTOCOL_NAME, PROTOCOL_NAME_V2, PROTOCOL_NAME_V3, PROTOCOL_NAME_V4, RefusalCode, Response,
};
use redoubt_vault::MergeReport;
use tracing::{info, warn};

use super::{Behaviour, Done, Engine, MAX_LEGACY_PEERS, pull::PullTask};
use crate::{Error, NodeEvent, PullOutcome, codec::PeerSpeaksOlder};

impl Engine {
    /// Ends a pull that could not (re)open, reporting the error (what earlier attempts merged
    /// is already durable).
    pub(super) fn abort(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        done: Done,
        earlier: PullOutcome,
        e: Error,
    ) {
        self.settle(behaviour, (peer, done), earlier.report, Err(e));
    }

    pub(super) fn on_outbound_failure(
        &mut self,
        behaviour: &mut Behaviour,
        id: OutboundRequestId,
        error: OutboundFailure,
    ) {
        if let Some(push) = self.pushes.remove(&id) {
            self.invites.remove(&push.invite);
            let wrong = self.wrong_peer(&error, &push.addr);
            let _ = push
                .reply
                .send(Err(map_failure(error, &push.addr, None, wrong)));
            return;
        }
        if let Some(task) = self.pulls.remove(&id) {
            if let OutboundFailure::Io(e) = &error
                && let Some(older) = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<PeerSpeaksOlder>())
            {
                // The stream negotiated an older version: the frame was never sent. Retry in
                // the version the peer speaks (begin_pull refuses it unless unbound sessions
                // are allowed), but only before the peer answered anything in this pull: a
                // peer that spoke a newer version mid-pull does not get to downgrade it.
                if task.outcome.bytes_received > 0 {
                    let e = Error::Transport(format!(
                        "the peer switched to /redoubt/sync/{} in the middle of a pull",
                        older.version
                    ));
                    return self.finish_pull(behaviour, task, Err(e));
                }
                if self.legacy_peers.len() >= MAX_LEGACY_PEERS {
                    self.legacy_peers.clear();
                }
                info!(peer = %task.peer, "the peer speaks only /redoubt/sync/{}", older.version);
                self.legacy_peers.insert(task.peer, older.version);
                let shapes = older.version < 2;
                return self.retry(behaviour, task, shapes);
            }
            // A connection that closed before the peer answered anything in this pull (one
            // that was closing as the request went out, say after an earlier session cut it)
            // gets one more try on a fresh connection: a pull only reads from the peer, so
            // asking again is safe.
            if matches!(error, OutboundFailure::ConnectionClosed)
                && task.outcome.bytes_received == 0
                && !task.reconnected
            {
                info!(peer = %task.peer, "the connection closed before any answer; dialing again");
                let shapes = !task.pull_is_sketched();
                return self.retry_with(behaviour, task, shapes, true);
            }
            let chunks = task.streaming.then_some(task.outcome.chunks);
            let wrong = self.wrong_peer(&error, &task.addr);
            let e = map_failure(error, &task.addr, chunks, wrong);
            self.finish_pull(behaviour, task, Err(e));
        }
    }

    /// Ends a pull and reports it. Every batch it merged was committed as it merged, so
    /// nothing is acknowledged (to the app, or to the peer whose push invited the pull) that is
    /// not durable; a batch that could not be committed failed the pull.
    pub(super) fn finish_pull(
        &mut self,
        behaviour: &mut Behaviour,
        task: PullTask,
        result: Result<PullOutcome, Error>,
    ) {
        self.settle(
            behaviour,
            (task.peer, task.done),
            task.outcome.report,
            result,
        );
    }

    /// Logs how a pull ended, tells the app what it `merged`, and reports `result`. Every end
    /// of a pull comes here.
    fn settle(
        &mut self,
        behaviour: &mut Behaviour,
        (peer, done): (PeerId, Done),
        merged: MergeReport,
        result: Result<PullOutcome, Error>,
    ) {
        match &result {
            Ok(o) => info!(%peer, "pulled {} records: {}", o.records, o.report),
            Err(e) => warn!(%peer, "pull failed: {e}"),
        }
        if merged.changed() {
            self.emit(NodeEvent::Merged {
                peer,
                report: merged,
            });
        }
        self.complete(behaviour, peer, done, result);
    }

    pub(super) fn complete(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        done: Done,
        result: Result<PullOutcome, Error>,
    ) {
        match done {
            Done::Local(reply) => {
                let _ = reply.send(result);
            }
            Done::Invited(channel) => {
                let response = match result {
                    Ok(o) => Response::Pushed { report: o.report },
                    Err(e) => {
                        self.emit(NodeEvent::PullFailed {
                            peer,
                            error: e.to_string(),
                        });
                        let code = match e {
                            Error::PermissionDenied { .. } => RefusalCode::PermissionDenied,
                            Error::Refused { code, .. } => code,
                            _ => RefusalCode::Internal,
                        };
                        // Our own failures stay here (they name local paths); the peer
                        // learns only that the records were not saved.
                        let detail = match &e {
                            Error::Store(_) => "the invited pull failed: the records could \
                                                not be saved on this device"
                                .to_string(),
                            Error::QuotaExceeded { client, .. } => {
                                format!(
                                    "the invited pull failed: quota exceeded on client {client:?}"
                                )
                            }
                            e => format!("the invited pull failed: {e}"),
                        };
                        Response::Refused { code, detail }
                    }
                };
                let frame = response.encode().unwrap_or_default();
                let _ = behaviour.send_response(channel, frame);
            }
        }
    }
}

impl Engine {
    /// For a dial failure to the peer `addr` names: the other peer id a device there proved,
    /// if one did.
    fn wrong_peer(&mut self, error: &OutboundFailure, addr: &str) -> Option<(PeerId, PeerId)> {
        if !matches!(error, OutboundFailure::DialFailure) {
            return None;
        }
        let expected = addr.parse().ok().and_then(|a| crate::peer_id_of(&a).ok())?;
        let obtained = self.wrong_peers.remove(&expected)?;
        Some((expected, obtained))
    }
}

/// Maps a transport failure to the error a user can act on. `chunks` is `Some` once the
/// complement started streaming; `wrong` names the expected and the obtained peer when the
/// dial reached a device with another id.
fn map_failure(
    error: OutboundFailure,
    addr: &str,
    chunks: Option<u64>,
    wrong: Option<(PeerId, PeerId)>,
) -> Error {
    match (error, chunks) {
        (OutboundFailure::DialFailure, _) => match wrong {
            Some((expected, obtained)) => Error::WrongPeer {
                addr: addr.to_string(),
                expected: expected.to_base58(),
                obtained: obtained.to_base58(),
            },
            None => Error::Unreachable {
                addr: addr.to_string(),
            },
        },
        (OutboundFailure::Timeout, _) => Error::Timeout,
        (OutboundFailure::UnsupportedProtocols, _) => Error::Transport(format!(
            "the peer speaks none of {PROTOCOL_NAME_V4}, {PROTOCOL_NAME_V3}, {PROTOCOL_NAME_V2}, \
             {PROTOCOL_NAME}"
        )),
        (OutboundFailure::Io(e), _) if e.kind() == std::io::ErrorKind::InvalidData => {
            match e
                .into_inner()
                .map(|inner| inner.downcast::<redoubt_protocol::Error>())
            {
                Some(Ok(p)) => Error::Protocol(*p),
                Some(Err(other)) => Error::Transport(other.to_string()),
                None => Error::Transport("invalid data".into()),
            }
        }
        (OutboundFailure::ConnectionClosed | OutboundFailure::Io(_), Some(chunks)) => {
            Error::Truncated { chunks }
        }
        (OutboundFailure::ConnectionClosed, None) => {
            Error::Transport("connection closed by the peer".into())
        }
        (OutboundFailure::Io(e), None) => Error::Transport(e.to_string()),
    }
}
