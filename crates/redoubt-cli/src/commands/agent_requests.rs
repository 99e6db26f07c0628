//! What the agent does for each request on its control socket: the peer-credential check,
//! then one request after another until the command hangs up.

use std::sync::Arc;

use anyhow::Result;
use redoubt_control::{ErrorKind, ListItem, Request, Response, Target};
use redoubt_node::{
    ClientId, Location, Rights, SecretValue, Vault,
    libp2p::{Multiaddr, PeerId},
    peer_id_of,
};
use tokio::net::UnixStream;
use tracing::{debug, warn};

use super::{
    agent::{Agent, State},
    history,
    pair::DISCOVERY_WAIT,
    sync,
};
use crate::{
    cli::SyncArgs,
    control::{my_uid, read_request, write_response},
    output::{VersionEntry, counts, list_item},
    secrets::Secret,
};

/// Serves one connection: refused (with an error response) unless its peer runs as this
/// agent's user.
pub(crate) async fn serve_connection(agent: Arc<Agent>, mut stream: UnixStream) {
    let me = my_uid();
    let uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(e) => {
            warn!("control socket: no peer credentials ({e}); connection refused");
            return;
        }
    };
    if uid != me {
        warn!(uid, "control socket: connection from another user refused");
        let refused = Response::Error {
            kind: ErrorKind::Refused,
            message: format!(
                "refused: this agent serves only its own user (uid {me}), not uid {uid}"
            ),
        };
        let _ = write_response(&mut stream, &refused).await;
        return;
    }
    if let Err(e) = serve_requests(&agent, &mut stream).await {
        debug!("control connection ended: {e}");
    }
}

async fn serve_requests(agent: &Agent, stream: &mut UnixStream) -> Result<()> {
    // A connection that sends nothing for a while is closed, so it holds no slot for ever.
    while let Some(request) = tokio::time::timeout(CONNECTION_IDLE, read_request(stream))
        .await
        .map_err(|_| anyhow::anyhow!("idle for {} s", CONNECTION_IDLE.as_secs()))??
    {
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                let bad = error(ErrorKind::BadRequest, format!("bad control request: {e}"));
                write_response(stream, &bad).await?;
                return Ok(());
            }
        };
        if !matches!(request, Request::Status) {
            agent.touch();
        }
        // A pairing is a conversation: it owns the connection until its final answer.
        if let Request::Pair(pair) = request {
            super::agent_pair::serve(agent, stream, pair).await?;
            continue;
        }
        let mut out = Vec::new();
        answer(agent, request, &mut out).await;
        for r in &out {
            write_response(stream, r).await?;
        }
    }
    Ok(())
}

/// How long a connection may wait between requests (a command sends its next one at once).
const CONNECTION_IDLE: std::time::Duration = std::time::Duration::from_secs(120);

fn error(kind: ErrorKind, message: String) -> Response {
    Response::Error { kind, message }
}

/// Answers `request` into `out`: items, then one final response.
async fn answer(agent: &Agent, request: Request, out: &mut Vec<Response>) {
    // A sync runs on the network for a while: it holds the node's handle, not the state, so
    // other requests go on meanwhile.
    if let Request::Sync { .. } = request {
        let result = sync(agent, request, out).await;
        out.push(result.unwrap_or_else(|e| e));
        return;
    }
    let mut state = agent.state.lock().await;
    let result = match request {
        Request::Status => Ok(Response::Text(status(agent, &state))),
        Request::Id => agent
            .peer_id()
            .map(|id| Response::Text(id.to_base58()))
            .ok_or_else(|| locked(agent)),
        Request::Lock => {
            agent.lock(&mut state).await;
            Ok(Response::Done)
        }
        Request::Unlock { password } => agent
            .unlock(&mut state, Secret::new(password.expose().to_vec()))
            .await
            .map(|()| Response::Done)
            .map_err(|e| error(ErrorKind::Failed, crate::error_line(&e))),
        request => match &*state {
            State::Open(handle) => {
                let mut effect = Effect::default();
                let result = handle.write(|v| on_vault(v, request, out, &mut effect));
                agent.changed(&effect.changed);
                if let Some(peer) = effect.paired {
                    agent.paired(peer);
                }
                if let Some(peer) = effect.unpaired {
                    agent.unpaired(&peer);
                }
                result
            }
            _ => Err(locked(agent)),
        },
    };
    out.push(result.unwrap_or_else(|e| e));
}

