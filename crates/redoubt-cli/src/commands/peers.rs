//! `redoubt id`, `allow`, `deny` and `peers`: this node's identity and its grants.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Result, bail};
use redoubt_node::libp2p::PeerId;
use redoubt_vault::Rights;
use serde::Serialize;

use crate::{live::peer_id, store::open};

pub(crate) fn id(path: &Path) -> Result<()> {
    let vault = open(path)?;
    outln!("{}", peer_id(&vault.store)?);
    Ok(())
}

/// Checks that `text` is a libp2p peer id, so a typo is not granted rights.
pub(crate) fn parse_peer(text: &str) -> Result<PeerId> {
    text.parse::<PeerId>().map_err(|_| {
        anyhow::anyhow!(
            "invalid peer id {text:?} (one looks like 12D3KooW... and `redoubt id` prints it \
                 on its device)"
        )
    })
}

pub(crate) fn allow(path: &Path, args: &crate::cli::AllowArgs) -> Result<()> {
    let peer = parse_peer(&args.peer)?;
    if !args.read && !args.write {
        bail!("allow needs --read, --write or both");
    }
    let mut vault = open(path)?;
    let key = peer.to_base58();
    // Rights add to what the peer holds already.
    let held = vault.store.rights(key.as_bytes(), args.client.as_bytes());
    let rights = Rights {
        read: args.read || held.read,
        write: args.write || held.write,
    };
    vault
        .store
        .set_rights(key.as_bytes(), args.client.as_bytes(), rights)?;
    let now = vault.store.rights(key.as_bytes(), args.client.as_bytes());
    outln!("{peer}\t{}\t{}", args.client, rights_text(now));
    Ok(())
}

pub(crate) fn deny(path: &Path, args: &crate::cli::DenyArgs) -> Result<()> {
    let peer = parse_peer(&args.peer)?;
    let mut vault = open(path)?;
    let removed = vault.store.revoke(
        peer.to_base58().as_bytes(),
        args.client.as_deref().map(str::as_bytes),
    )?;
    outln!("revoked {removed} grant(s) of {peer}");
    Ok(())
}

#[derive(Serialize)]
pub(crate) struct GrantJson {
    peer: String,
    client: String,
    read: bool,
    write: bool,
}

/// Where a peer was seen, and when (Unix seconds), as `peers --json` shows it.
#[derive(Serialize)]
pub(crate) struct Seen {
    pub(crate) addr: String,
    pub(crate) last_seen: u64,
}

/// Each paired peer's addresses (its id as text), the most recent first.
pub(crate) type Book = BTreeMap<String, Vec<Seen>>;

pub(crate) fn list(path: &Path, args: &crate::cli::PeersArgs) -> Result<()> {
    let vault = open(path)?;
    let grants = vault
        .store
        .grants()
        .iter()
        .map(|(p, c, r)| grant(p, c, r))
        .collect();
    let mut book = Book::new();
    // The grants are what matters: a book that cannot be read (or a row of it) is said, and
    // left out.
    let (stored, skipped) = redoubt_node::read_address_book(&vault.store).unwrap_or_else(|e| {
        (
            Vec::new(),
            vec![format!("the address book could not be read: {e}")],
        )
    });
    for why in skipped {
        eprintln!("redoubt: warning: {why}");
    }
    for (peer, addrs) in stored {
        let seen = addrs.into_iter().map(|(a, t)| Seen {
            addr: a.to_string(),
            last_seen: t,
        });
        book.insert(peer.to_base58(), seen.collect());
    }
    print_grants(grants, &book, args.json)
}

/// One grant as `peers` shows it.
pub(crate) fn grant(peer: &[u8], client: &[u8], rights: Rights) -> GrantJson {
    GrantJson {
        peer: String::from_utf8_lossy(peer).into_owned(),
        client: String::from_utf8_lossy(client).into_owned(),
        read: rights.read,
        write: rights.write,
    }
}

/// Prints grants as `peers` does: JSON (each grant with its peer's `addresses`), or a line
/// `PEER<TAB>CLIENT<TAB>RIGHTS` each, then for each paired peer a line
/// `PEER<TAB>seen at<TAB>ADDRESS<TAB>UNIX_SECONDS` per address, the most recent first.
pub(crate) fn print_grants(grants: Vec<GrantJson>, book: &Book, json: bool) -> Result<()> {
    if json {
        let with: Vec<serde_json::Value> = grants
            .iter()
            .map(|g| {
                let mut v = serde_json::to_value(g)?;
                let seen = book.get(&g.peer).map(Vec::as_slice).unwrap_or_default();
                v["addresses"] = serde_json::to_value(seen)?;
                Ok(v)
            })
            .collect::<Result<_>>()?;
        outln!("{}", serde_json::to_string(&with)?);
    } else {
        for g in &grants {
            let rights = Rights {
                read: g.read,
                write: g.write,
            };
            outln!("{}\t{}\t{}", g.peer, g.client, rights_text(rights));
        }
        for (peer, seen) in book {
            if grants.iter().any(|g| &g.peer == peer) {
                for s in seen {
                    outln!("{peer}\tseen at\t{}\t{}", s.addr, s.last_seen);
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn rights_text(r: Rights) -> &'static str {
    match (r.read, r.write) {
        (true, true) => "read,write",
        (true, false) => "read",
        (false, true) => "write",
        (false, false) => "none",
    }
}
