//! The sync engine: serves pulls, runs our pulls and pushes, over a request-response
//! behaviour it does not own. The node's event loop drives it; an app with its own swarm can
//! compose [`Behaviour`] into its behaviour and drive an [`Engine`] the same way.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use libp2p::{
    Multiaddr, PeerId, StreamProtocol,
    request_response::{
        self, InboundFailure, Message, OutboundFailure, OutboundRequestId, ProtocolSupport,
        ResponseChannel,
    },
};
use redoubt_protocol::{
    Event as ProtoEvent, MAX_SHAPES_PER_FRAME, Mode, Open, PROTOCOL_NAME, Refusal, RefusalCode,
    Request, Requester, Responder, Response, Scope, SessionId, ShapeGroup, invited_readable,
    push_request, read_push_answer,
};
use redoubt_vault::{ClientId, Instance, MergePolicy, MergeReport, RecordId, Selection, VaultId};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::{
    Error, FrameCodec, HookAction, NodeEvent, Progress, PullOutcome, ResponseHook, Shared,
};

/// The request-response behaviour that carries `/redoubt/sync/1` frames.
pub type Behaviour = request_response::Behaviour<FrameCodec>;

/// Most sessions served at once, over all peers.
pub const MAX_SESSIONS: usize = 64;
/// Most sessions served at once to one peer.
pub const MAX_SESSIONS_PER_PEER: usize = 4;
/// Most request streams open at once on one connection (each holds at most one frame).
pub const MAX_STREAMS_PER_CONNECTION: usize = 16;
/// Most pulls (ours and invited ones) running at once.
pub const MAX_PULLS: usize = 64;
/// A served session idle this long is dropped.
pub const SESSION_IDLE: Duration = Duration::from_secs(120);
/// An invitation to pull from us (a push) expires after this long.
pub const INVITE_TTL: Duration = Duration::from_secs(600);