pub(crate) fn locked(agent: &Agent) -> Response {
    error(
        ErrorKind::Locked,
        format!(
            "the agent of {} is locked: run `redoubt unlock`",
            agent.path.display()
        ),
    )
}

/// `redoubt sync` through the agent: its node pulls and pushes; notes become items; the
/// address it reached the peer at is kept for the agent's own syncs.
async fn sync(
    agent: &Agent,
    request: Request,
    out: &mut Vec<Response>,
) -> Result<Response, Response> {
    let Request::Sync {
        addr,
        directions,
        allow_unbound,
        client,
    } = request
    else {
        return Err(error(ErrorKind::BadRequest, "not a sync".into()));
    };
    let bad = |m: String| error(ErrorKind::BadRequest, m);
    let failed = |e: anyhow::Error| error(ErrorKind::Failed, crate::error_line(&e));
    if allow_unbound && !agent.allows_unbound() {
        return Err(bad(
            "--allow-unbound needs the agent started with --allow-unbound".into(),
        ));
    }
    let text =
        |b: Vec<u8>| String::from_utf8(b).map_err(|_| bad("a name that is not UTF-8".into()));
    let (client, vault_paths) = match client {
        Some((c, paths)) => (
            Some(text(c)?),
            paths.into_iter().map(text).collect::<Result<Vec<_>, _>>()?,
        ),
        None => (None, Vec::new()),
    };
    let args = SyncArgs {
        addr: Some(addr.clone()),
        peer: None,
        wait: DISCOVERY_WAIT.as_secs(),
        no_discovery: false,
        import: client.is_none(),
        client,
        vault_paths,
        allow_unbound,
        pull_only: directions == 1,
        push_only: directions == 2,
        json: false,
    };
    let addr: Multiaddr = addr
        .parse()
        .map_err(|_| bad(format!("{addr:?} is not a multiaddr")))?;
    let peer = peer_id_of(&addr).map_err(|e| bad(e.to_string()))?;
    let Some(handle) = agent.handle().await else {
        return Err(locked(agent));
    };
    // A bare /p2p/PEER_ID: where the agent last reached it, or where mDNS finds it.
    let addr = if addr.iter().count() == 1 {
        let known = agent.book().address(&peer);
        match known {
            Some(a) => a,
            None => handle
                .discover(peer, DISCOVERY_WAIT)
                .await
                .map_err(|e| failed(e.into()))?,
        }
    } else {
        addr
    };
    let mode = sync::mode(&args);
    let mut notes = Vec::new();
    let checked = handle.read(|v| sync::check_vault_grants(v, &peer, &mode, &args, &mut notes));
    out.extend(notes.drain(..).map(Response::Note));
    checked.map_err(failed)?;
    let done = sync::run_directions(
        &handle,
        &handle.peer_id(),
        &addr,
        mode,
        &args,
        None,
        &mut notes,
    )
    .await;
    drop(handle);
    out.extend(notes.into_iter().map(Response::Note));
    let (pulled, pushed) = done.map_err(failed)?;
    agent.book().learn(peer, addr, tokio::time::Instant::now());
    Ok(Response::Synced {
        pulled: pulled.map(|p| counts(&p.report)),
        pushed: pushed.as_ref().map(counts),
    })
}

/// `client/vault/record`, for messages.
fn shown(t: &Target) -> String {
    format!(
        "{}/{}/{}",
        String::from_utf8_lossy(&t.client),
        String::from_utf8_lossy(&t.vault),
        String::from_utf8_lossy(&t.record)
    )
}

/// The target as the CLI names it (`paths::Target`), for output identical to the file path.
fn named(t: &Target) -> crate::paths::Target {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    crate::paths::Target {
        client: text(&t.client),
        vault: text(&t.vault),
        record: text(&t.record),
    }
}

