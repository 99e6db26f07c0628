//! Our side of pulls and pushes: starting them, mapping each response to its session and
//! acting on what the session yields, merging; how they end is in `finish.rs`.

use std::time::Instant;

use libp2p::{Multiaddr, PeerId, request_response::OutboundRequestId};
use redoubt_protocol::{
    Mode, Peers, Pull, PullConfig, PullEvent, invited_readable, push_request, read_push_answer,
};
use redoubt_sync::{MergeRules, merge_batch};
use redoubt_vault::MergeReport;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use super::{Behaviour, Done, Engine, INVITE_TTL, Invite, MAX_PULLS, PullOrder, RecordSink};
use crate::{
    Error, Progress, PullOutcome,
    grants::{Direction, granted_clients, granted_mode},
};

impl PullTask {
    /// Whether its session runs the sketch exchange (else it sends every shape).
    pub(super) fn pull_is_sketched(&self) -> bool {
        self.pull.is_sketched()
    }

    /// Whether this is the pull a push from `peer` invited.
    pub(super) fn invited_by(&self, peer: &PeerId) -> bool {
        self.peer == *peer && matches!(self.done, Done::Invited(_))
    }
}

pub(super) struct PullTask {
    pub(super) peer: PeerId,
    pub(super) addr: String,
    addrs: Vec<Multiaddr>,
    /// The session: it makes every request frame and verifies every response.
    pull: Pull,
    pub(super) outcome: PullOutcome,
    pub(super) streaming: bool,
    /// Whether this attempt already replaces one whose connection closed before any answer.
    pub(super) reconnected: bool,
    progress: Option<watch::Sender<Progress>>,
    sink: Option<RecordSink>,
    pub(super) done: Done,
}

/// How a pull starts: a first attempt, or a retry of one (by shapes, or in the version the
/// peer speaks), carrying its counts.
#[derive(Default)]
pub(super) struct Attempt {
    /// Send every shape instead of a sketch.
    pub(super) shapes: bool,
    /// What the attempt it replaces already did.
    pub(super) earlier: PullOutcome,
    /// It replaces an attempt whose connection closed before any answer.
    pub(super) reconnected: bool,
}

pub(super) struct PushTask {
    pub(super) addr: String,
    pub(super) invite: [u8; 16],
    pub(super) reply: oneshot::Sender<Result<MergeReport, Error>>,
}

