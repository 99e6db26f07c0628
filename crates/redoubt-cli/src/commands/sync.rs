//! `redoubt sync`: pull from a live peer, then ask it to pull from us.

use std::{path::Path, time::Duration};

use anyhow::{Result, bail};
use redoubt_node::{
    Direction, Error as NodeError, Handle, Progress, PullOutcome, granted_mode,
    libp2p::{Multiaddr, PeerId},
    peer_id_of,
};
use redoubt_protocol::Mode;
use redoubt_sync::{Directions, Step, pull_then_push};
use redoubt_vault::MergeReport;
use serde::Serialize;
use tokio::sync::watch;

use crate::{cli::SyncArgs, live, output::ReportJson, store::open};

/// What `sync --json` prints: a report per direction, `null` for a direction not run.
#[derive(Serialize)]
struct SyncJson {
    pulled: Option<ReportJson>,
    pushed: Option<ReportJson>,
}

pub(crate) fn mode(args: &SyncArgs) -> Mode {
    match &args.client {
        None => Mode::Import { clients: vec![] },
        Some(c) if args.vault_paths.is_empty() => Mode::Full {
            client: c.as_bytes().to_vec(),
        },
        Some(c) => Mode::Partial {
            client: c.as_bytes().to_vec(),
            vaults: args
                .vault_paths
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect(),
            records: vec![],
        },
    }
}

/// Pull, then push (or one of them), naming the direction in any error; the rule of what a
/// two-way sync tolerates is [`pull_then_push`]'s, and its notes go to `notes` (for stderr).
pub(crate) async fn run_directions(
    handle: &Handle,
    me: &PeerId,
    addr: &Multiaddr,
    mode: Mode,
    args: &SyncArgs,
    progress: Option<watch::Sender<Progress>>,
    notes: &mut Vec<String>,
) -> Result<(Option<PullOutcome>, Option<MergeReport>)> {
    let directions = if args.pull_only {
        Directions::PullOnly
    } else if args.push_only {
        Directions::PushOnly
    } else {
        Directions::Both
    };
    let client = args.client.as_deref().unwrap_or("CLIENT");
    match pull_then_push(&mut handle.link(addr, progress), mode, directions).await {
        Ok(done) => {
            notes.extend(done.notes.iter().map(ToString::to_string));
            Ok((done.pulled, done.pushed))
        }
        Err(failed) => {
            notes.extend(failed.notes.iter().map(ToString::to_string));
            let what = match failed.step {
                Step::Pull => "pull",
                Step::Push if failed.after_pull => {
                    "push (the pull before it completed and was saved)"
                }
                Step::Push => "push",
            };
            let peer = peer_of_addr(addr);
            if let NodeError::Unreachable { addr } = &failed.error {
                bail!(
                    "{what}: peer {peer} did not answer at {addr}: check that `redoubt serve` \
                     runs on that device and listens on that address"
                );
            }
            let hint = refusal_hint(&failed.error, failed.step, me, client);
            let error = anyhow::Error::new(failed.error).context(what);
            Err(match hint {
                Some(h) => error.context(h),
                None => error,
            })
        }
    }
}

fn peer_of_addr(addr: &Multiaddr) -> String {
    peer_id_of(addr).map_or_else(|_| "PEER".to_string(), |p| p.to_string())
}

/// What the user can do about a refusal by the peer, said before the error itself.
fn refusal_hint(error: &NodeError, step: Step, me: &PeerId, client: &str) -> Option<String> {
    if !error.is_permission_denied() {
        return None;
    }
    let right = match step {
        Step::Pull => "read",
        Step::Push => "write",
    };
    Some(format!(
        "the peer refused: on that device, `redoubt allow {me} --client {client} --{right}` \
         grants this node what it asked"
    ))
}

/// ADDR parsed, with a hint when it is a peer id rather than an address.
pub(crate) fn parse_addr(addr: &str) -> Result<Multiaddr> {
    if addr.parse::<PeerId>().is_ok() {
        bail!(
            "{addr:?} is a peer id, not an address: `redoubt sync --peer {addr}` finds it on the \
             local network, or give its address, such as /ip4/192.0.2.1/tcp/7450/p2p/{addr} (as \
             `redoubt serve` prints it)"
        );
    }
    addr.parse().map_err(|_| {
        anyhow::anyhow!(
            "{addr:?} is not a multiaddr (an address such as /ip4/192.0.2.1/tcp/7450/p2p/PEER_ID, \
             as `redoubt serve` prints it; a peer id alone goes after --peer)"
        )
    })
}

/// `--peer`'s value, or an error that says what a peer id looks like.
pub(crate) fn parse_peer(peer: &str) -> Result<PeerId> {
    peer.parse().map_err(|_| {
        anyhow::anyhow!(
            "--peer {peer:?} is not a peer id (one looks like 12D3KooW... and `redoubt id` \
             prints it on its device)"
        )
    })
}

/// Where the peer is: ADDR as given, or the address discovery finds for --peer.
async fn peer_addr(handle: &Handle, args: &SyncArgs) -> Result<Multiaddr> {
    if let Some(addr) = &args.addr {
        return parse_addr(addr);
    }
    let id = parse_peer(args.peer.as_deref().unwrap_or_default())?;
    Ok(handle.discover(id, Duration::from_secs(args.wait)).await?)
}

