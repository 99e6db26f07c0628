//! The sync engine: serves pulls, runs our pulls and pushes, over a request-response
//! behaviour it does not own. The node's event loop drives it; an app with its own swarm can
//! compose [`Behaviour`] into its behaviour and drive an [`Engine`] the same way.

mod finish;
mod pull;
mod serve;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use libp2p::{
    Multiaddr, PeerId, StreamProtocol,
    request_response::{
        self, InboundFailure, Message, OutboundRequestId, ProtocolSupport, ResponseChannel,
    },
};
use redoubt_protocol::{
    Mode, Opening, PROTOCOL_NAME, PROTOCOL_NAME_V2, PROTOCOL_NAME_V3, PROTOCOL_NAME_V4, Refusal,
    RefusalCode, Request, Serve, SessionId, ShapeFallback,
};
use redoubt_vault::MergePolicy;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;

use self::pull::{PullTask, PushTask};
use crate::{
    Error, FrameCodec, HookAction, NodeEvent, Progress, PullOutcome, Quota, ResponseHook, Vault,
    vault::Owner,
};

/// The request-response behaviour that carries `/redoubt/sync/4`, `/3`, `/2` and `/1` frames.
pub type Behaviour = request_response::Behaviour<FrameCodec>;

/// Most sessions served at once, over all peers.
pub const MAX_SESSIONS: usize = 128;
/// Most sessions served at once to one peer.
pub const MAX_SESSIONS_PER_PEER: usize = 4;
/// Most request streams open at once on one connection (each holds at most one frame).
pub const MAX_STREAMS_PER_CONNECTION: usize = 16;
/// Most pulls (ours and invited ones) running at once.
pub const MAX_PULLS: usize = 64;
/// Most pulls one peer's pushes may have us run at once.
pub const MAX_INVITED_PULLS_PER_PEER: usize = 4;
/// A served session idle this long is dropped.
pub const SESSION_IDLE: Duration = Duration::from_secs(120);
/// An invitation to pull from us (a push) expires after this long.
pub const INVITE_TTL: Duration = Duration::from_secs(600);

/// Most peers remembered as speaking only version 1.
const MAX_LEGACY_PEERS: usize = 1024;

/// The behaviour for a node, with `timeout` for each request. It offers `/redoubt/sync/4`
/// (version 3 carrying record lineage) first, then `/3`, `/2` and `/1`, so the engine learns
/// what an older peer speaks (and serves it only if it allows unbound sessions).
pub fn behaviour(timeout: Duration) -> Behaviour {
    behaviour_with(
        timeout,
        &[
            PROTOCOL_NAME_V4,
            PROTOCOL_NAME_V3,
            PROTOCOL_NAME_V2,
            PROTOCOL_NAME,
        ],
    )
}

/// A behaviour that speaks only `/redoubt/sync/1`, as nodes before version 2 did (tests of
/// the fallback). Not a stable API.
#[doc(hidden)]
pub fn behaviour_v1_only(timeout: Duration) -> Behaviour {
    behaviour_with(timeout, &[PROTOCOL_NAME])
}

fn behaviour_with(timeout: Duration, protocols: &[&'static str]) -> Behaviour {
    request_response::Behaviour::with_codec(
        FrameCodec,
        protocols
            .iter()
            .map(|p| (StreamProtocol::new(p), ProtocolSupport::Full)),
        request_response::Config::default()
            .with_request_timeout(timeout)
            .with_max_concurrent_streams(MAX_STREAMS_PER_CONNECTION),
    )
}

/// Takes each verified record of a pull instead of the vault (an app that keeps records in its
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
    /// Where verified records go instead of the vault.
    pub sink: Option<RecordSink>,
}

/// Where a pull's result goes.
enum Done {
    /// To the app that asked for it.
    Local(oneshot::Sender<Result<PullOutcome, Error>>),
    /// Back to the peer whose push invited it.
    Invited(ResponseChannel<Vec<u8>>),
}

struct Served {
    peer: PeerId,
    serve: Serve,
    touched: Instant,
}

#[derive(Clone)]
struct Invite {
    peer: PeerId,
    /// The clients offered: each one our table granted the peer `read` on when we pushed (the
    /// grants are checked again when the pull opens).
    readable: Vec<Vec<u8>>,
    expires: Instant,
}
/// Serves and runs sync sessions over a [`Behaviour`].
pub struct Engine {
    vault: Owner,
    policy: MergePolicy,
    sessions: HashMap<SessionId, Served>,
    invites: HashMap<[u8; 16], Invite>,
    pulls: HashMap<OutboundRequestId, PullTask>,
    pushes: HashMap<OutboundRequestId, PushTask>,
    events: Option<mpsc::Sender<NodeEvent>>,
    hook: Option<Arc<dyn ResponseHook>>,
    disconnects: Vec<PeerId>,
    stalled: Vec<ResponseChannel<Vec<u8>>>,
    /// Our pulls use version 1 only (as older nodes do).
    v1_only: bool,
    /// Peers whose streams negotiated an older version (1 or 2): our pulls from them start in
    /// that version, unbound, if `allow_unbound`.
    legacy_peers: HashMap<PeerId, u8>,
    /// Peers whose dial reached a device with another id, and that id: a dial failure of
    /// ours to them says so instead of "unreachable" (bounded by [`MAX_PULLS`]).
    wrong_peers: HashMap<PeerId, PeerId>,
    /// This node's peer id (bound sessions cover it).
    local: PeerId,
    /// Serve and run unbound (version 1 and 2) sessions with peers that speak nothing newer.
    allow_unbound: bool,
    /// When a sketch session may fall back to sending every shape.
    shape_fallback: ShapeFallback,
    /// What merges from peers may make the vault hold (the vault counts what it holds, so
    /// concurrent pulls share one quota).
    quota: Quota,
    /// How far ahead of our clock a received stamp may be (milliseconds).
    max_ahead_ms: u64,
}