/// The record at a target, read and checked from the database; `NotFound` when none is there.
fn record_at(v: &Vault, t: &Target) -> Result<redoubt_node::Record, Response> {
    let loc = location(t)?;
    v.store()
        .record(&t.client, &loc)
        .map_err(|e| error(ErrorKind::Failed, format!("reading {}: {e}", shown(t))))?
        .ok_or_else(|| error(ErrorKind::NotFound, format!("no record at {}", named(t))))
}

fn location(t: &Target) -> Result<Location, Response> {
    Location::new(t.vault.as_slice(), t.record.as_slice())
        .map_err(|e| error(ErrorKind::BadRequest, format!("{}: {e}", shown(t))))
}

/// The peer a request names, as a libp2p peer id (base58): anything else is a bad request.
fn peer_id(text: &str) -> Result<PeerId, Response> {
    text.parse().map_err(|_| {
        error(
            ErrorKind::BadRequest,
            format!("{text:?} is not a peer id (base58, as `redoubt id` prints)"),
        )
    })
}

fn failed(what: String) -> impl FnOnce(redoubt_node::Error) -> Response {
    move |e| error(ErrorKind::Failed, format!("{what}: {e}"))
}

/// What a request did that the sync plan hears of.
#[derive(Default)]
struct Effect {
    /// A local change was committed to a client shared with these peers.
    changed: Vec<PeerId>,
    /// This peer was granted rights.
    paired: Option<PeerId>,
    /// This peer holds no grant any more.
    unpaired: Option<PeerId>,
}

/// The peers that may pull `client` from us: a change to it is for them.
pub(crate) fn sharing(v: &Vault, client: &[u8]) -> Vec<PeerId> {
    v.grants()
        .iter()
        .filter(|(_, c, r)| *c == client && r.read)
        .filter_map(|(p, _, _)| std::str::from_utf8(p).ok()?.parse().ok())
        .collect()
}

/// A request on the open vault: items into `out`, the final response returned.
fn on_vault(
    v: &mut Vault,
    request: Request,
    out: &mut Vec<Response>,
    effect: &mut Effect,
) -> Result<Response, Response> {
    match request {
        Request::Get(t) => {
            let loc = location(&t)?;
            match v
                .get(&t.client, &loc)
                .map_err(failed(format!("reading {}", shown(&t))))?
            {
                Some(value) => Ok(Response::Value(redoubt_control::SecretBytes::new(
                    value.expose().to_vec(),
                ))),
                None => Err(error(
                    ErrorKind::NotFound,
                    format!("no record at {}", shown(&t)),
                )),
            }
        }
        Request::Exists(t) => {
            let loc = location(&t)?;
            let held = v
                .get(&t.client, &loc)
                .map_err(failed(format!("reading {}", shown(&t))))?;
            Ok(Response::Flag(held.is_some()))
        }
        Request::Put {
            target,
            value,
            force,
        } => {
            let loc = location(&target)?;
            let held = v
                .get(&target.client, &loc)
                .map_err(failed(format!("reading {}", shown(&target))))?;
            if !force && held.is_some() {
                return Err(error(
                    ErrorKind::Exists,
                    format!(
                        "{} already holds a secret; pass --force to replace it",
                        shown(&target)
                    ),
                ));
            }
            let value = SecretValue::new(value.expose().to_vec());
            v.put(&target.client, &loc, value)
                .map_err(failed(format!("storing {}", shown(&target))))?;
            effect.changed = sharing(v, &target.client);
            Ok(Response::Done)
        }
        Request::Rm(t) => {
            let loc = location(&t)?;
            v.delete(&t.client, &loc)
                .map_err(failed(format!("deleting {}", shown(&t))))?;
            effect.changed = sharing(v, &t.client);
            Ok(Response::Done)
        }
        Request::List { client } => {
            out.extend(list(v, client.as_deref())?.into_iter().map(Response::Item));
            Ok(Response::Done)
        }
        Request::History(t) => {
            let record = record_at(v, &t)?;
            serde_json::to_string(&VersionEntry::all(&record))
                .map(Response::Text)
                .map_err(|e| error(ErrorKind::Failed, format!("listing versions: {e}")))
        }
        Request::Restore { target: t, version } => {
            let loc = location(&t)?;
            let shown = named(&t);
            let record = record_at(v, &t)?;
            let hash = history::chosen(&record, &shown, &version).map_err(|e| {
                // A malformed version id (too short, not hex, ambiguous) is a bad request; a
                // well-formed one the record does not hold, or the current one, is not found.
                let kind = if e.downcast_ref::<redoubt_vault::Error>().is_some() {
                    ErrorKind::BadRequest
                } else {
                    ErrorKind::NotFound
                };
                error(kind, format!("{e:#}"))
            })?;
            v.revert(&t.client, &loc, &hash)
                .map_err(failed(format!("restoring {shown}")))?;
            effect.changed = sharing(v, &t.client);
            let now = record_at(v, &t)?;
            Ok(Response::Text(history::restored(&shown, &hash, &now)))
        }
        Request::Allow {
            peer,
            client,
            read,
            write,
        } => {
            let id = peer_id(&peer)?;
            // Rights add to what the peer holds already.
            let held = v.store().rights(peer.as_bytes(), &client);
            let rights = Rights {
                read: read || held.read,
                write: write || held.write,
            };
            v.set_rights(&id, &client, rights)
                .map_err(failed(format!("granting {peer}")))?;
            let now = v.store().rights(peer.as_bytes(), &client);
            effect.paired = Some(id);
            out.push(Response::Grant {
                peer,
                client,
                read: now.read,
                write: now.write,
            });
            Ok(Response::Done)
        }
        Request::Deny { peer, client } => {
            let id = peer_id(&peer)?;
            let removed = v
                .revoke(&id, client.as_deref())
                .map_err(failed(format!("revoking {peer}")))?;
            if !v.grants().iter().any(|(p, _, _)| p == peer.as_bytes()) {
                effect.unpaired = Some(id);
            }
            Ok(Response::Count(removed as u64))
        }
        Request::Peers => {
            out.extend(v.grants().iter().map(|(p, c, r)| Response::Grant {
                peer: String::from_utf8_lossy(p).into_owned(),
                client: c.to_vec(),
                read: r.read,
                write: r.write,
            }));
            Ok(Response::Done)
        }
        Request::Addresses => {
            let book = v
                .address_book()
                .map_err(failed("reading the address book".to_string()))?;
            for (peer, addrs) in book {
                out.extend(
                    addrs
                        .into_iter()
                        .map(|(addr, last_seen)| Response::Address {
                            peer: peer.to_base58(),
                            addr: addr.to_string(),
                            last_seen,
                        }),
                );
            }
            Ok(Response::Done)
        }
        other => Err(error(
            ErrorKind::BadRequest,
            format!("unexpected request {other:?}"),
        )),
    }
}

