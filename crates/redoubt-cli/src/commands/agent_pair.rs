//! `redoubt pair` through the agent (`docs/control-protocol.md`, "Pairing extension 1"): the
//! agent's node offers or joins, and the command on the other end of the control connection
//! shows what the user must see and brings back the user's answer. The agent never decides on
//! its own: every device is confirmed by the user running `redoubt pair` (or by its `--yes`),
//! exactly as without an agent.
//!
//! The conversation owns its connection until it ends. A command that hangs up (or stops
//! answering for [`PAIR_REQUEST_TIMEOUT`]) before the pairing completed cancels it: the open
//! offer is replaced by one that has already expired, so no device can use the code any more
//! and an attempt in flight is dropped, and a join's request is dropped, which declines it.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use redoubt_control::{
    ErrorKind, PairRequest, PairResponse, Request, Response, SecretBytes,
    message::pair::{MAX_ADDRS, MAX_CLIENTS},
};
use redoubt_node::{
    Handle, PAIR_REQUEST_TIMEOUT, PairingEvent,
    libp2p::{Multiaddr, PeerId},
};
use tokio::{io::AsyncReadExt, net::UnixStream, sync::broadcast, time::Instant};
use tracing::info;
use zeroize::Zeroizing;

use super::{agent::Agent, pair::DISCOVERY_WAIT};
use crate::{
    control::{read_request, write_response},
    output::counts,
};

/// How long the host waits for the new device's import before it answers (as without one).
const IMPORT_WAIT: Duration = Duration::from_secs(120);
/// How long the host waits after a refusal or failure, so that it reaches the other device.
const LINGER: Duration = Duration::from_secs(1);

/// Whether a pairing runs on this agent: a node holds one offer at a time, so a second
/// conversation is refused rather than replacing the first one's offer.
static PAIRING: AtomicBool = AtomicBool::new(false);

/// How a conversation stops early.
enum Stop {
    /// With this final response.
    Answer(Response),
    /// The command hung up (or sent something out of turn): nothing more to say.
    Gone,
}

type Step<T> = Result<T, Stop>;

fn fail(kind: ErrorKind, message: impl Into<String>) -> Stop {
    Stop::Answer(Response::Error {
        kind,
        message: message.into(),
    })
}

fn node_failed(e: redoubt_node::Error) -> Stop {
    fail(ErrorKind::Failed, crate::error_line(&e.into()))
}

/// Holds [`PAIRING`] while a conversation runs.
struct Running;

impl Running {
    fn start() -> Step<Self> {
        if PAIRING.swap(true, Ordering::AcqRel) {
            return Err(fail(
                ErrorKind::Failed,
                "a pairing already runs on this agent; finish or cancel it first",
            ));
        }
        Ok(Self)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        PAIRING.store(false, Ordering::Release);
    }
}

/// Whether a pairing conversation runs on this agent (it holds the node: the idle lock waits,
/// and `redoubt lock` first ends it).
pub(crate) fn running() -> bool {
    PAIRING.load(Ordering::Acquire)
}

/// Serves one pairing conversation on `stream`, from its first request to its final answer.
/// `Err` when the connection is to be closed (the command hung up, or broke the protocol).
pub(crate) async fn serve(
    agent: &Agent,
    stream: &mut UnixStream,
    request: PairRequest,
) -> anyhow::Result<()> {
    // A lock (`redoubt lock`) ends the conversation and with it every handle it holds on the
    // node, so that the node stops and the key leaves memory. Registered before anything runs.
    let locking = agent.locking.notified();
    tokio::pin!(locking);
    locking.as_mut().enable();
    let locked = || {
        fail(
            ErrorKind::Locked,
            "the agent was locked: the pairing is cancelled",
        )
    };
    let outcome = match request {
        PairRequest::Offer { ttl_secs, clients } => match Running::start() {
            Ok(_running) => tokio::select! {
                out = host(agent, stream, ttl_secs, clients) => out,
                () = &mut locking => Err(locked()),
            },
            Err(stop) => Err(stop),
        },
        PairRequest::Join {
            code,
            discover,
            addrs,
        } => match Running::start() {
            Ok(_running) => tokio::select! {
                out = join(agent, stream, code, discover, addrs) => out,
                () = &mut locking => Err(locked()),
            },
            Err(stop) => Err(stop),
        },
        PairRequest::Confirm(_) => Err(fail(
            ErrorKind::BadRequest,
            "no pairing question is open on this connection",
        )),
        _ => Err(fail(ErrorKind::BadRequest, "unknown pairing request")),
    };
    agent.touch();
    match outcome {
        Ok(last) | Err(Stop::Answer(last)) => write_response(stream, &last).await,
        Err(Stop::Gone) => anyhow::bail!("the command hung up during a pairing"),
    }
}