impl Engine {
    /// An engine for the node `local` that owns `vault`, reporting to `events` when given
    /// (events are dropped, never waited for, when the channel is full; nothing depends on
    /// them). The app reaches the vault through [`Self::read`] and [`Self::write`].
    pub fn new(local: PeerId, vault: Vault, events: Option<mpsc::Sender<NodeEvent>>) -> Self {
        Self::over(local, Owner::new(vault), events)
    }

    /// An engine over the node's shared hold on its vault.
    pub(crate) fn over(
        local: PeerId,
        vault: Owner,
        events: Option<mpsc::Sender<NodeEvent>>,
    ) -> Self {
        Self {
            vault,
            policy: MergePolicy::Newest,
            sessions: HashMap::new(),
            invites: HashMap::new(),
            pulls: HashMap::new(),
            pushes: HashMap::new(),
            events,
            hook: None,
            disconnects: Vec::new(),
            stalled: Vec::new(),
            v1_only: false,
            legacy_peers: HashMap::new(),
            wrong_peers: HashMap::new(),
            local,
            allow_unbound: false,
            shape_fallback: ShapeFallback::default(),
            quota: Quota::default(),
            max_ahead_ms: redoubt_vault::DEFAULT_MAX_AHEAD_MS,
        }
    }

    /// Runs `f` on the vault (briefly: the engine waits meanwhile).
    pub fn read<R>(&self, f: impl FnOnce(&Vault) -> R) -> R {
        self.vault.read(f)
    }

    /// Runs `f` on the vault to change it; every mutator of [`Vault`] commits before it
    /// returns.
    pub fn write<R>(&self, f: impl FnOnce(&mut Vault) -> R) -> R {
        self.vault.write(f)
    }

    /// Sets how far ahead of our clock a received record's stamp may be; records stamped
    /// further ahead are refused, logged and counted in the report's `refused_ahead`.
    pub fn set_max_ahead(&mut self, max_ahead: Duration) {
        self.max_ahead_ms = u64::try_from(max_ahead.as_millis()).unwrap_or(u64::MAX);
    }

    /// Serves and runs unbound sessions (versions 1 and 2, whose keys bind no peer ids) with
    /// peers that speak nothing newer. Off by default: see [`crate::NodeConfig::allow_unbound`].
    pub fn set_allow_unbound(&mut self, allow: bool) {
        self.allow_unbound = allow;
    }

    /// Sets when a sketch session may fall back to sending every shape.
    pub fn set_shape_fallback(&mut self, policy: ShapeFallback) {
        self.shape_fallback = policy;
    }

    /// Sets what merges from peers may make the vault hold (see [`Quota`]).
    pub fn set_quota(&mut self, quota: Quota) {
        self.quota = quota;
    }

    /// Makes our pulls speak version 1 only, as older nodes do (pair it with
    /// [`behaviour_v1_only`]). Not a stable API.
    #[doc(hidden)]
    pub fn set_v1_only(&mut self, v1_only: bool) {
        self.v1_only = v1_only;
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

    /// Drops the sessions served to `peer`: call it when the last connection to the peer closes.
    /// A session cannot outlive its requester's connection (the requester's pull fails with
    /// it), and keeping it would count against the peer's session limit until it idles out,
    /// locking a peer on a flaky link out for minutes.
    pub fn peer_disconnected(&mut self, peer: PeerId) {
        self.sessions.retain(|_, s| s.peer != peer);
    }

    /// A dial of ours to `expected` reached a device that proved it is `obtained`: the pull or
    /// push that dialed fails with [`Error::WrongPeer`] rather than [`Error::Unreachable`].
    pub fn dial_reached_wrong_peer(&mut self, expected: PeerId, obtained: PeerId) {
        if self.wrong_peers.len() >= MAX_PULLS {
            self.wrong_peers.clear();
        }
        self.wrong_peers.insert(expected, obtained);
    }

    /// Drops idle sessions and expired invitations.
    pub fn expire(&mut self, now: Instant) {
        self.sessions
            .retain(|_, s| now.duration_since(s.touched) < SESSION_IDLE);
        self.invites.retain(|_, i| i.expires > now);
    }

    fn on_request(
        &mut self,
        behaviour: &mut Behaviour,
        peer: PeerId,
        frame: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let request = match Request::decode(&frame) {
            Ok(request) => request,
            Err(e) => {
                warn!(%peer, "malformed sync request: {e}");
                return self.respond(behaviour, peer, channel, Refusal::from(e).to_frame());
            }
        };
        let reply = match Opening::from_request(request) {
            Ok(opening) => self.open_session(peer, &frame, opening),
            Err(Request::Push { invite, mode }) => {
                return self.on_push(behaviour, peer, invite, mode, channel);
            }
            Err(request) => match Serve::session_of(&request) {
                Some(session) => self.in_session(peer, session, &frame, request),
                None => Refusal::new(RefusalCode::BadRequest, "not a session request").to_frame(),
            },
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
}
