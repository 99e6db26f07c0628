//! Remote sync over real libp2p nodes on loopback: bytes and time of one pull, the complement
//! stream's throughput against raw ChaCha20-Poly1305, and the requester's peak memory.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use anyhow::{Context, Result, ensure};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, aead::AeadInPlace};
use redoubt_node::{
    Handle, NodeConfig, Quota, Vault,
    libp2p::{Multiaddr, PeerId, identity::Keypair, multiaddr::Protocol},
    spawn,
    store::{KdfParams, Password, Store},
};
use redoubt_protocol::Mode;
use redoubt_vault::{AccessTable, Instance, Location, NodeId, Rights, SecretValue, SyncConfig};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::{median, ms, record_path, value, vault_path};

const CLIENT: &[u8] = b"bench";

fn mode() -> Mode {
    Mode::Full {
        client: CLIENT.to_vec(),
    }
}

/// A node over `instance` that lets `reader` read the bench client.
async fn serve(instance: Instance, reader: &Keypair) -> Result<Handle> {
    let mut access = AccessTable::default();
    let peer = reader.public().to_peer_id().to_base58();
    access.grant(
        peer.as_bytes(),
        CLIENT,
        Rights {
            read: true,
            write: false,
        },
    )?;
    let config =
        NodeConfig::new(Keypair::generate_ed25519()).listen_on("/ip4/127.0.0.1/tcp/0".parse()?);
    let (handle, _) = spawn(config, Vault::in_memory(instance, access)?).await?;
    Ok(handle)
}

/// A node that only dials, over a vault on a file (in a fresh temporary directory, returned
/// with it) holding `instance`'s records, letting `server` write the bench client into it (our
/// own grants decide what we merge) with no quota (the benchmarks pull up to 1 GiB). Every
/// merged batch is one durable commit of that store, as for a real device: an in-memory store
/// would hold each record twice in memory, in its pages and in the instance.
async fn requester(
    key: Keypair,
    instance: Instance,
    server: PeerId,
) -> Result<(Handle, tempfile::TempDir)> {
    let mut access = AccessTable::default();
    access.grant(
        server.to_base58().as_bytes(),
        CLIENT,
        Rights {
            read: false,
            write: true,
        },
    )?;
    let mut config = NodeConfig::new(key);
    config.quota = Quota {
        records_per_client: u64::MAX,
        bytes_per_client: u64::MAX,
        bytes_total: u64::MAX,
    };
    let dir = tempfile::tempdir()?;
    let mut snapshot = redoubt_snapshot::Snapshot::generate()?;
    snapshot.instance = instance;
    snapshot.access = access;
    let store = Store::create_from_snapshot(
        &dir.path().join("requester.redb"),
        &snapshot,
        &Password::new(b"bench".to_vec()),
        KdfParams::insecure_fast(),
    )?;
    Ok((spawn(config, Vault::new(store)).await?.0, dir))
}

/// A loopback TCP proxy in front of `target` that counts the bytes in each direction, so the
/// figures include Noise, Yamux and multistream-select overhead. Returns the address to dial
/// (with the target's peer id) and the two counters.
async fn counting_proxy(target: &Multiaddr) -> Result<(Multiaddr, Arc<AtomicU64>, Arc<AtomicU64>)> {
    let mut port = None;
    let mut peer = None;
    for p in target.iter() {
        match p {
            Protocol::Tcp(n) => port = Some(n),
            Protocol::P2p(id) => peer = Some(id),
            _ => {}
        }
    }
    let (port, peer) = (port.context("no tcp port")?, peer.context("no peer id")?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?.port();
    let up = Arc::new(AtomicU64::new(0));
    let down = Arc::new(AtomicU64::new(0));
    let (u, d) = (up.clone(), down.clone());
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(("127.0.0.1", port)).await else {
                continue;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (mut ir, mut iw) = inbound.into_split();
            let (mut or, mut ow) = outbound.into_split();
            let (u, d) = (u.clone(), d.clone());
            tokio::spawn(async move { counted_copy(&mut ir, &mut ow, &u).await });
            tokio::spawn(async move { counted_copy(&mut or, &mut iw, &d).await });
        }
    });
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{local}/p2p/{peer}").parse()?;
    Ok((addr, up, down))
}