impl Engine {
    /// Starts the pull `order` describes; its result goes to `reply`.
    pub fn start_pull(
        &mut self,
        behaviour: &mut Behaviour,
        order: PullOrder,
        reply: oneshot::Sender<Result<PullOutcome, Error>>,
    ) {
        if self.pulls.len() >= MAX_PULLS {
            let _ = reply.send(Err(Error::Transport("too many pulls running".into())));
            return;
        }
        // Whoever dialed, our grants decide what enters: we ask only for clients our table
        // lets the peer write, and a named client without that grant fails here, before any
        // byte leaves.
        let mode = self
            .vault
            .read(|v| granted_mode(v.grants(), &order.peer, order.mode, Direction::In));
        let mode = match mode {
            Ok(Some(mode)) => mode,
            Ok(None) => {
                let _ = reply.send(Ok(PullOutcome::default()));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.begin_pull(
            behaviour,
            (order.peer, order.addrs),
            (mode, None),
            (order.progress, order.sink),
            Done::Local(reply),
            Attempt::default(),
        );
    }

    /// Asks `peer` to pull `mode` from us and reports what it merged.
    pub fn start_push(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        mode: Mode,
        reply: oneshot::Sender<Result<MergeReport, Error>>,
    ) {
        let addr = addrs.first().map(ToString::to_string).unwrap_or_default();
        // Whoever dialed, our grants decide what leaves: we offer only clients our table lets
        // the peer read, and a named client without that grant fails here.
        let offered = self
            .vault
            .read(|v| granted_mode(v.grants(), &peer, mode.clone(), Direction::Out));
        let readable = match offered {
            Ok(Some(offered)) => invited_readable(&offered),
            Ok(None) => Vec::new(),
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if readable.is_empty() {
            let _ = reply.send(Ok(MergeReport::default()));
            return;
        }
        let mut invite = [0u8; 16];
        if getrandom::fill(&mut invite).is_err() {
            let _ = reply.send(Err(Error::Transport(
                "random number generator failed".into(),
            )));
            return;
        }
        // An import of every client we may offer goes out unnamed: the peer asks for the ones
        // it lets us write, and learns nothing of the others.
        let frame = match push_request(invite, mode) {
            Ok(f) => f,
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        self.invites.insert(
            invite,
            Invite {
                peer,
                readable,
                expires: Instant::now() + INVITE_TTL,
            },
        );
        self.tap(&peer, &frame);
        let id = behaviour.send_request_with_addresses(&peer, frame, addrs);
        self.pushes.insert(
            id,
            PushTask {
                addr,
                invite,
                reply,
            },
        );
    }

    /// Opens a pull of `mode`: a session bound to both peer ids (version 3) with a sketch
    /// summary, or every shape when `attempt` says so. A peer known to speak only version 2 or
    /// 1 gets an unbound session of its version, if this node allows unbound sessions
    /// ([`crate::NodeConfig::allow_unbound`]); otherwise the pull fails and says why.
    pub(super) fn begin_pull(
        &mut self,
        behaviour: &mut Behaviour,
        (peer, addrs): (PeerId, Vec<Multiaddr>),
        (mode, invite): (Mode, Option<[u8; 16]>),
        (progress, sink): (Option<watch::Sender<Progress>>, Option<RecordSink>),
        done: Done,
        attempt: Attempt,
    ) {
        let addr = addrs
            .first()
            .map_or_else(|| peer.to_string(), ToString::to_string);
        let version = if self.v1_only {
            1
        } else {
            self.legacy_peers.get(&peer).copied().unwrap_or(4)
        };
        if version < 3 && !self.allow_unbound {
            let e = Error::Unbound {
                peer: peer.to_base58(),
                version,
            };
            return self.abort(behaviour, peer, done, attempt.earlier, e);
        }
        let peers = if version >= 3 {
            match Peers::new(self.local.to_bytes(), peer.to_bytes()) {
                Ok(peers) => Some(peers),
                Err(e) => return self.abort(behaviour, peer, done, attempt.earlier, e.into()),
            }
        } else {
            None
        };
        let config = PullConfig {
            mode,
            invite,
            peers,
            sketch: !attempt.shapes && version >= 2,
            lineage: version >= 4,
            fallback: self.shape_fallback,
            secret: None,
            shape_batch: redoubt_protocol::MAX_SHAPES_PER_FRAME,
        };
        let opened = self.vault.read(|v| Pull::new(config, v));
        let mut pull = match opened {
            Ok(pull) => pull,
            Err(e) => return self.abort(behaviour, peer, done, attempt.earlier, e.into()),
        };
        let Some(frame) = pull.poll_transmit() else {
            let e = Error::Transport("the pull made no opening".into());
            return self.abort(behaviour, peer, done, attempt.earlier, e);
        };
        let mut outcome = attempt.earlier;
        outcome.bytes_sent += frame.len() as u64;
        self.tap(&peer, &frame);
        let id = behaviour.send_request_with_addresses(&peer, frame, addrs.clone());
        self.pulls.insert(
            id,
            PullTask {
                peer,
                addr,
                addrs,
                pull,
                outcome,
                streaming: false,
                reconnected: attempt.reconnected,
                progress,
                sink,
                done,
            },
        );
    }

    pub(super) fn on_response(
        &mut self,
        behaviour: &mut Behaviour,
        id: OutboundRequestId,
        frame: Vec<u8>,
    ) {
        if let Some(push) = self.pushes.remove(&id) {
            self.invites.remove(&push.invite);
            let result = read_push_answer(&frame).map_err(Error::from_protocol);
            let _ = push.reply.send(result);
            return;
        }
        let Some(mut task) = self.pulls.remove(&id) else {
            return;
        };
        task.outcome.bytes_received += frame.len() as u64;
        // The vault is locked only when the session reads the replica: a streamed chunk (its
        // AEAD open and every record's verification) is handled without it, and only a
        // fallback our final check asks for on the last chunk reads the vault after it.
        let handled = if task.pull.needs_replica() {
            self.vault.read(|v| task.pull.handle(&frame, v))
        } else {
            task.pull.handle_streamed(&frame).and_then(|()| {
                if task.pull.needs_replica() {
                    self.vault.read(|v| task.pull.resume(v))
                } else {
                    Ok(())
                }
            })
        };
        if let Err(e) = handled {
            if let (redoubt_protocol::Error::FallbackRefused { .. }, Some(why)) =
                (&e, task.pull.fallback_asked())
            {
                warn!(peer = %task.peer, "not reconciling by shapes ({why}): {e}");
            }
            return self.finish_pull(behaviour, task, Err(Error::from_protocol(e)));
        }
        // A fallback reopens the pull: its opening goes out with the peer's addresses, as
        // the first attempt's did.
        let mut reopened = false;
        while let Some(event) = task.pull.poll_event() {
            match event {
                PullEvent::Announced { bytes, .. } => {
                    task.streaming = true;
                    if let Some(p) = &task.progress {
                        p.send_modify(|p| p.total = bytes);
                    }
                }
                PullEvent::Lacking { .. } => {}
                PullEvent::Records { records } => {
                    task.outcome.chunks += 1;
                    if let Err(e) = self.merge(&mut task, records) {
                        return self.finish_pull(behaviour, task, Err(e));
                    }
                }
                PullEvent::FellBack { why, .. } => {
                    info!(peer = %task.peer, "reconciling by shapes: {why}");
                    // The retry has streamed nothing yet: a connection lost now is closed,
                    // not a truncated stream.
                    task.streaming = false;
                    reopened = true;
                    // The retry asks only for what our table lets the peer write now.
                    let regranted = self.writable_mode(&task);
                    match regranted {
                        Ok(Some(mode)) if mode == *task.pull.mode() => {}
                        Ok(Some(_)) => return self.retry(behaviour, task, true),
                        Ok(None) => {
                            let outcome = task.outcome.clone();
                            return self.finish_pull(behaviour, task, Ok(outcome));
                        }
                        Err(e) => return self.finish_pull(behaviour, task, Err(e)),
                    }
                }
                PullEvent::Done => {
                    let outcome = task.outcome.clone();
                    return self.finish_pull(behaviour, task, Ok(outcome));
                }
            }
        }
        let Some(frame) = task.pull.poll_transmit() else {
            let e = Error::Transport("the pull stalled with nothing to send".into());
            return self.finish_pull(behaviour, task, Err(e));
        };
        task.outcome.bytes_sent += frame.len() as u64;
        self.tap(&task.peer, &frame);
        let id = if reopened {
            behaviour.send_request_with_addresses(&task.peer, frame, task.addrs.clone())
        } else {
            behaviour.send_request(&task.peer, frame)
        };
        self.pulls.insert(id, task);
    }

    /// Shows a request frame to the test hook, if any.
    fn tap(&self, peer: &PeerId, frame: &[u8]) {
        if let Some(hook) = &self.hook {
            hook.outgoing_request(peer, frame);
        }
    }

    /// The part of the task's mode our table lets its peer write now. An import (its clients
    /// listed since it started) keeps the clients still writable, `None` when none is: a grant
    /// revoked mid-pull narrows the retry rather than fail it. A full or partial pull of a
    /// client no longer writable fails ([`Error::NotGranted`]), as it would have at the start.
    fn writable_mode(&self, task: &PullTask) -> Result<Option<Mode>, Error> {
        self.vault.read(|v| match task.pull.mode() {
            Mode::Import { clients } if !clients.is_empty() => {
                let writable = granted_clients(v.grants(), &task.peer, Direction::In);
                let clients: Vec<Vec<u8>> = clients
                    .iter()
                    .filter(|c| writable.contains(c))
                    .cloned()
                    .collect();
                Ok((!clients.is_empty()).then_some(Mode::Import { clients }))
            }
            mode => granted_mode(v.grants(), &task.peer, mode.clone(), Direction::In),
        })
    }

    /// Runs the pull again (by shapes when `shapes`), keeping what it already merged: in the
    /// version the peer speaks, or by shapes after a fallback whose scope our write grants
    /// narrowed since (a sketched import's retry is already within the clients its
    /// `Accepted` named, so its shapes cover no more than the policy allowed).
    pub(super) fn retry(&mut self, behaviour: &mut Behaviour, task: PullTask, shapes: bool) {
        let reconnected = task.reconnected;
        self.retry_with(behaviour, task, shapes, reconnected);
    }

    /// [`Self::retry`], saying whether the new attempt replaces one whose connection closed
    /// before any answer (such an attempt is not retried again).
    pub(super) fn retry_with(
        &mut self,
        behaviour: &mut Behaviour,
        task: PullTask,
        shapes: bool,
        reconnected: bool,
    ) {
        let earlier = task.outcome.clone();
        let regranted = self.writable_mode(&task);
        let mode = match regranted {
            Ok(Some(mode)) => mode,
            Ok(None) => return self.finish_pull(behaviour, task, Ok(earlier)),
            Err(e) => return self.finish_pull(behaviour, task, Err(e)),
        };
        self.begin_pull(
            behaviour,
            (task.peer, task.addrs),
            (mode, task.pull.invite()),
            (task.progress, task.sink),
            task.done,
            Attempt {
                shapes,
                earlier,
                reconnected,
            },
        );
    }

    /// Merges verified records into the vault in one commit (or hands them to the sink),
    /// after checking that our table lets the peer write every client in the batch and that
    /// the batch keeps the vault within its quota. A refused batch merges nothing; a merged
    /// one is durable when this returns.
    pub(super) fn merge(
        &mut self,
        task: &mut PullTask,
        records: Vec<redoubt_protocol::Received>,
    ) -> Result<(), Error> {
        let peer = task.peer.to_base58();
        if let Some(sink) = &mut task.sink {
            self.vault
                .read(|v| redoubt_sync::check_writable(v.grants(), &peer, &records))?;
            let mut value_bytes = 0u64;
            for r in records {
                value_bytes += u64::from(r.record.size());
                task.outcome.records += 1;
                sink(&r.client, r.record);
            }
            if let Some(p) = &task.progress {
                p.send_modify(|p| p.bytes += value_bytes);
            }
            return Ok(());
        }
        let rules = MergeRules {
            policy: self.policy,
            quota: self.quota,
            max_ahead_ms: self.max_ahead_ms,
        };
        let merged = self
            .vault
            .write(|v| merge_batch(v, &peer, records, &rules))?;
        task.outcome.report.add(&merged.report);
        task.outcome.records += merged.records;
        if let Some(first) = merged.refused_ahead {
            // One line per batch, however many records it refused.
            warn!(
                peer = %task.peer,
                refused = merged.report.refused_ahead,
                first = %first,
                wall_ms = first.wall_ms,
                limit_ms = first.limit_ms,
                "refused records stamped ahead of this clock"
            );
        }
        if let Some(p) = &task.progress {
            p.send_modify(|p| p.bytes += merged.value_bytes);
        }
        Ok(())
    }
}
