//! Connection cuts: sync sessions between two live nodes through a loopback proxy that drops
//! the connection after a random number of bytes. After each cut both vaults seal into
//! snapshots that open again with the same state, their kept sketches equal ones rebuilt from
//! the records, the next sync converges, and no write is lost. The client node is started
//! afresh for every session (so no connection outlives its session) over the same vault,
//! which [`Handle::stop`] gives back.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use redoubt_node::{
    Handle, NodeConfig, Vault,
    libp2p::{Multiaddr, identity::Keypair, multiaddr::Protocol},
    spawn,
};
use redoubt_protocol::Mode;
use redoubt_vault::{AccessTable, Instance, Location, NodeId, Rights, SecretValue};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{Tally, rng::Rng};

const RW: Rights = Rights {
    read: true,
    write: true,
};

fn vault(n: u8) -> Result<Vault> {
    Ok(Vault::in_memory(
        Instance::new(NodeId::from_bytes([n; 16])),
        AccessTable::default(),
    )?)
}

/// A loopback proxy to `port` that cuts each connection once `limit` bytes (both directions
/// together) have passed; `passed` counts them.
pub(crate) async fn proxy(port: u16, limit: Arc<AtomicU64>, passed: Arc<AtomicU64>) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(("127.0.0.1", port)).await else {
                continue;
            };
            let (limit, passed) = (limit.clone(), passed.clone());
            tokio::spawn(async move {
                let (mut ir, mut iw) = inbound.into_split();
                let (mut or, mut ow) = outbound.into_split();
                let (a, b) = (limit.clone(), passed.clone());
                let up = async move { pump(&mut ir, &mut ow, &a, &b).await };
                let down = async move { pump(&mut or, &mut iw, &limit, &passed).await };
                // Whichever side stops (a cut or a close), both halves drop.
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
            });
        }
    });
    Ok(local)
}

/// Copies until the shared byte budget runs out, then stops (dropping the connection).
async fn pump(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    limit: &AtomicU64,
    passed: &AtomicU64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let before = passed.fetch_add(n as u64, Ordering::SeqCst);
        let left = limit.load(Ordering::SeqCst).saturating_sub(before);
        let send = (n as u64).min(left) as usize;
        if to.write_all(&buf[..send]).await.is_err() || send < n {
            return;
        }
    }
}

/// The vault seals into a snapshot that opens again with the same current versions (format 1
/// carries no lineage), and its kept sketch equals one rebuilt from the records.
fn consistent(vault: &Vault, key: &redoubt_snapshot::SealKey) -> Result<()> {
    use redoubt_snapshot::{Password, Snapshot};
    let mut snapshot = Snapshot::generate()?;
    let instance = vault.store().load_instance()?;
    snapshot.instance = instance.clone();
    snapshot.access = vault.grants().clone();
    let bytes = snapshot.seal(key)?;
    let (back, _) = Snapshot::open(&bytes, &Password::new(b"cuts".to_vec()))?;
    ensure!(
        back.instance.state_digest() == instance.without_lineage().state_digest(),
        "the saved vault reopened with another state"
    );
    ensure!(
        vault.store().sketches_match_records()?,
        "kept sketch drifted"
    );
    Ok(())
}

/// Runs a client node over the vault in `held` for one sync with `addr` (given up after 20
/// s), and puts the vault back once the node stopped. The sync's result is returned; an error
/// of the node itself (a vault not given back) fails the whole call, and the vault stays lost.
async fn sync_once(
    held: &mut Option<Vault>,
    key: &Keypair,
    addr: &Multiaddr,
) -> Result<Result<(), String>> {
    let vault = held
        .take()
        .context("the client vault was lost in an earlier session")?;
    let (c, _) = spawn(NodeConfig::new(key.clone()), vault).await?;
    let synced = tokio::time::timeout(Duration::from_secs(20), c.sync(addr, alice(), None)).await;
    *held = Some(c.stop().await?);
    Ok(match synced {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    })
}

/// The written values, by side (0 the server, 1 the client) and record name.
type Written = Vec<(u8, String, Vec<u8>)>;

