//! Commands that go through a running agent: the one place where a command finds the agent
//! of its vault and, if one runs, asks it instead of opening the file (no password asked).

use std::{
    io::{IsTerminal, Write},
    path::Path,
};

use anyhow::{Result, bail};
use redoubt_control::{PairRequest, PairResponse, Request, Response, SecretBytes, Target};
use redoubt_vault::Rights;

use super::{clip, history, pair, peers, records};
use crate::{
    cli::{Command, StatusArgs},
    control::Connection,
    output::{ListEntry, VersionEntry, from_counts},
    secrets::{PASSWORD_ENV, password, secret_from_stdin},
};

/// Runs `command` through the agent of the vault at `path` when one runs and the command
/// goes through agents: `true` when it did.
pub(crate) fn route(path: &Path, command: &Command) -> Result<bool> {
    let routed = matches!(
        command,
        Command::Put(_)
            | Command::Get(_)
            | Command::Rm(_)
            | Command::List(_)
            | Command::Id
            | Command::Allow(_)
            | Command::Deny(_)
            | Command::Peers(_)
            | Command::Sync(_)
            | Command::History(_)
            | Command::Restore(_)
            | Command::Pair(_)
    );
    if !routed {
        return Ok(false);
    }
    let Some(mut agent) = Connection::to_agent_of(path)? else {
        return Ok(false);
    };
    match command {
        Command::Put(args) => put(path, agent, args)?,
        Command::Get(args) => get(&mut agent, args)?,
        Command::Rm(args) => {
            let target = wire(&records::target(args)?);
            agent.ask(&Request::Rm(target), no_items)?;
        }
        Command::List(args) => list(&mut agent, args)?,
        Command::History(args) => {
            let target = wire(&records::target(&args.at)?);
            let Response::Text(json) = agent.ask(&Request::History(target), no_items)? else {
                bail!("the agent did not answer with the versions");
            };
            let entries: Vec<VersionEntry> = serde_json::from_str(&json)?;
            history::print(&entries, args.json)?;
        }
        Command::Restore(args) => {
            let request = Request::Restore {
                target: wire(&history::restore_target(args)),
                version: args.version.clone(),
            };
            let Response::Text(line) = agent.ask(&request, no_items)? else {
                bail!("the agent did not answer with the restored version");
            };
            outln!("{line}");
        }
        Command::Id => {
            if let Response::Text(id) = agent.ask(&Request::Id, no_items)? {
                outln!("{id}");
            }
        }
        Command::Allow(args) => allow(&mut agent, args)?,
        Command::Deny(args) => {
            let peer = peers::parse_peer(&args.peer)?;
            let request = Request::Deny {
                peer: peer.to_base58(),
                client: args.client.as_ref().map(|c| c.as_bytes().to_vec()),
            };
            if let Response::Count(n) = agent.ask(&request, no_items)? {
                outln!("revoked {n} grant(s) of {peer}");
            }
        }
        Command::Peers(args) => {
            let mut grants = Vec::new();
            agent.ask(&Request::Peers, |r| {
                if let Response::Grant {
                    peer,
                    client,
                    read,
                    write,
                } = r
                {
                    grants.push(peers::grant(
                        peer.as_bytes(),
                        &client,
                        Rights { read, write },
                    ));
                }
                Ok(())
            })?;
            // An agent older than the address book refuses `Addresses`: grants alone then.
            let mut book = peers::Book::new();
            let _ = agent.ask(&Request::Addresses, |r| {
                if let Response::Address {
                    peer,
                    addr,
                    last_seen,
                } = r
                {
                    book.entry(peer)
                        .or_default()
                        .push(peers::Seen { addr, last_seen });
                }
                Ok(())
            });
            peers::print_grants(grants, &book, args.json)?;
        }
        Command::Sync(args) => sync(&mut agent, args)?,
        Command::Pair(args) => match &args.code {
            None => pair_host(&mut agent, args)?,
            Some(code) => pair_join(&mut agent, args, code)?,
        },
        _ => return Ok(false),
    }
    Ok(true)
}

