//! Connection cuts: sync sessions between two live nodes through a loopback proxy that drops
//! the connection after a random number of bytes. After each cut both stores seal into
//! snapshots that open again with the same state, their kept sketches equal ones rebuilt from
//! the records, the next sync converges, and no write is lost.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Result, ensure};
use redoubt_node::{
    Handle, NodeConfig, Shared, Store,
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

fn store(n: u8) -> Shared {
    Shared::new(Store {
        instance: Instance::new(NodeId::from_bytes([n; 16])),
        access: AccessTable::default(),
    })
}

/// A loopback proxy to `port` that cuts each connection once `limit` bytes (both directions
/// together) have passed; `passed` counts them.
async fn proxy(port: u16, limit: Arc<AtomicU64>, passed: Arc<AtomicU64>) -> Result<u16> {
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

/// The store seals into a snapshot that opens again with the same state, and its kept sketch
/// equals one rebuilt from the records.
fn consistent(shared: &Shared, key: &redoubt_snapshot::SealKey) -> Result<()> {
    use redoubt_snapshot::{Password, Snapshot};
    let store = shared.lock();
    let mut snapshot = Snapshot::generate()?;
    snapshot.instance = store.instance.clone();
    snapshot.access = store.access.clone();
    let bytes = snapshot.seal(key)?;
    let (back, _) = Snapshot::open(&bytes, &Password::new(b"cuts".to_vec()))?;
    ensure!(
        back.instance.state_digest() == store.instance.state_digest(),
        "the saved store reopened with another state"
    );
    ensure!(
        store.instance.sketches_match_records(64),
        "kept sketch drifted"
    );
    Ok(())
}

async fn client(shared: &Shared, key: &Keypair) -> Result<Handle> {
    Ok(spawn(NodeConfig::new(key.clone()), shared.clone()).await?.0)
}

fn alice() -> Mode {
    Mode::Full {
        client: b"alice".to_vec(),
    }
}

pub(crate) fn run(quick: bool) -> Result<Tally> {
    let sessions = if quick { 50 } else { 1000 };
    tokio::runtime::Runtime::new()?.block_on(async move {
        let (server_store, client_store) = (store(1), store(2));
        let (server_key, client_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        for (s, peer) in [(&server_store, &client_key), (&client_store, &server_key)] {
            s.lock().access.grant(
                peer.public().to_peer_id().to_base58().as_bytes(),
                b"alice",
                RW,
            )?;
        }
        let config = NodeConfig::new(server_key.clone()).listen_on("/ip4/127.0.0.1/tcp/0".parse()?);
        let (server, _) = spawn(config, server_store.clone()).await?;
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
        let mut written: Vec<(u8, String, Vec<u8>)> = Vec::new();
        let write = |rng: &mut Rng, written: &mut Vec<(u8, String, Vec<u8>)>, side: u8| -> Result<()> {
            let key = format!("r{}", rng.below(200));
            let value = vec![rng.below(256) as u8; 1000 + rng.below(2000) as usize];
            let store = if side == 0 { &server_store } else { &client_store };
            store.lock().instance.write(b"alice", &Location::new("v", key.as_str())?, SecretValue::new(value.clone()))?;
            written.retain(|(_, k, _)| *k != key);
            written.push((side, key, value));
            Ok(())
        };
        // Measure an uncut session of the same workload (three writes on each side), to
        // spread the cuts over all of it.
        let workload = |rng: &mut Rng, written: &mut Vec<(u8, String, Vec<u8>)>| -> Result<()> {
            for side in [0, 1, 0, 1, 0, 1] {
                write(rng, written, side)?;
            }
            Ok(())
        };
        workload(&mut rng, &mut written)?;
        passed.store(0, Ordering::SeqCst);
        let c = client(&client_store, &client_key).await?;
        c.sync(&proxied, alice(), None).await?;
        c.shutdown().await;
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
                workload(&mut rng, &mut written)?;
                passed.store(0, Ordering::SeqCst);
                limit.store(rng.below(whole), Ordering::SeqCst);
                let c = client(&client_store, &client_key).await?;
                let cut = tokio::time::timeout(Duration::from_secs(20), c.sync(&proxied, alice(), None)).await;
                c.shutdown().await;
                if !matches!(cut, Ok(Ok(_))) {
                    cut_failed += 1;
                }
                consistent(&server_store, &seal)?;
                consistent(&client_store, &seal)?;
                // The next sync, uncut, converges and nothing written is lost.
                limit.store(u64::MAX, Ordering::SeqCst);
                let c = client(&client_store, &client_key).await?;
                let next = c.sync(&direct, alice(), None).await;
                c.shutdown().await;
                next?;
                let (a, b) = (
                    server_store.lock().instance.state_digest(),
                    client_store.lock().instance.state_digest(),
                );
                ensure!(a == b, "the sync after a cut did not converge");
                for (_, key, value) in &written {
                    let loc = Location::new("v", key.as_str())?;
                    let got = server_store.lock().instance.read(b"alice", &loc).map(|v| v.expose().to_vec());
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