/// Writes a random value at a random record of `alice` on `side`: into the running server, or
/// into the client's vault while no client node runs.
fn write(
    rng: &mut Rng,
    written: &mut Written,
    side: u8,
    server: &Handle,
    client: &mut Option<Vault>,
) -> Result<()> {
    let client = client.as_mut().context("the client vault was lost")?;
    let key = format!("r{}", rng.below(200));
    let value = vec![rng.below(256) as u8; 1000 + rng.below(2000) as usize];
    let loc = Location::new("v", key.as_str())?;
    let secret = SecretValue::new(value.clone());
    if side == 0 {
        server.write(|v| v.put(b"alice", &loc, secret))?;
    } else {
        client.put(b"alice", &loc, secret)?;
    }
    written.retain(|(_, k, _)| *k != key);
    written.push((side, key, value));
    Ok(())
}

/// The workload of one session: three writes on each side.
fn workload(
    rng: &mut Rng,
    written: &mut Written,
    server: &Handle,
    client: &mut Option<Vault>,
) -> Result<()> {
    for side in [0, 1, 0, 1, 0, 1] {
        write(rng, written, side, server, client)?;
    }
    Ok(())
}

fn alice() -> Mode {
    Mode::Full {
        client: b"alice".to_vec(),
    }
}

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let sessions = if quick { 50 } else { 1000 };
    tokio::runtime::Runtime::new()?.block_on(async move {
        let (mut server_vault, mut client_vault) = (vault(1)?, vault(2)?);
        let (server_key, client_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        for (v, peer) in [(&mut server_vault, &client_key), (&mut client_vault, &server_key)] {
            v.set_rights(&peer.public().to_peer_id(), b"alice", RW)?;
        }
        let config = NodeConfig::new(server_key.clone()).listen_on("/ip4/127.0.0.1/tcp/0".parse()?);
        let (server, _) = spawn(config, server_vault).await?;
        let mut client_vault = Some(client_vault);
        let direct = server.listen_addrs()[0].clone();
        let port = direct
            .iter()
            .find_map(|p| match p {
                Protocol::Tcp(p) => Some(p),
                _ => None,
            })
            .unwrap_or_default();
        let (limit, passed) = (Arc::new(AtomicU64::new(u64::MAX)), Arc::new(AtomicU64::new(0)));
        let proxied: Multiaddr = format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            proxy(port, limit.clone(), passed.clone()).await?,
            server.peer_id()
        )
        .parse()?;
        let mut rng = Rng::new("connection-cuts");
        let mut written = Written::new();
        // Measure an uncut session of the same workload, to spread the cuts over all of it.
        workload(&mut rng, &mut written, &server, &mut client_vault)?;
        passed.store(0, Ordering::SeqCst);
        sync_once(&mut client_vault, &client_key, &proxied)
            .await?
            .map_err(anyhow::Error::msg)?;
        let whole = passed.load(Ordering::SeqCst).max(1);
        eprintln!("(connection-cuts: an uncut session moves about {whole} bytes)");
        let seal = redoubt_snapshot::SealKey::generate(
            &redoubt_snapshot::Password::new(b"cuts".to_vec()),
            redoubt_snapshot::KdfParams::insecure_fast(),
        )?;
        let mut tally = Tally::new();
        let mut cut_failed = 0;
        for _ in 0..sessions {
            let result = async {
                workload(&mut rng, &mut written, &server, &mut client_vault)?;
                passed.store(0, Ordering::SeqCst);
                limit.store(rng.below(whole), Ordering::SeqCst);
                if sync_once(&mut client_vault, &client_key, &proxied).await?.is_err() {
                    cut_failed += 1;
                }
                let held = client_vault.as_ref().context("the client vault was lost")?;
                server.read(|v| consistent(v, &seal))?;
                consistent(held, &seal)?;
                // The next sync, uncut, converges and nothing written is lost.
                limit.store(u64::MAX, Ordering::SeqCst);
                sync_once(&mut client_vault, &client_key, &direct)
                    .await?
                    .map_err(anyhow::Error::msg)?;
                let held = client_vault.as_ref().context("the client vault was lost")?;
                let (a, b) = (
                    server.read(|v| v.store().state_digest())?,
                    held.store().state_digest()?,
                );
                ensure!(a == b, "the sync after a cut did not converge");
                for (_, key, value) in &written {
                    let loc = Location::new("v", key.as_str())?;
                    let got = server.read(|v| v.get(b"alice", &loc))?.map(|v| v.expose().to_vec());
                    ensure!(got.as_ref() == Some(value), "write {key} lost");
                }
                Ok(())
            }
            .await;
            tally.record(result);
        }
        eprintln!("(connection-cuts: {cut_failed} of {sessions} cut sessions failed mid-way, the rest finished before their cut)");
        server.shutdown().await;
        Ok(tally)
    })
}
