//! `redoubt pair`: offer a pairing (show a code) or join one (type it).

use std::{
    fmt::Display,
    io::{BufRead, IsTerminal, Write},
    path::Path,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use redoubt_node::{Handle, NodeEvent, PairingEvent, libp2p::Multiaddr};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::{cli::PairArgs, live, store::open};

/// `--listen`'s default (`cli::PairArgs`): given anything else, a pairing through an agent says
/// that it is not used.
pub(super) const DEFAULT_LISTEN: &str = "/ip4/0.0.0.0/tcp/0";
/// How long a joiner (or a sync to a bare peer id) looks for devices on the local network,
/// with or without an agent.
pub(super) const DISCOVERY_WAIT: Duration = Duration::from_secs(10);
/// How long the host keeps serving after pairing, for the joiner's import.
const IMPORT_WAIT: Duration = Duration::from_secs(120);
/// How long the host's node keeps running after its last answer, so that the answer reaches
/// the other device before the connection closes.
const LINGER: Duration = Duration::from_secs(1);

pub(crate) fn run(path: &Path, args: &PairArgs) -> Result<()> {
    match &args.code {
        None => host(path, args),
        Some(code) => join(path, args, code),
    }
}

pub(super) fn parse_addrs(list: &[String], flag: &str) -> Result<Vec<Multiaddr>> {
    list.iter()
        .map(|a| {
            a.parse::<Multiaddr>()
                .with_context(|| format!("{flag} {a:?} is not a multiaddr"))
        })
        .collect()
}

/// The device that holds the secrets: show a code, confirm the device that proves it (both
/// users confirm; see [`confirm`]).
fn host(path: &Path, args: &PairArgs) -> Result<()> {
    if !args.addrs.is_empty() {
        bail!("--addr is for the joining device (the one given a CODE)");
    }
    let listen = parse_addrs(&args.listen, "--listen")?;
    live::check_listen(&listen)?;
    let mut vault = live::Live::new(open(path)?.store)?;
    live::init_logs("warn");
    let clients: Vec<Vec<u8>> = if args.clients.is_empty() {
        vault.read(|v| v.store().clients().map(|(_, p)| p.to_vec()).collect())?
    } else {
        args.clients.iter().map(|c| c.as_bytes().to_vec()).collect()
    };
    if clients.is_empty() {
        bail!("nothing to share: this vault holds no client yet (write a secret first)");
    }
    let result = live::runtime()?.block_on(async {
        let config = vault.config(listen)?.with_discovery(!args.no_discovery);
        let (handle, events) = vault.spawn(config).await?;
        let outcome = offer(&handle, events, clients, args).await;
        handle.shutdown().await;
        outcome
    });
    // Grants recorded by a pairing, and anything merged meanwhile, were committed as they
    // were made.
    result
}

async fn offer(
    handle: &Handle,
    mut events: mpsc::Receiver<NodeEvent>,
    clients: Vec<Vec<u8>>,
    args: &PairArgs,
) -> Result<()> {
    let mut offer = handle
        .pair_offer(clients.clone(), Duration::from_secs(args.ttl))
        .await?;
    let listening: Vec<String> = handle
        .listen_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    show_offer(
        &offer.code.to_string(),
        &offer.payload,
        &listening,
        &clients,
        args,
    )?;
    let peer = loop {
        match offer.next().await {
            Some(PairingEvent::Request(request)) => {
                let peer = request.peer();
                if confirm(peer, request.verification(), args.yes)? {
                    request.accept().await?;
                    eprintln!("{WAITING}");
                } else {
                    request.reject().await?;
                    tokio::time::sleep(LINGER).await;
                    bail!("declined device {peer}");
                }
            }
            Some(PairingEvent::Paired {
                peer,
                clients,
                remotes,
                withheld,
            }) => {
                outln!("paired: {peer} may now read and write {}", names(&clients));
                show_shared(&remotes, &withheld)?;
                break peer;
            }
            Some(PairingEvent::Failed { peer, reason }) => {
                // Let the refusal reach the other device before the node stops.
                tokio::time::sleep(LINGER).await;
                match peer {
                    Some(p) => bail!("pairing with {p} failed: {reason}"),
                    None => bail!("pairing failed: {reason}"),
                }
            }
            None => bail!("the node stopped"),
        }
    };
    // Serve the new device's import before exiting.
    let deadline = tokio::time::Instant::now() + IMPORT_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(NodeEvent::Served {
                peer: p, records, ..
            })) if p == peer => {
                tokio::time::sleep(LINGER).await;
                outln!("served the import: {records} records");
                return Ok(());
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                eprintln!(
                    "redoubt: the other device did not import within {} s; it can sync later",
                    IMPORT_WAIT.as_secs()
                );
                return Ok(());
            }
        }
    }
}