/// Copies `from` to `to`, counting every byte as it passes (not at the end), so a pull's bytes
/// are all counted by the time its answer has arrived.
async fn counted_copy(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    count: &AtomicU64,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                count.fetch_add(n as u64, Ordering::Relaxed);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Source with `n` records; a stale copy that lacks the source's edits of `d` of them.
fn instances(n: usize) -> Result<(Instance, Vec<Location>)> {
    let mut source = Instance::new(NodeId::from_bytes([1; 16]));
    let locations: Vec<Location> = (0..n)
        .map(|i| Location::new(vault_path(i), record_path(i)))
        .collect::<Result<_, _>>()?;
    for (i, loc) in locations.iter().enumerate() {
        source.write(CLIENT, loc, SecretValue::new(value(i, 0)))?;
    }
    Ok((source, locations))
}

/// `pull`: for each n, each d, one pull of the d edited records into a stale replica.
pub(crate) fn pull(ns: &[usize], ds: &[usize], runs: usize) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    for &n in ns {
        let (base, locations) = instances(n)?;
        let mut stale = Instance::new(NodeId::from_bytes([2; 16]));
        stale.sync_from(&base, &SyncConfig::full())?;
        for &d in ds {
            ensure!(d <= n, "d must not exceed n");
            let mut source = base.clone();
            for (i, loc) in locations.iter().enumerate().take(d) {
                source.write(CLIENT, loc, SecretValue::new(value(i, 1)))?;
            }
            // Baseline in the same run: the same merge done locally, in memory.
            let mut local = Vec::new();
            for _ in 0..runs {
                let mut target = stale.clone();
                let start = Instant::now();
                target.sync_from(&source, &SyncConfig::full())?;
                local.push(ms(start.elapsed()));
            }
            let digest = source.state_digest();
            let (times, up, down) = rt.block_on(async {
                let key = Keypair::generate_ed25519();
                let server = serve(source, &key).await?;
                let (addr, up, down) = counting_proxy(&server.listen_addrs()[0]).await?;
                let mut times = Vec::new();
                for run in 0..runs {
                    let (node, _dir) =
                        requester(key.clone(), stale.clone(), server.peer_id()).await?;
                    let before = (up.load(Ordering::Relaxed), down.load(Ordering::Relaxed));
                    let start = Instant::now();
                    let out = node.pull(&addr, mode()).await?;
                    times.push(ms(start.elapsed()));
                    let after = (up.load(Ordering::Relaxed), down.load(Ordering::Relaxed));
                    ensure!(
                        out.report.updated == d as u64,
                        "expected {d} updates: {out:?}"
                    );
                    let held = node.read(|v| v.store().state_digest())?;
                    ensure!(held == digest, "diverged");
                    node.shutdown().await;
                    drop(node);
                    if run + 1 == runs {
                        return Ok::<_, anyhow::Error>((
                            times,
                            after.0 - before.0,
                            after.1 - before.1,
                        ));
                    }
                }
                Ok((times, 0, 0))
            })?;
            let (pull_ms, local_ms) = (median(times), median(local));
            println!(
                "{}",
                json!({"scheme": "redoubt-pull", "n": n, "d": d, "ms": pull_ms,
                       "bytes_up": up, "bytes_down": down, "bytes": up + down,
                       "local_sync_ms": local_ms})
            );
            eprintln!(
                "pull n={n} d={d}: {pull_ms:.1} ms over loopback vs {local_ms:.1} ms in memory \
                 ({:.1}x); {:.1} bytes per record on the wire",
                pull_ms / local_ms.max(0.001),
                (up + down) as f64 / n as f64
            );
        }
    }
    Ok(())
}