fn no_items(r: Response) -> Result<()> {
    bail!("the agent answered with an unexpected item {r:?}")
}

/// A target as the control protocol carries it.
fn wire(t: &crate::paths::Target) -> Target {
    Target {
        client: t.client.as_bytes().to_vec(),
        vault: t.vault.as_bytes().to_vec(),
        record: t.record.as_bytes().to_vec(),
    }
}

fn sync(agent: &mut Connection, args: &crate::cli::SyncArgs) -> Result<()> {
    let addr = match (&args.addr, &args.peer) {
        (Some(addr), _) => super::sync::parse_addr(addr)?.to_string(),
        (None, Some(peer)) => format!("/p2p/{}", super::sync::parse_peer(peer)?),
        (None, None) => bail!("sync needs ADDR or --peer PEER_ID"),
    };
    let directions = if args.pull_only {
        1
    } else if args.push_only {
        2
    } else {
        0
    };
    let request = Request::Sync {
        addr,
        directions,
        allow_unbound: args.allow_unbound,
        client: args.client.as_ref().map(|c| {
            let paths = args.vault_paths.iter().map(|p| p.as_bytes().to_vec());
            (c.as_bytes().to_vec(), paths.collect())
        }),
    };
    let mut notes = Vec::new();
    let answer = agent.ask(&request, |r| {
        if let Response::Note(n) = r {
            notes.push(n);
        }
        Ok(())
    });
    super::sync::print_notes(&notes);
    let Response::Synced { pulled, pushed } = answer? else {
        bail!("the agent did not answer with what the sync did");
    };
    super::sync::print_result(pulled.map(from_counts), pushed.map(from_counts), args.json)
}

/// `redoubt pair` (offering) on the agent's node: the same lines and questions as without an
/// agent, the user's answers sent back to it.
fn pair_host(agent: &mut Connection, args: &crate::cli::PairArgs) -> Result<()> {
    if !args.addrs.is_empty() {
        bail!("--addr is for the joining device (the one given a CODE)");
    }
    if args.listen != [pair::DEFAULT_LISTEN] {
        eprintln!("redoubt: --listen is not used: the agent's node offers where it listens");
    }
    let request = Request::Pair(PairRequest::Offer {
        ttl_secs: args.ttl,
        clients: args.clients.iter().map(|c| c.as_bytes().to_vec()).collect(),
    });
    let asked = agent.ask(&request, |r| match r {
        Response::Pair(PairResponse::Offered {
            code,
            payload,
            listening,
            clients,
        }) => pair::show_offer(
            &String::from_utf8_lossy(code.expose()),
            &String::from_utf8_lossy(payload.expose()),
            &listening,
            &clients,
            args,
        ),
        other => no_items(other),
    })?;
    let (peer, accept) = pair_question(asked, args.yes)?;
    if accept {
        eprintln!("{}", pair::WAITING);
    }
    let done = agent.ask(&Request::Pair(PairRequest::Confirm(accept)), pair_items)?;
    if !accept {
        bail!("declined device {peer}");
    }
    match done {
        Response::Count(records) => outln!("served the import: {records} records"),
        Response::Done => {}
        other => bail!("the agent answered the pairing with {other:?}"),
    }
    Ok(())
}