/// Prints what the host shows once its offer is open: a QR code on a terminal, where it
/// listens, the code, the payload, what to run on the other device, what it shares.
pub(super) fn show_offer(
    code: &str,
    payload: &str,
    listening: &[String],
    clients: &[Vec<u8>],
    args: &PairArgs,
) -> Result<()> {
    if std::io::stdout().is_terminal() {
        print_qr(payload)?;
    }
    for addr in listening {
        outln!("listening on {addr}");
    }
    outln!("code: {code}");
    // The payload names this device and its addresses, so it works where mDNS does not reach.
    outln!("qr payload: {payload}");
    if args.no_discovery {
        outln!(
            "on the other device run: redoubt pair '{payload}'   (valid {} s, one attempt)",
            args.ttl
        );
    } else {
        outln!(
            "on the other device run: redoubt pair {code}   (valid {} s, one attempt; where \
             mDNS does not reach it: redoubt pair '{payload}')",
            args.ttl,
        );
    }
    outln!("sharing: {}", names(clients));
    std::io::stdout().flush()?;
    Ok(())
}

/// What either device prints while the other device's user decides.
pub(super) const WAITING: &str = "waiting for the other device to confirm...";

/// Shows the verification string (`code check: 123 456` on stdout, for the record and for
/// scripts) and asks the user (or not, with --yes) whether to pair with `peer`. The question
/// goes to stderr; the answer is one line on stdin, from a terminal or a pipe.
pub(super) fn confirm(peer: impl Display, check: impl Display, yes: bool) -> Result<bool> {
    outln!("code check: {check}");
    std::io::stdout().flush()?;
    if yes {
        return Ok(true);
    }
    eprint!("pair with device {peer}? code check: {check} (the same on both devices?) [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        bail!("a device proved the code, but nobody answered on stdin to confirm it (use --yes)");
    }
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn print_qr(payload: &str) -> Result<()> {
    use qrcode::{QrCode, render::unicode::Dense1x2};
    let code = QrCode::new(payload.as_bytes()).context("making the QR code")?;
    let text = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    outln!("{text}");
    Ok(())
}

pub(super) fn names(clients: &[Vec<u8>]) -> String {
    clients
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The new device: prove the code, confirm the device that proved it too, record the grants,
/// import.
fn join(path: &Path, args: &PairArgs, code: &str) -> Result<()> {
    if !args.clients.is_empty() {
        bail!("--client is for the offering device (the one without a CODE)");
    }
    let addrs = parse_addrs(&args.addrs, "--addr")?;
    let code = read_code(code)?;
    let mut vault = live::Live::new(open(path)?.store)?;
    live::init_logs("error");
    let result: Result<_> = live::runtime()?.block_on(async {
        let config = vault.config(Vec::new())?.with_discovery(!args.no_discovery);
        let (handle, _events) = vault.spawn(config).await?;
        let wait = if args.no_discovery {
            Duration::ZERO
        } else {
            DISCOVERY_WAIT
        };
        let outcome = join_confirmed(&handle, &code, addrs, wait, args.yes).await;
        handle.shutdown().await;
        outcome
    });
    // The grants were committed once the pairing succeeded, even if the import then failed.
    let (paired, imported) = result?;
    outln!(
        "paired: {} may now read and write {}",
        paired.peer,
        names(&paired.clients)
    );
    show_joined(&paired)?;
    outln!("imported: {}", imported.report);
    Ok(())
}

/// The host's lines about the remotes on shared storage: those sent, those kept back.
pub(super) fn show_shared(remotes: &[String], withheld: &[String]) -> Result<()> {
    for name in remotes {
        outln!("remote {name} shared");
    }
    for name in withheld {
        outln!("remote {name} not shared: it carries a client the other device is not granted");
    }
    Ok(())
}

/// The joiner's lines about the remotes the host shared: joined, or refused and why.
pub(super) fn show_joined(paired: &redoubt_node::Paired) -> Result<()> {
    use redoubt_node::RemoteOutcome;
    for r in &paired.remotes {
        match &r.outcome {
            RemoteOutcome::Joined => outln!("remote {} joined: {}", r.name, r.url),
            RemoteOutcome::AlreadyJoined => outln!("remote {} already joined: {}", r.name, r.url),
            RemoteOutcome::Refused(why) => {
                eprintln!("redoubt: warning: remote {} refused: {why}", r.name);
            }
        }
    }
    if let Some(why) = &paired.remotes_refused {
        eprintln!("redoubt: warning: the remotes the other device shared were refused: {why}");
    }
    Ok(())
}

/// The code as given, or the first line of stdin for `-` (kept out of argv).
pub(super) fn read_code(code: &str) -> Result<Zeroizing<String>> {
    if code == "-" {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(Zeroizing::new(line.trim().to_string()))
    } else {
        Ok(Zeroizing::new(code.to_string()))
    }
}

/// Joins, asks this device's user, and on acceptance waits for the other device's user.
async fn join_confirmed(
    handle: &Handle,
    code: &str,
    addrs: Vec<Multiaddr>,
    wait: Duration,
    yes: bool,
) -> Result<(redoubt_node::Paired, redoubt_node::PullOutcome)> {
    let request = handle.pair_join(code, addrs, wait).await?;
    let peer = request.peer();
    if !confirm(peer, request.verification(), yes)? {
        request.reject().await?;
        bail!("declined device {peer}; nothing was granted on either device");
    }
    eprintln!("{WAITING}");
    Ok(request.accept().await?)
}