/// `stream`: pull `mib` MiB of 1 MiB values on one core, against ChaCha20-Poly1305 sealing the
/// same bytes in 1 MiB chunks on one core.
pub(crate) fn stream(mib: usize) -> Result<()> {
    let mut source = Instance::new(NodeId::from_bytes([1; 16]));
    for i in 0..mib {
        let loc = Location::new("big", format!("r{i}"))?;
        let mut v = vec![0u8; 1024 * 1024];
        v.iter_mut()
            .enumerate()
            .for_each(|(j, b)| *b = (i ^ j) as u8);
        source.write(CLIENT, &loc, SecretValue::new(v))?;
    }
    let bytes = (mib * 1024 * 1024) as f64;

    let cipher = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut buf = vec![0u8; 1024 * 1024];
    let mut raw = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        for i in 0..mib {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let tag = cipher
                .encrypt_in_place_detached(&nonce.into(), b"", &mut buf)
                .map_err(|_| anyhow::anyhow!("seal failed"))?;
            std::hint::black_box(tag);
        }
        raw.push(start.elapsed().as_secs_f64());
    }
    let raw_mbps = bytes / median(raw) / 1e6;

    // Both nodes on one thread: the whole pipeline (seal, Noise, Yamux, open, verify, merge)
    // on one core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut secs = Vec::new();
    rt.block_on(async {
        let key = Keypair::generate_ed25519();
        let server = serve(source, &key).await?;
        for _ in 0..3 {
            let fresh = Instance::new(NodeId::from_bytes([2; 16]));
            let (node, _dir) = requester(key.clone(), fresh, server.peer_id()).await?;
            let start = Instant::now();
            let out = node.pull(&server.listen_addrs()[0], mode()).await?;
            secs.push(start.elapsed().as_secs_f64());
            ensure!(out.report.added == mib as u64, "incomplete pull: {out:?}");
            node.shutdown().await;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let pull_mbps = bytes / median(secs) / 1e6;
    println!(
        "{}",
        json!({"scheme": "chacha20poly1305-seal", "mib": mib, "mb_per_s": raw_mbps})
    );
    println!(
        "{}",
        json!({"scheme": "redoubt-stream", "mib": mib, "mb_per_s": pull_mbps, "ratio": pull_mbps / raw_mbps})
    );
    eprintln!(
        "stream {mib} MiB on one core: {pull_mbps:.0} MB/s pulled vs {raw_mbps:.0} MB/s raw \
         ChaCha20-Poly1305 ({:.2}x)",
        pull_mbps / raw_mbps
    );
    Ok(())
}

/// Fixed seed of the requester in the memory benchmark, so the server can grant it.
const RSS_READER_SEED: [u8; 32] = [9; 32];

/// `rss-serve`: a server holding `mib` MiB that prints its address, then serves until killed.
pub(crate) fn rss_serve(mib: usize) -> Result<()> {
    let mut source = Instance::new(NodeId::from_bytes([1; 16]));
    for i in 0..mib {
        let loc = Location::new("big", format!("r{i}"))?;
        source.write(
            CLIENT,
            &loc,
            SecretValue::new(vec![(i % 251) as u8; 1024 * 1024]),
        )?;
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let reader = redoubt_node::keypair_from_seed(&RSS_READER_SEED)?;
        let server = serve(source, &reader).await?;
        println!("{}", server.listen_addrs()[0]);
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// `rss-pull`: pulls everything from `addr`, into the vault or into a verify-only sink, and
/// prints its own resident memory before and at peak.
pub(crate) fn rss_pull(addr: &str, into_vault: bool) -> Result<()> {
    let addr: Multiaddr = addr.parse()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let key = redoubt_node::keypair_from_seed(&RSS_READER_SEED)?;
        let fresh = Instance::new(NodeId::from_bytes([2; 16]));
        let (node, _dir) = requester(key, fresh, redoubt_node::peer_id_of(&addr)?).await?;
        let before = rss_kib("VmRSS")?;
        let start = Instant::now();
        let received = Arc::new(AtomicU64::new(0));
        let out = if into_vault {
            node.pull(&addr, mode()).await?
        } else {
            let counter = received.clone();
            let sink = Box::new(move |_: &[u8], r: redoubt_vault::Record| {
                counter.fetch_add(u64::from(r.size()), Ordering::Relaxed);
            });
            node.pull_into(&addr, mode(), sink).await?
        };
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{}",
            json!({"scheme": if into_vault { "pull-into-vault" } else { "pull-verify-only" },
                   "records": out.records, "value_bytes": received.load(Ordering::Relaxed),
                   "seconds": secs, "rss_before_mib": before / 1024,
                   "peak_rss_mib": rss_kib("VmHWM")? / 1024})
        );
        Ok(())
    })
}

/// `rss`: runs `rss-serve` and the two `rss-pull` modes as separate processes.
pub(crate) fn rss(mib: usize) -> Result<()> {
    use std::io::BufRead;
    let exe = std::env::current_exe()?;
    let mut server = std::process::Command::new(&exe)
        .args(["rss-serve", "--mib", &mib.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().context("server stdout")?).read_line(&mut line)?;
    let addr = line.trim().to_string();
    let mut result = Ok(());
    for mode in ["--verify-only", "--into-vault"] {
        let status = std::process::Command::new(&exe)
            .args(["rss-pull", "--addr", &addr, mode])
            .status()?;
        if !status.success() {
            result = Err(anyhow::anyhow!("rss-pull {mode} failed: {status}"));
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// A `Vm…` line of /proc/self/status, in KiB.
fn rss_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("{field} not in /proc/self/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("no value")?
        .parse()?)
}

/// `sans-io`: the same pull as `pull`, both sessions driven in memory by the protocol's
/// loopback driver (no transport), timing each side, to separate the protocol's CPU from the
/// network's.
pub(crate) fn sans_io(n: usize, d: usize) -> Result<()> {
    use redoubt_protocol::{
        Pull,
        loopback::{self, Meter, Serving},
    };
    use redoubt_vault::MergeReport;

    let (base, locations) = instances(n)?;
    let mut stale = Instance::new(NodeId::from_bytes([2; 16]));
    stale.sync_from(&base, &SyncConfig::full())?;
    let mut source = base;
    for (i, loc) in locations.iter().enumerate().take(d) {
        source.write(CLIENT, loc, SecretValue::new(value(i, 1)))?;
    }
    // Listing the shapes and encoding the first batch.
    let t = Instant::now();
    // Every shape (version 1's exchange), in a version 4 session: the edits carry lineage.
    let mut config = loopback::config(mode(), 4)?;
    config.sketch = false;
    let pull = Pull::new(config, &stale)?;
    let t_open = ms(t.elapsed());
    let readable = [CLIENT.to_vec()];
    let from = Serving {
        instance: &source,
        readable: &readable,
    };
    let mut meter = Meter::default();
    let mut report = MergeReport::default();
    let t = Instant::now();
    loopback::run(
        pull,
        &mut stale,
        &from,
        None,
        &mut meter,
        |into, records| loopback::merge_newest(into, records, &mut report),
    )?;
    let t_total = ms(t.elapsed());
    ensure!(stale.state_digest() == source.state_digest(), "diverged");
    println!(
        "{}",
        json!({"scheme": "sans-io", "n": n, "d": d, "open_ms": t_open,
               "requester_ms": ms(meter.requester), "responder_ms": ms(meter.responder),
               "session_ms": t_total, "frame_bytes": meter.bytes, "payload_bytes": meter.payload,
               "round_trips": meter.round_trips, "records": meter.records})
    );
    Ok(())
}