/// The peer id the sync will talk to, from ADDR's `/p2p/` part or `--peer`.
fn peer_of(args: &SyncArgs) -> Result<PeerId> {
    if let Some(addr) = &args.addr {
        return Ok(peer_id_of(&parse_addr(addr)?)?);
    }
    parse_peer(args.peer.as_deref().unwrap_or_default())
}

/// Checks our own grants before anything moves: a named client needs `write` for the pull
/// (the peer's records come in) and `read` for the push (ours go out). With no `--client`,
/// says on stderr when a direction has no client to move.
fn check_grants(vault: &live::Live, peer: &PeerId, mode: &Mode, args: &SyncArgs) -> Result<()> {
    let mut notes = Vec::new();
    let checked = vault.read(|v| check_vault_grants(v, peer, mode, args, &mut notes))?;
    print_notes(&notes);
    checked
}

/// Each note on stderr.
pub(crate) fn print_notes(notes: &[String]) {
    for note in notes {
        eprintln!("note: {note}");
    }
}

/// [`check_grants`] on the vault itself, its notes into `notes`.
pub(crate) fn check_vault_grants(
    store: &redoubt_node::Vault,
    peer: &PeerId,
    mode: &Mode,
    args: &SyncArgs,
    notes: &mut Vec<String>,
) -> Result<()> {
    let mut directions = Vec::new();
    if !args.push_only {
        directions.push((Direction::In, "its records cannot come in", "--push-only"));
    }
    if !args.pull_only {
        directions.push((Direction::Out, "ours cannot go out to it", "--pull-only"));
    }
    for (direction, why, other) in directions {
        match granted_mode(store.grants(), peer, mode.clone(), direction) {
            Ok(Some(_)) => {}
            Ok(None) => notes.push(format!(
                "this vault grants {peer} {right} on no client, so {why} \
                 (`redoubt allow {peer} --client CLIENT --{right}` would add one)",
                right = direction.right(),
            )),
            Err(NodeError::NotGranted { right, client, .. }) => bail!(
                "no {right} grant for peer {peer} on client {client:?} in this vault, so {why}: \
                 `redoubt allow {peer} --client {client} --{right}` would add it (or sync with \
                 {other})"
            ),
            Err(e) => return Err(e.into()),
        }
    }
    if let Mode::Import { .. } = mode {
        // A client made after pairing has no grant, and an import skips it: say so.
        let key = peer.to_base58();
        for (_, client) in store.store().clients() {
            let rights = store.grants().rights(key.as_bytes(), client);
            if !rights.read || !rights.write {
                let name = String::from_utf8_lossy(client);
                notes.push(format!(
                    "client {name:?} is not shared with {peer} (this vault grants it {}), \
                     so this sync skips it: `redoubt allow {peer} --client {name} --read --write` \
                     shares it (and the same for this node's id on that device)",
                    rights_text(rights)
                ));
            }
        }
    }
    Ok(())
}

fn rights_text(r: redoubt_vault::Rights) -> &'static str {
    match (r.read, r.write) {
        (true, true) => "read and write",
        (true, false) => "only read",
        (false, true) => "only write",
        (false, false) => "no rights",
    }
}

pub(crate) fn run(path: &Path, args: &SyncArgs) -> Result<()> {
    let peer = peer_of(args)?;
    let mode = mode(args);
    let opened = open(path)?;
    let me = live::peer_id(&opened.store)?;
    let mut vault = live::Live::new(opened.store)?;
    check_grants(&vault, &peer, &mode, args)?;
    live::init_logs("error");
    // The node commits what it merges before it reports it, even when the session fails
    // later: whatever was verified and merged is kept.
    let result: Result<(Option<PullOutcome>, Option<MergeReport>)> =
        live::runtime()?.block_on(async {
            let discovery = args.peer.is_some() && !args.no_discovery;
            let config = vault
                .config(Vec::new())?
                .with_discovery(discovery)
                .with_allow_unbound(args.allow_unbound);
            let (handle, _events) = vault.spawn(config).await?;
            let addr = match peer_addr(&handle, args).await {
                Ok(a) => a,
                Err(e) => {
                    handle.shutdown().await;
                    return Err(e);
                }
            };
            let (progress, bar) = live::progress_bar();
            let mut notes = Vec::new();
            let result =
                run_directions(&handle, &me, &addr, mode, args, progress, &mut notes).await;
            print_notes(&notes);
            if let Some(bar) = bar {
                let _ = bar.await;
            }
            handle.shutdown().await;
            result
        });
    let (pulled, pushed) = result?;
    print_result(pulled.map(|p| p.report), pushed, args.json)
}

/// What a sync merged each way, as `sync` prints it.
pub(crate) fn print_result(
    pulled: Option<MergeReport>,
    pushed: Option<MergeReport>,
    json: bool,
) -> Result<()> {
    if json {
        let json = SyncJson {
            pulled: pulled.as_ref().map(ReportJson::from),
            pushed: pushed.as_ref().map(ReportJson::from),
        };
        outln!("{}", serde_json::to_string(&json)?);
    } else {
        if let Some(r) = pulled {
            outln!("pulled: {r}");
            for line in crate::output::conflict_lines(&r) {
                outln!("{line}");
            }
        }
        if let Some(r) = pushed {
            outln!("pushed: {r}");
        }
    }
    Ok(())
}
