//! The joiner's side: the hosts to try in turn, the SPAKE2 attempt, and this user's answer.
//!
//! One join sends `Hello`, then `Confirm` (whose answer comes once the host's user decided),
//! and `Decide` once this device's user decided: accepting waits for the host's `Accepted`,
//! declining goes at once. Grants are recorded only on the host's `Welcome`.

use std::collections::HashMap;

use libp2p::{
    Multiaddr, PeerId,
    request_response::{OutboundFailure, OutboundRequestId},
};
use redoubt_protocol::pairing::{
    Joiner, PAIR_PROTOCOL_NAME, PAIR_VERSION, PAIR_VERSION_3, PairCode, PairRefusal, PairRequest,
    PairResponse,
};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::{JoinStarted, PairBehaviour, Paired, Pairing, grant, pair_error};
use crate::{Error, codec::PeerSpeaksOlder};

/// Most joins a node runs at once.
const MAX_JOINS: usize = 8;

/// The joins in progress, and which request belongs to which.
#[derive(Default)]
pub(super) struct Joins {
    next_id: u64,
    joins: HashMap<u64, Join>,
    requests: HashMap<OutboundRequestId, (u64, Step)>,
}

/// What a request of a join carried.
#[derive(Clone, Copy, Debug)]
enum Step {
    Hello,
    Confirm,
    Decide,
}

/// One join.
struct Join {
    code: PairCode,
    candidates: Vec<(PeerId, Vec<Multiaddr>)>,
    current: Option<Current>,
    /// `pair_join`'s reply, until the host proved the code.
    started: Option<oneshot::Sender<Result<JoinStarted, Error>>>,
    host: HostAnswer,
    decision: Option<Answer>,
}

/// The host being tried.
struct Current {
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    joiner: Joiner,
    /// The attempt's version: 3, or 2 once the host's stream negotiated `/redoubt/pair/2`.
    version: u8,
    /// The `Hello`, to say again in version 2 if the host speaks only that.
    hello: PairRequest,
}

/// The host's answer to `Confirm`.
enum HostAnswer {
    Pending,
    Accepted,
    Failed(Error),
}

/// This device's user's answer.
struct Answer {
    accept: bool,
    sent: bool,
    reply: Option<oneshot::Sender<Result<Paired, Error>>>,
}

impl Join {
    /// Ends the join with `error`, told to whoever waits on it.
    fn end(mut self, error: Error) {
        if let Some(reply) = self.started.take() {
            let _ = reply.send(Err(error));
        } else {
            self.reply(Err(error));
        }
    }

    /// Tells the user's answer its outcome.
    fn reply(&mut self, result: Result<Paired, Error>) {
        if let Some(reply) = self.decision.as_mut().and_then(|a| a.reply.take()) {
            let _ = reply.send(result);
        }
    }
}

/// The error of a host that did not prove the code.
fn wrong_code() -> Error {
    pair_error(redoubt_protocol::Error::PairRefused(PairRefusal::WrongCode))
}

impl Pairing {
    /// Starts a join towards the first of `candidates`; `reply` hears once a host proved it
    /// knows the code.
    pub(crate) fn join(
        &mut self,
        behaviour: &mut PairBehaviour,
        code: PairCode,
        candidates: Vec<(PeerId, Vec<Multiaddr>)>,
        reply: oneshot::Sender<Result<JoinStarted, Error>>,
    ) {
        if self.joins.joins.len() >= MAX_JOINS {
            let _ = reply.send(Err(Error::Pairing("too many pairings at once".into())));
            return;
        }
        let id = self.joins.next_id;
        self.joins.next_id += 1;
        let join = Join {
            code,
            candidates,
            current: None,
            started: Some(reply),
            host: HostAnswer::Pending,
            decision: None,
        };
        self.next_candidate(behaviour, id, join);
    }

    fn next_candidate(&mut self, behaviour: &mut PairBehaviour, id: u64, mut join: Join) {
        if join.candidates.is_empty() {
            return join.end(Error::Pairing(
                "no device with that code answered (is `redoubt pair` still waiting on it?)".into(),
            ));
        }
        let (peer, addrs) = join.candidates.remove(0);
        let version = if self.v2_only {
            PAIR_VERSION
        } else {
            PAIR_VERSION_3
        };
        let started = Joiner::start(&join.code, &peer.to_bytes(), &self.local.to_bytes()).and_then(
            |(joiner, hello)| {
                let frame = hello.encode_as(version)?;
                Ok((joiner, hello, frame))
            },
        );
        match started {
            Ok((joiner, hello, frame)) => {
                let request = behaviour.send_request_with_addresses(&peer, frame, addrs.clone());
                self.joins.requests.insert(request, (id, Step::Hello));
                join.current = Some(Current {
                    peer,
                    addrs,
                    joiner,
                    version,
                    hello,
                });
                self.joins.joins.insert(id, join);
            }
            Err(e) => join.end(Error::Protocol(e)),
        }
    }