/// `redoubt pair CODE` (joining) from the agent's node.
fn pair_join(agent: &mut Connection, args: &crate::cli::PairArgs, code: &str) -> Result<()> {
    if !args.clients.is_empty() {
        bail!("--client is for the offering device (the one without a CODE)");
    }
    let addrs = pair::parse_addrs(&args.addrs, "--addr")?;
    let code = pair::read_code(code)?;
    let request = Request::Pair(PairRequest::Join {
        code: SecretBytes::new(code.as_bytes().to_vec()),
        discover: !args.no_discovery,
        addrs: addrs.iter().map(ToString::to_string).collect(),
    });
    let asked = agent.ask(&request, no_items)?;
    let (peer, accept) = pair_question(asked, args.yes)?;
    if !accept {
        agent.ask(&Request::Pair(PairRequest::Confirm(false)), no_items)?;
        bail!("declined device {peer}; nothing was granted on either device");
    }
    eprintln!("{}", pair::WAITING);
    let Response::Synced {
        pulled: Some(imported),
        ..
    } = agent.ask(&Request::Pair(PairRequest::Confirm(true)), pair_items)?
    else {
        bail!("the agent did not answer with the import");
    };
    outln!("imported: {}", from_counts(imported));
    Ok(())
}

/// Asks the user about the device the agent names (`--yes`: accepted): its peer id and answer.
fn pair_question(asked: Response, yes: bool) -> Result<(String, bool)> {
    let Response::Pair(PairResponse::Verify { peer, check }) = asked else {
        bail!("the agent did not ask to confirm a device");
    };
    let check = format!("{:03} {:03}", check / 1000, check % 1000);
    let accept = pair::confirm(&peer, check, yes)?;
    Ok((peer, accept))
}

/// The items that answer a confirmation: the pairing, and a note for stderr.
fn pair_items(r: Response) -> Result<()> {
    match r {
        Response::Pair(PairResponse::Paired { peer, clients }) => {
            outln!(
                "paired: {peer} may now read and write {}",
                pair::names(&clients)
            );
        }
        Response::Note(note) => eprintln!("redoubt: {note}"),
        other => return no_items(other),
    }
    Ok(())
}

fn put(path: &Path, mut agent: Connection, args: &crate::cli::PutArgs) -> Result<()> {
    let target = records::target(&args.at)?;
    records::location(&target)?;
    let at = wire(&target);
    // Decide about an existing secret before asking for the new one.
    let mut force = args.force;
    if !force && agent.ask(&Request::Exists(at.clone()), no_items)? == Response::Flag(true) {
        records::confirm_overwrite(&target)?;
        force = true;
    }
    drop(agent);
    let secret = secret_from_stdin()?;
    if secret.expose().is_empty() && !args.allow_empty {
        bail!(
            "refusing to store an empty secret at {target} (empty stdin or an empty answer); \
             pass --allow-empty if that is what you mean"
        );
    }
    let request = Request::Put {
        target: at,
        value: SecretBytes::new(secret.expose().to_vec()),
        force,
    };
    // A new connection: typing the secret may take longer than the agent keeps one open.
    let mut agent = Connection::to_agent_of(path)?
        .ok_or_else(|| anyhow::anyhow!("the agent stopped before {target} was stored"))?;
    agent.ask(&request, no_items)?;
    Ok(())
}