/// The behaviour for a node, with `timeout` for each request.
pub fn behaviour(timeout: Duration) -> Behaviour {
    request_response::Behaviour::with_codec(
        FrameCodec,
        [(StreamProtocol::new(PROTOCOL_NAME), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(timeout)
            .with_max_concurrent_streams(MAX_STREAMS_PER_CONNECTION),
    )
}

/// Takes each verified record of a pull instead of the store (an app that keeps records in its
/// own storage, or a benchmark that only verifies).
pub type RecordSink = Box<dyn FnMut(&[u8], redoubt_vault::Record) + Send>;

/// A pull to run: from whom, what, and where its progress and records go.
pub struct PullOrder {
    /// The peer to pull from.
    pub peer: PeerId,
    /// Addresses to dial if not connected.
    pub addrs: Vec<Multiaddr>,
    /// What to pull.
    pub mode: Mode,
    /// Progress of the complement stream.
    pub progress: Option<watch::Sender<Progress>>,
    /// Where verified records go instead of the store.
    pub sink: Option<RecordSink>,
}

/// Where a pull's result goes.
enum Done {
    /// To the app that asked for it.
    Local(oneshot::Sender<Result<PullOutcome, Error>>),
    /// Back to the peer whose push invited it.
    Invited(ResponseChannel<Vec<u8>>),
}

/// The next shapes to send: walks the wanted clients in id order, in bounded batches.
struct ShapeCursor {
    clients: Vec<ClientId>,
    selection: Selection,
    idx: usize,
    after: Option<(VaultId, RecordId)>,
}

impl ShapeCursor {
    fn new(requester: &Requester, instance: &Instance) -> Self {
        let mut clients = match requester.wanted_clients() {
            Some(c) => c,
            None => instance.clients().map(|(id, _)| *id).collect(),
        };
        clients.sort();
        clients.dedup();
        Self {
            clients,
            selection: requester.selection(),
            idx: 0,
            after: None,
        }
    }

    fn next_batch(&mut self, instance: &Instance) -> (Vec<ShapeGroup>, bool) {
        let mut groups = Vec::new();
        let mut n = 0;
        while let Some(client) = self.clients.get(self.idx) {
            let mut shapes = Vec::new();
            let mut full = false;
            for rec in instance.records_after(client, self.after) {
                if n == MAX_SHAPES_PER_FRAME {
                    full = true;
                    break;
                }
                let (v, r) = rec.location().ids();
                self.after = Some((v, r));
                if self.selection.contains(v, r) {
                    shapes.push(rec.shape());
                    n += 1;
                }
            }
            if !shapes.is_empty() {
                groups.push(ShapeGroup {
                    client: *client,
                    shapes,
                });
            }
            if full {
                return (groups, false);
            }
            self.idx += 1;
            self.after = None;
        }
        (groups, true)
    }
}

struct PullTask {
    peer: PeerId,
    addr: String,
    requester: Requester,
    cursor: ShapeCursor,
    outcome: PullOutcome,
    streaming: bool,
    progress: Option<watch::Sender<Progress>>,
    sink: Option<RecordSink>,
    done: Done,
}

struct PushTask {
    addr: String,
    invite: [u8; 16],
    reply: oneshot::Sender<Result<MergeReport, Error>>,
}

struct Served {
    peer: PeerId,
    responder: Responder,
    touched: Instant,
}

struct Invite {
    peer: PeerId,
    readable: Vec<Vec<u8>>,
    expires: Instant,
}

/// Serves and runs sync sessions over a [`Behaviour`].
pub struct Engine {
    shared: Shared,
    policy: MergePolicy,
    sessions: HashMap<SessionId, Served>,
    invites: HashMap<[u8; 16], Invite>,
    pulls: HashMap<OutboundRequestId, PullTask>,
    pushes: HashMap<OutboundRequestId, PushTask>,
    events: Option<mpsc::Sender<NodeEvent>>,
    hook: Option<Arc<dyn ResponseHook>>,
    disconnects: Vec<PeerId>,
    stalled: Vec<ResponseChannel<Vec<u8>>>,
}

impl Engine {
    /// An engine over `shared`, reporting to `events` when given (events are dropped, never
    /// waited for, when the channel is full).
    pub fn new(shared: Shared, events: Option<mpsc::Sender<NodeEvent>>) -> Self {
        Self {
            shared,
            policy: MergePolicy::Newest,
            sessions: HashMap::new(),
            invites: HashMap::new(),
            pulls: HashMap::new(),
            pushes: HashMap::new(),
            events,
            hook: None,
            disconnects: Vec::new(),
            stalled: Vec::new(),
        }
    }

    #[doc(hidden)]
    pub fn set_hook(&mut self, hook: Option<Arc<dyn ResponseHook>>) {
        self.hook = hook;
    }

    /// Peers whose connections the hook asked to close; the swarm's owner closes them.
    #[doc(hidden)]
    pub fn take_disconnects(&mut self) -> Vec<PeerId> {
        std::mem::take(&mut self.disconnects)
    }

    /// Sessions being served now.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    fn emit(&self, event: NodeEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.try_send(event);
        }
    }

    /// Handles one event of the behaviour.
    pub fn handle_event(
        &mut self,
        behaviour: &mut Behaviour,
        event: request_response::Event<Vec<u8>, Vec<u8>>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => self.on_request(behaviour, peer, request, channel),
                Message::Response {
                    request_id,
                    response,
                } => self.on_response(behaviour, request_id, response),
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => self.on_outbound_failure(behaviour, request_id, error),
            request_response::Event::InboundFailure { peer, error, .. } => {
                if !matches!(error, InboundFailure::ResponseOmission) {
                    warn!(%peer, "inbound sync request failed: {error}");
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Drops idle sessions and expired invitations.
    pub fn expire(&mut self, now: Instant) {
        self.sessions
            .retain(|_, s| now.duration_since(s.touched) < SESSION_IDLE);
        self.invites.retain(|_, i| i.expires > now);
    }

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
        match Requester::new(order.mode, None) {
            Ok(requester) => self.begin_pull(
                behaviour,
                order.peer,
                order.addrs,
                requester,
                (order.progress, order.sink),
                Done::Local(reply),
            ),
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
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
        let mode = match mode {
            Mode::Import { clients } if clients.is_empty() => Mode::Import {
                clients: self
                    .shared
                    .lock()
                    .instance
                    .clients()
                    .map(|(_, p)| p.to_vec())
                    .collect(),
            },
            m => m,
        };
        let readable = invited_readable(&mode);
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

    fn begin_pull(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        mut requester: Requester,
        (progress, sink): (Option<watch::Sender<Progress>>, Option<RecordSink>),
        done: Done,
    ) {
        let addr = addrs
            .first()
            .map_or_else(|| peer.to_string(), ToString::to_string);
        let (cursor, opened) = {
            let store = self.shared.lock();
            let mut cursor = ShapeCursor::new(&requester, &store.instance);
            let (groups, last) = cursor.next_batch(&store.instance);
            (cursor, requester.open(groups, last))
        };
        let frame = match opened {
            Ok(frame) => frame,
            Err(e) => return self.complete(behaviour, peer, done, Err(e.into())),
        };
        let mut outcome = PullOutcome::default();
        outcome.bytes_sent += frame.len() as u64;
        let id = behaviour.send_request_with_addresses(&peer, frame, addrs);
        self.pulls.insert(
            id,
            PullTask {
                peer,
                addr,
                requester,
                cursor,
                outcome,
                streaming: false,
                progress,
                sink,
                done,
            },
        );
    }

    fn on_response(&mut self, behaviour: &mut Behaviour, id: OutboundRequestId, frame: Vec<u8>) {
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
        let next = match task.requester.handle(&frame) {
            Ok(ProtoEvent::Accepted | ProtoEvent::Continue) => {
                let store = self.shared.lock();
                let (groups, last) = task.cursor.next_batch(&store.instance);
                task.requester.shapes(groups, last)
            }
            Ok(ProtoEvent::Ready { bytes, .. }) => {
                task.streaming = true;
                if let Some(p) = &task.progress {
                    p.send_modify(|p| p.total = bytes);
                }
                task.requester.next_chunk()
            }
            Ok(ProtoEvent::Records { records, last }) => {
                task.outcome.chunks += 1;
                if let Err(e) = self.merge(&mut task, records) {
                    return self.finish_pull(behaviour, task, Err(e));
                }
                if last {
                    let outcome = task.outcome;
                    return self.finish_pull(behaviour, task, Ok(outcome));
                }
                task.requester.next_chunk()
            }
            Err(e) => return self.finish_pull(behaviour, task, Err(Error::from_protocol(e))),
        };
        match next {
            Ok(frame) => {
                task.outcome.bytes_sent += frame.len() as u64;
                let id = behaviour.send_request(&task.peer, frame);
                self.pulls.insert(id, task);
            }
            Err(e) => self.finish_pull(behaviour, task, Err(e.into())),
        }
    }

    /// Merges verified records into the store under one lock (or hands them to the sink).
    fn merge(
        &mut self,
        task: &mut PullTask,
        records: Vec<redoubt_protocol::Received>,
    ) -> Result<(), Error> {
        let mut value_bytes = 0u64;
        if let Some(sink) = &mut task.sink {
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
        let mut store = self.shared.lock();
        for r in records {
            value_bytes += u64::from(r.record.size());
            let one = store
                .instance
                .merge_record(&r.client, r.record, self.policy)?;
            let rep = &mut task.outcome.report;
            rep.added += one.added;
            rep.updated += one.updated;
            rep.deleted += one.deleted;
            rep.unchanged += one.unchanged;
            rep.conflicts_resolved += one.conflicts_resolved;
            task.outcome.records += 1;
        }
        if let Some(p) = &task.progress {
            p.send_modify(|p| p.bytes += value_bytes);
        }
        Ok(())
    }

    fn on_outbound_failure(
        &mut self,
        behaviour: &mut Behaviour,
        id: OutboundRequestId,
        error: OutboundFailure,
    ) {
        if let Some(push) = self.pushes.remove(&id) {
            self.invites.remove(&push.invite);
            let _ = push.reply.send(Err(map_failure(error, &push.addr, None)));
            return;
        }
        if let Some(task) = self.pulls.remove(&id) {
            let chunks = task.streaming.then_some(task.outcome.chunks);
            let e = map_failure(error, &task.addr, chunks);
            self.finish_pull(behaviour, task, Err(e));
        }
    }

    fn finish_pull(
        &mut self,
        behaviour: &mut Behaviour,
        task: PullTask,
        result: Result<PullOutcome, Error>,
    ) {
        match &result {
            Ok(o) => {
                info!(peer = %task.peer, "pulled {} records: {}", o.records, o.report);
                if o.report.changed() {
                    self.emit(NodeEvent::Merged {
                        peer: task.peer,
                        report: o.report,
                    });
                }
            }
            Err(e) => {
                warn!(peer = %task.peer, "pull failed: {e}");
                if task.outcome.report.changed() {
                    // Verified chunks before the failure were merged: persist them too.
                    self.emit(NodeEvent::Merged {
                        peer: task.peer,
                        report: task.outcome.report,
                    });
                }
            }
        }
        self.complete(behaviour, task.peer, task.done, result);
    }

    fn complete(
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
                        Response::Refused {
                            code,
                            detail: format!("the invited pull failed: {e}"),
                        }
                    }
                };
                let frame = response.encode().unwrap_or_default();
                let _ = behaviour.send_response(channel, frame);
            }
        }
    }

    fn on_request(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        frame: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let reply = match Request::decode(&frame) {
            Err(e) => {
                warn!(%peer, "malformed sync request: {e}");
                Refusal::from(e).to_frame()
            }
            Ok(Request::Open(open)) => self.open_session(peer, &frame, open),
            Ok(Request::Shapes {
                session,
                groups,
                last,
            }) => self.in_session(peer, session, |r, inst| {
                r.shapes(&frame, groups, last, inst)
            }),
            Ok(Request::Next { session, index }) => {
                self.in_session(peer, session, |r, inst| r.chunk(index, inst))
            }
            Ok(Request::Push { invite, mode }) => {
                return self.on_push(behaviour, peer, invite, mode, channel);
            }
        };
        self.respond(behaviour, peer, channel, reply);
    }

    fn respond(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        channel: ResponseChannel<Vec<u8>>,
        mut frame: Vec<u8>,
    ) {
        let action = match &self.hook {
            Some(hook) => hook.outgoing(&peer, &mut frame),
            None => HookAction::Send,
        };
        match action {
            HookAction::Send => {
                let _ = behaviour.send_response(channel, frame);
            }
            HookAction::Disconnect => self.disconnects.push(peer),
            HookAction::Stall => {
                self.stalled.retain(ResponseChannel::is_open);
                self.stalled.push(channel);
            }
        }
    }

    fn open_session(&mut self, peer: PeerId, frame: &[u8], open: Open) -> Vec<u8> {
        let peer_key = peer.to_base58();
        let readable: Vec<Vec<u8>> = match open.invite {
            Some(invite) => match self.invites.get(&invite) {
                Some(i) if i.peer == peer => {
                    let readable = i.readable.clone();
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
                    .iter()
                    .filter(|(p, _, r)| *p == peer_key.as_bytes() && r.read)
                    .map(|(_, c, _)| c.to_vec())
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

    fn deny(&mut self, peer: PeerId, reason: String) -> Vec<u8> {
        warn!(%peer, "permission denied: {reason}");
        self.emit(NodeEvent::Denied {
            peer,
            reason: reason.clone(),
        });
        Refusal::new(RefusalCode::PermissionDenied, reason).to_frame()
    }

    fn in_session(
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

    fn on_push(
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

/// Maps a transport failure to the error a user can act on. `chunks` is `Some` once the
/// complement started streaming.
fn map_failure(error: OutboundFailure, addr: &str, chunks: Option<u64>) -> Error {
    match (error, chunks) {
        (OutboundFailure::DialFailure, _) => Error::Unreachable {
            addr: addr.to_string(),
        },
        (OutboundFailure::Timeout, _) => Error::Timeout,
        (OutboundFailure::UnsupportedProtocols, _) => {
            Error::Transport(format!("the peer does not speak {PROTOCOL_NAME}"))
        }
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