async fn send(stream: &mut UnixStream, r: PairResponse) -> Step<()> {
    write_response(stream, &Response::Pair(r))
        .await
        .map_err(|_| Stop::Gone)
}

/// Resolves when the command hangs up (or sends anything while it is not its turn, which
/// ends the conversation as well).
async fn gone(stream: &mut UnixStream) {
    let mut byte = [0u8; 1];
    let _ = stream.read(&mut byte).await;
}

/// The user's answer to the question just sent, within [`PAIR_REQUEST_TIMEOUT`].
async fn answer(stream: &mut UnixStream) -> Step<bool> {
    match tokio::time::timeout(PAIR_REQUEST_TIMEOUT, read_request(stream)).await {
        Ok(Ok(Some(Ok(Request::Pair(PairRequest::Confirm(accept)))))) => Ok(accept),
        Ok(Ok(Some(Ok(_)))) => Err(fail(
            ErrorKind::BadRequest,
            "a pairing waits for the user's answer (PairConfirm), not another request",
        )),
        Ok(Ok(Some(Err(e)))) => Err(fail(
            ErrorKind::BadRequest,
            format!("bad control request: {e}"),
        )),
        Ok(Ok(None) | Err(_)) => Err(Stop::Gone),
        Err(_) => Err(fail(
            ErrorKind::Failed,
            format!(
                "nobody answered within {} s; the pairing is cancelled",
                PAIR_REQUEST_TIMEOUT.as_secs()
            ),
        )),
    }
}

fn verify(peer: PeerId, check: redoubt_protocol::pairing::Verification) -> PairResponse {
    PairResponse::Verify {
        peer: peer.to_base58(),
        check: check.value(),
    }
}

/// Offers a pairing on the agent's node: the code to show, then each device that proved it
/// to confirm, then the pairing and the new device's import.
async fn host(
    agent: &Agent,
    stream: &mut UnixStream,
    ttl_secs: u64,
    clients: Vec<Vec<u8>>,
) -> Step<Response> {
    let handle = agent
        .handle()
        .await
        .ok_or_else(|| Stop::Answer(super::agent_requests::locked(agent)))?;
    let clients = if clients.is_empty() {
        handle.read(|v| v.store().clients().map(|(_, p)| p.to_vec()).collect())
    } else {
        clients
    };
    if clients.is_empty() {
        return Err(fail(
            ErrorKind::Failed,
            "nothing to share: this vault holds no client yet (write a secret first)",
        ));
    }
    if clients.len() > MAX_CLIENTS {
        return Err(fail(
            ErrorKind::Failed,
            format!(
                "this vault holds {} clients; a pairing through the agent shares at most \
                 {MAX_CLIENTS}: name the ones to share with --client",
                clients.len()
            ),
        ));
    }
    // Subscribed before the offer opens: the import may be served before `Paired` is read.
    let mut served = agent.served();
    let mut accepted = false;
    let outcome = offer(
        agent,
        &handle,
        stream,
        &mut served,
        (ttl_secs, clients),
        &mut accepted,
    )
    .await;
    // Once this device's user accepted, the confirmation stands: the pairing completes
    // without the command (docs/control-protocol.md, "Conversation").
    if let (Err(Stop::Gone), false) = (&outcome, accepted) {
        cancel(&handle).await;
    }
    outcome
}

async fn offer(
    agent: &Agent,
    handle: &Handle,
    stream: &mut UnixStream,
    served: &mut broadcast::Receiver<(PeerId, u64)>,
    (ttl_secs, clients): (u64, Vec<Vec<u8>>),
    accepted: &mut bool,
) -> Step<Response> {
    let mut offer = handle
        .pair_offer(clients.clone(), Duration::from_secs(ttl_secs))
        .await
        .map_err(node_failed)?;
    let code = Zeroizing::new(offer.code.to_string());
    let offered = PairResponse::Offered {
        code: SecretBytes::new(code.as_bytes().to_vec()),
        payload: SecretBytes::new(offer.payload.as_bytes().to_vec()),
        listening: handle
            .listen_addrs()
            .iter()
            .take(MAX_ADDRS)
            .map(ToString::to_string)
            .collect(),
        clients,
    };
    send(stream, offered).await?;
    loop {
        let event = tokio::select! {
            event = offer.next() => event,
            () = gone(stream) => return Err(Stop::Gone),
        };
        match event {
            Some(PairingEvent::Request(request)) => {
                send(stream, verify(request.peer(), request.verification())).await?;
                // Dropped unanswered (the command hung up), the request declines.
                if answer(stream).await? {
                    request.accept().await.map_err(node_failed)?;
                    *accepted = true;
                } else {
                    request.reject().await.map_err(node_failed)?;
                    tokio::time::sleep(LINGER).await;
                    return Ok(Response::Done);
                }
            }
            Some(PairingEvent::Paired {
                peer,
                clients,
                remotes,
                withheld,
            }) => {
                info!(%peer, ?remotes, ?withheld, "paired through the control socket");
                agent.paired(peer);
                let _ = stream_paired(stream, peer, clients).await;
                return Ok(import_served(stream, served, peer).await);
            }
            Some(PairingEvent::Failed { peer, reason }) => {
                tokio::time::sleep(LINGER).await;
                return Err(fail(
                    ErrorKind::Failed,
                    match peer {
                        Some(p) => format!("pairing with {p} failed: {reason}"),
                        None => format!("pairing failed: {reason}"),
                    },
                ));
            }
            None => return Err(fail(ErrorKind::Failed, "the node stopped")),
        }
    }
}