/// Every live record (of `client` only), sorted by client, vault, record.
fn list(v: &Vault, client: Option<&[u8]>) -> Result<Vec<ListItem>, Response> {
    let store = v.store();
    let mut items = Vec::new();
    for (id, name) in store.clients() {
        if client.is_some_and(|c| c != name) {
            continue;
        }
        let records = store
            .records(id)
            .map_err(redoubt_node::Error::from)
            .map_err(failed(format!(
                "reading client {}",
                String::from_utf8_lossy(name)
            )))?;
        items.extend(
            records
                .iter()
                .filter(|r| !r.is_tombstone())
                .map(|r| list_item(name, r)),
        );
    }
    if let Some(c) = client
        && store.client_path(&ClientId::from_path(c)).is_none()
    {
        return Err(error(
            ErrorKind::NotFound,
            format!("no client {:?} in this vault", String::from_utf8_lossy(c)),
        ));
    }
    items.sort_by(|a, b| a.names.cmp(&b.names));
    Ok(items)
}

/// The agent's state as a JSON object.
fn status(agent: &Agent, state: &State) -> String {
    let (locked, listening) = match state {
        State::Open(h) => (
            false,
            h.listen_addrs().iter().map(ToString::to_string).collect(),
        ),
        _ => (true, Vec::new()),
    };
    serde_json::json!({
        "vault": agent.path.display().to_string(),
        "peer_id": agent.peer_id().map(|id| id.to_base58()),
        "locked": locked,
        "listening": listening,
        "lock_after_seconds": agent.lock_after.map(|d| d.as_secs()),
        "idle_seconds": agent.idle().as_secs(),
        "peers": agent.book().status(),
        "remotes": agent.remotes().status(),
    })
    .to_string()
}