    /// Sends this user's `Decide`.
    fn send_decide(
        &mut self,
        behaviour: &mut PairBehaviour,
        id: u64,
        mut join: Join,
        accept: bool,
    ) {
        let Some(current) = join.current.as_mut() else {
            return join.end(Error::Pairing("no attempt to answer".into()));
        };
        let version = current.version;
        let frame = match current
            .joiner
            .decide(accept)
            .and_then(|d| d.encode_as(version))
        {
            Ok(frame) => frame,
            Err(e) => return join.end(pair_error(e)),
        };
        let request =
            behaviour.send_request_with_addresses(&current.peer, frame, current.addrs.clone());
        self.joins.requests.insert(request, (id, Step::Decide));
        if let Some(answer) = join.decision.as_mut() {
            answer.sent = true;
        }
        self.joins.joins.insert(id, join);
    }

    /// This device's user answered the join `id`.
    pub(super) fn join_decides(
        &mut self,
        behaviour: &mut PairBehaviour,
        id: u64,
        accept: bool,
        reply: Option<oneshot::Sender<Result<Paired, Error>>>,
    ) {
        let Some(mut join) = self.joins.joins.remove(&id) else {
            if let Some(reply) = reply {
                let _ = reply.send(Err(Error::Pairing("this pairing is over".into())));
            }
            return;
        };
        if join.decision.is_some() || join.started.is_some() {
            if let Some(reply) = reply {
                let _ = reply.send(Err(Error::Pairing("answered out of turn".into())));
            }
            self.joins.joins.insert(id, join);
            return;
        }
        join.decision = Some(Answer {
            accept,
            sent: false,
            reply,
        });
        match std::mem::replace(&mut join.host, HostAnswer::Pending) {
            HostAnswer::Failed(e) => join.end(e),
            HostAnswer::Accepted => {
                join.host = HostAnswer::Accepted;
                self.send_decide(behaviour, id, join, accept);
            }
            HostAnswer::Pending if !accept => self.send_decide(behaviour, id, join, false),
            // Accepting waits for the host's user.
            HostAnswer::Pending => {
                self.joins.joins.insert(id, join);
            }
        }
    }

    /// A host's answer to one of our requests.
    pub(super) fn on_response(
        &mut self,
        behaviour: &mut PairBehaviour,
        request: OutboundRequestId,
        frame: &[u8],
    ) {
        let Some((id, step)) = self.joins.requests.remove(&request) else {
            return;
        };
        let Some(mut join) = self.joins.joins.remove(&id) else {
            return;
        };
        let version = join.current.as_ref().map(|c| c.version);
        let response = match PairResponse::decode_any(frame) {
            Ok((v, r)) if Some(v) == version => r,
            Ok((v, _)) => {
                return join.end(Error::Pairing(format!(
                    "the other device answered in pairing version {v} in an attempt of another"
                )));
            }
            Err(e) => return join.end(Error::Protocol(e)),
        };
        match step {
            Step::Hello => self.on_challenge(behaviour, id, join, &response),
            // The host's tag did not verify: whatever it answers, the code was wrong.
            Step::Confirm if join.started.is_some() => join.end(wrong_code()),
            Step::Confirm => {
                let result = match join.current.as_mut() {
                    Some(current) => current.joiner.host_answer(&response).map_err(pair_error),
                    None => Err(Error::Pairing("no attempt to answer".into())),
                };
                self.on_host_answer(behaviour, id, join, result);
            }
            Step::Decide => self.on_welcome(join, &response),
        }
    }

    fn on_challenge(
        &mut self,
        behaviour: &mut PairBehaviour,
        id: u64,
        mut join: Join,
        response: &PairResponse,
    ) {
        if let PairResponse::Refused {
            reason: PairRefusal::NoPairing,
        } = response
            && !join.candidates.is_empty()
        {
            return self.next_candidate(behaviour, id, join);
        }
        let Some(current) = join.current.as_mut() else {
            return;
        };
        let version = current.version;
        let confirm = match current
            .joiner
            .challenge(response)
            .and_then(|c| c.encode_as(version))
        {
            Ok(frame) => frame,
            Err(e) => return join.end(pair_error(e)),
        };
        // Sent even when the host's tag did not verify, so that the host learns of it.
        let request =
            behaviour.send_request_with_addresses(&current.peer, confirm, current.addrs.clone());
        self.joins.requests.insert(request, (id, Step::Confirm));
        let Ok(verification) = current.joiner.verification() else {
            // The host does not know the code. Its answer to the `Confirm` (it learns of the
            // failure) ends the join; `started` still waiting marks it.
            self.joins.joins.insert(id, join);
            return;
        };
        info!(peer = %current.peer, "the other device proved the pairing code");
        let started = JoinStarted {
            peer: current.peer,
            verification,
            id,
            decisions: self.decisions.clone(),
        };
        let reply = join.started.take();
        self.joins.joins.insert(id, join);
        let told = reply.is_some_and(|r| r.send(Ok(started)).is_ok());
        if !told {
            // Nobody waits for this join any more: decline.
            self.join_decides(behaviour, id, false, None);
        }
    }

