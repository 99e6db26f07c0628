//! `redoubt id`, `allow`, `deny` and `peers`: this node's identity and its grants.

use std::path::Path;

use anyhow::{Result, bail};
use redoubt_node::libp2p::PeerId;
use redoubt_vault::Rights;
use serde::Serialize;

use crate::{live::peer_id, store::open};

pub(crate) fn id(path: &Path) -> Result<()> {
    let vault = open(path, false)?;
    outln!("{}", peer_id(&vault)?);
    Ok(())
}

/// Checks that `text` is a libp2p peer id, so a typo is not granted rights.
fn parse_peer(text: &str) -> Result<PeerId> {
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
    let mut vault = open(path, true)?;
    let rights = Rights {
        read: args.read,
        write: args.write,
    };
    let key = peer.to_base58();
    vault
        .snapshot
        .access
        .grant(key.as_bytes(), args.client.as_bytes(), rights)?;
    vault.save()?;
    let now = vault
        .snapshot
        .access
        .rights(key.as_bytes(), args.client.as_bytes());
    outln!("{peer}\t{}\t{}", args.client, rights_text(now));
    Ok(())
}

pub(crate) fn deny(path: &Path, args: &crate::cli::DenyArgs) -> Result<()> {
    let peer = parse_peer(&args.peer)?;
    let mut vault = open(path, true)?;
    let removed = vault.snapshot.access.revoke(
        peer.to_base58().as_bytes(),
        args.client.as_deref().map(str::as_bytes),
    );
    if removed > 0 {
        vault.save()?;
    }
    outln!("revoked {removed} grant(s) of {peer}");
    Ok(())
}

#[derive(Serialize)]
struct GrantJson {
    peer: String,
    client: String,
    read: bool,
    write: bool,
}

pub(crate) fn list(path: &Path, args: &crate::cli::PeersArgs) -> Result<()> {
    let vault = open(path, false)?;
    let grants: Vec<GrantJson> = vault
        .snapshot
        .access
        .iter()
        .map(|(p, c, r)| GrantJson {
            peer: String::from_utf8_lossy(p).into_owned(),
            client: String::from_utf8_lossy(c).into_owned(),
            read: r.read,
            write: r.write,
        })
        .collect();
    if args.json {
        outln!("{}", serde_json::to_string(&grants)?);
    } else {
        for g in &grants {
            let rights = Rights {
                read: g.read,
                write: g.write,
            };
            outln!("{}\t{}\t{}", g.peer, g.client, rights_text(rights));
        }
    }
    Ok(())
}

fn rights_text(r: Rights) -> &'static str {
    match (r.read, r.write) {
        (true, true) => "read,write",
        (true, false) => "read",
        (false, true) => "write",
        (false, false) => "none",
    }
}