async fn stream_paired(stream: &mut UnixStream, peer: PeerId, clients: Vec<Vec<u8>>) -> Step<()> {
    let paired = PairResponse::Paired {
        peer: peer.to_base58(),
        clients,
    };
    send(stream, paired).await
}

/// Replaces the open offer by an empty one that has already expired: the code of the
/// cancelled one no longer works, and an attempt in flight ends with nothing granted.
async fn cancel(handle: &Handle) {
    info!("the command hung up: the pairing offer is cancelled");
    if let Err(e) = handle.pair_offer(Vec::new(), Duration::ZERO).await {
        tracing::warn!("cancelling the pairing offer: {e}");
    }
}

/// `Count` of the records the new device imported, once it did; else a note and `Done`.
async fn import_served(
    stream: &mut UnixStream,
    served: &mut broadcast::Receiver<(PeerId, u64)>,
    peer: PeerId,
) -> Response {
    let deadline = Instant::now() + IMPORT_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, served.recv()).await {
            Ok(Ok((p, records))) if p == peer => return Response::Count(records),
            Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => {
                let note = Response::Note(format!(
                    "the other device did not import within {} s; it can sync later",
                    IMPORT_WAIT.as_secs()
                ));
                let _ = write_response(stream, &note).await;
                return Response::Done;
            }
        }
    }
}

/// Joins the device showing `code` from the agent's node, asks the user through the command,
/// and on acceptance records the grants and imports; the agent syncs with it from then on.
async fn join(
    agent: &Agent,
    stream: &mut UnixStream,
    code: SecretBytes,
    discover: bool,
    addrs: Vec<String>,
) -> Step<Response> {
    let bad = |m: String| fail(ErrorKind::BadRequest, m);
    let addrs = addrs
        .iter()
        .map(|a| {
            a.parse::<Multiaddr>()
                .map_err(|_| bad(format!("--addr {a:?} is not a multiaddr")))
        })
        .collect::<Step<Vec<_>>>()?;
    let code = Zeroizing::new(
        String::from_utf8(code.expose().to_vec())
            .map_err(|_| bad("the pairing code is not text".into()))?,
    );
    let handle = agent
        .handle()
        .await
        .ok_or_else(|| Stop::Answer(super::agent_requests::locked(agent)))?;
    let wait = if discover {
        DISCOVERY_WAIT
    } else {
        Duration::ZERO
    };
    let request = tokio::select! {
        r = handle.pair_join(code.trim(), addrs, wait) => r.map_err(node_failed)?,
        () = gone(stream) => return Err(Stop::Gone),
    };
    let peer = request.peer();
    send(stream, verify(peer, request.verification())).await?;
    // Dropped unanswered (the command hung up), the request declines.
    if !answer(stream).await? {
        request.reject().await.map_err(node_failed)?;
        return Ok(Response::Done);
    }
    let accepted = request.accept().await;
    // The grants were committed once both users accepted, even if the import then failed:
    // either way the agent syncs with a peer it now grants rights to.
    let granted = handle.read(|v| {
        let id = peer.to_base58();
        v.grants().iter().any(|(p, _, _)| *p == *id.as_bytes())
    });
    let (paired, imported) = match accepted {
        Ok(done) => done,
        Err(e) => {
            if granted {
                agent.paired(peer);
            }
            return Err(node_failed(e));
        }
    };
    if let Some(addr) = paired.addrs.first() {
        let addr = redoubt_node::with_peer(addr.clone(), peer);
        agent.book().learn(peer, addr, Instant::now());
    }
    agent.paired(peer);
    if paired
        .remotes
        .iter()
        .any(|r| r.outcome == redoubt_node::RemoteOutcome::Joined)
    {
        info!(remotes = ?paired.remotes, "a pairing brought remotes; syncing them");
        agent.remotes_changed();
    }
    stream_paired(stream, peer, paired.clients).await?;
    Ok(Response::Synced {
        pulled: Some(counts(&imported.report)),
        pushed: None,
    })
}