    fn on_host_answer(
        &mut self,
        behaviour: &mut PairBehaviour,
        id: u64,
        mut join: Join,
        result: Result<(), Error>,
    ) {
        match (result, join.decision.as_ref().map(|a| (a.accept, a.sent))) {
            (Ok(()), Some((true, false))) => {
                join.host = HostAnswer::Accepted;
                self.send_decide(behaviour, id, join, true);
            }
            (Ok(()), _) => {
                join.host = HostAnswer::Accepted;
                self.joins.joins.insert(id, join);
            }
            // The user has not answered yet: the answer gets the failure.
            (Err(e), None) => {
                join.host = HostAnswer::Failed(e);
                self.joins.joins.insert(id, join);
            }
            (Err(e), Some(_)) => join.end(e),
        }
    }

    fn on_welcome(&mut self, mut join: Join, response: &PairResponse) {
        let accepted = join.decision.as_ref().is_some_and(|a| a.accept);
        let result = match join.current.as_ref() {
            _ if !accepted => Err(Error::PairRefused(PairRefusal::Declined)),
            None => Err(Error::Pairing("no attempt to answer".into())),
            Some(current) => current
                .joiner
                .welcome(response)
                .map_err(pair_error)
                .and_then(|welcomed| {
                    // The remotes open under this session's key, for the client list as the
                    // welcome carries it; if they do not, none is kept (the grants still are).
                    let (received, remotes_refused) = match response {
                        PairResponse::Welcome {
                            remotes: Some(sealed),
                            ..
                        } => match current.joiner.open_remotes(&welcomed, sealed) {
                            Ok(received) => (received, None),
                            Err(e) => {
                                warn!(peer = %current.peer, "shared remotes refused: {e}");
                                (Vec::new(), Some(e.to_string()))
                            }
                        },
                        _ => (Vec::new(), None),
                    };
                    let clients = grant(&self.vault, &current.peer, &welcomed)?;
                    info!(peer = %current.peer, "paired on {} clients", clients.len());
                    Ok(Paired {
                        peer: current.peer,
                        addrs: current.addrs.clone(),
                        clients,
                        remotes: Vec::new(),
                        remotes_refused,
                        received,
                    })
                }),
        };
        join.reply(result);
    }

    /// One of our requests failed.
    pub(super) fn on_failure(
        &mut self,
        behaviour: &mut PairBehaviour,
        request: OutboundRequestId,
        error: &OutboundFailure,
    ) {
        let Some((id, step)) = self.joins.requests.remove(&request) else {
            return;
        };
        let Some(mut join) = self.joins.joins.remove(&id) else {
            return;
        };
        if let (Step::Hello, OutboundFailure::Io(e), Some(current)) =
            (step, error, join.current.as_mut())
            && current.version == PAIR_VERSION_3
            && e.get_ref()
                .and_then(|i| i.downcast_ref::<PeerSpeaksOlder>())
                .is_some()
        {
            // The host speaks only version 2: nothing was sent; say the Hello in version 2.
            info!(peer = %current.peer, "the other device speaks only {PAIR_PROTOCOL_NAME}; no remotes will come");
            current.version = PAIR_VERSION;
            match current.hello.encode_as(PAIR_VERSION) {
                Ok(frame) => {
                    let request = behaviour.send_request_with_addresses(
                        &current.peer,
                        frame,
                        current.addrs.clone(),
                    );
                    self.joins.requests.insert(request, (id, Step::Hello));
                    self.joins.joins.insert(id, join);
                }
                Err(e) => join.end(Error::Protocol(e)),
            }
            return;
        }
        warn!("pairing request failed: {error}");
        let e = match error {
            OutboundFailure::UnsupportedProtocols => Error::Pairing(format!(
                "the other device does not speak {PAIR_PROTOCOL_NAME} (update it)"
            )),
            OutboundFailure::Timeout => Error::Timeout,
            e => Error::Pairing(format!("the other device: {e}")),
        };
        match step {
            // A host that did not answer (unreachable, or over its refusal bound): try the next.
            Step::Hello if !join.candidates.is_empty() => {
                self.next_candidate(behaviour, id, join);
            }
            Step::Confirm if join.started.is_some() => join.end(wrong_code()),
            Step::Confirm => self.on_host_answer(behaviour, id, join, Err(e)),
            Step::Hello | Step::Decide => join.end(e),
        }
    }
}