fn get(agent: &mut Connection, args: &crate::cli::GetArgs) -> Result<()> {
    let target = wire(&records::target(&args.at)?);
    let Response::Value(value) = agent.ask(&Request::Get(target), no_items)? else {
        bail!("the agent did not answer with a value");
    };
    if args.clip {
        return clip::copy(value.expose(), args.clip_timeout);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(value.expose())?;
    // On a terminal the prompt must not land on the secret's line; a pipe gets the exact bytes.
    if out.is_terminal() && !value.expose().ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn list(agent: &mut Connection, args: &crate::cli::ListArgs) -> Result<()> {
    let mut entries = Vec::new();
    let request = Request::List {
        client: args.client.as_ref().map(|c| c.as_bytes().to_vec()),
    };
    agent.ask(&request, |r| {
        if let Response::Item(item) = r {
            entries.push(ListEntry::from(item));
        }
        Ok(())
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
    } else {
        for e in &entries {
            writeln!(out, "{}", e.line())?;
        }
    }
    out.flush()?;
    Ok(())
}

fn allow(agent: &mut Connection, args: &crate::cli::AllowArgs) -> Result<()> {
    let peer = peers::parse_peer(&args.peer)?;
    if !args.read && !args.write {
        bail!("allow needs --read, --write or both");
    }
    let request = Request::Allow {
        peer: peer.to_base58(),
        client: args.client.as_bytes().to_vec(),
        read: args.read,
        write: args.write,
    };
    let mut now = Rights::default();
    agent.ask(&request, |r| {
        if let Response::Grant { read, write, .. } = r {
            now = Rights { read, write };
        }
        Ok(())
    })?;
    outln!("{peer}\t{}\t{}", args.client, peers::rights_text(now));
    Ok(())
}

/// The agent of the vault at `path`, or an error saying none runs.
fn running(path: &Path) -> Result<Connection> {
    Connection::to_agent_of(path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no agent runs on {} (start one with `redoubt agent`)",
            path.display()
        )
    })
}

/// `redoubt status [--json]`.
pub(crate) fn status(path: &Path, args: &StatusArgs) -> Result<()> {
    let Some(mut agent) = Connection::to_agent_of(path)? else {
        if args.json {
            let none = serde_json::json!({ "vault": path.display().to_string(), "agent": false });
            outln!("{none}");
        } else {
            outln!("agent: not running on {}", path.display());
        }
        return Ok(());
    };
    let Response::Text(text) = agent.ask(&Request::Status, no_items)? else {
        bail!("the agent did not answer with its status");
    };
    let mut status: serde_json::Value = serde_json::from_str(&text)?;
    status["agent"] = serde_json::Value::Bool(true);
    if args.json {
        outln!("{status}");
        return Ok(());
    }
    let locked = status["locked"].as_bool().unwrap_or(false);
    outln!("agent: running on {}", path.display());
    outln!("state: {}", if locked { "locked" } else { "unlocked" });
    outln!(
        "peer id: {}",
        status["peer_id"]
            .as_str()
            .unwrap_or("unknown until `redoubt unlock`")
    );
    for addr in status["listening"].as_array().into_iter().flatten() {
        outln!("listening on {}", addr.as_str().unwrap_or_default());
    }
    if let Some(secs) = status["lock_after_seconds"].as_u64() {
        outln!("locks after {secs} s idle");
    }
    for p in status["peers"].as_array().into_iter().flatten() {
        let reachable = match p["reachable"].as_bool() {
            Some(true) => "reachable",
            Some(false) => "unreachable",
            None => "not tried",
        };
        let synced = p["last_sync_ms"]
            .as_u64()
            .map_or_else(|| "never".to_string(), crate::output::utc);
        outln!(
            "peer {}: {reachable}, last synced {synced}, {} change(s) waiting{}",
            p["peer"].as_str().unwrap_or_default(),
            p["changes_waiting"].as_u64().unwrap_or(0),
            p["last_error"]
                .as_str()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        );
    }
    for r in status["remotes"].as_array().into_iter().flatten() {
        let synced = r["last_sync_ms"]
            .as_u64()
            .map_or_else(|| "never".to_string(), crate::output::utc);
        outln!(
            "remote {}: last synced {synced}{}",
            r["name"].as_str().unwrap_or_default(),
            r["last_error"]
                .as_str()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `redoubt lock`.
pub(crate) fn lock(path: &Path) -> Result<()> {
    running(path)?.ask(&Request::Lock, no_items)?;
    eprintln!("locked: the agent holds no key until `redoubt unlock`");
    Ok(())
}

/// `redoubt unlock`: the password from REDOUBT_PASSWORD or a prompt, to the agent only.
pub(crate) fn unlock(path: &Path) -> Result<()> {
    let mut agent = running(path)?;
    let secret = password(PASSWORD_ENV, &format!("Password for {}: ", path.display()))?;
    let request = Request::Unlock {
        password: SecretBytes::new(secret.expose().to_vec()),
    };
    agent.ask(&request, no_items)?;
    Ok(())
}
