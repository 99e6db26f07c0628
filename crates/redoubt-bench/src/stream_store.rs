//! The complement stream between two vaults on files, requester and responder in separate
//! processes: throughput against a plain loopback TCP copy of the same bytes measured in the same
//! run (`stream-store`), and the resident memory of each side above its idle (`rss --store`).
//!
//! Both vaults are `redoubt_node::Vault`s over `redoubt_store::Store` files with the cheap test
//! KDF (the KDF is not what is measured). The parent builds the files (untimed) and runs the
//! children; each child prints one JSON line on stdout with its figures.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, ensure};
use redoubt_node::{
    NodeConfig, Quota, Vault,
    libp2p::Multiaddr,
    spawn,
    store::{KdfLimits, KdfParams, Password, Store},
};
use redoubt_protocol::Mode;
use redoubt_snapshot::{Identity, Snapshot};
use redoubt_vault::{AccessTable, Instance, Location, Rights, SecretValue};
use serde_json::{Value, json};

use crate::median;

const CLIENT: &[u8] = b"bench";
const MIB: usize = 1024 * 1024;
/// Seed of the serving vault's identity.
const SERVER_SEED: [u8; 32] = [8; 32];
/// Seed of the pulling vault's identity.
const READER_SEED: [u8; 32] = [9; 32];
const PASSWORD: &[u8] = b"bench";

fn peer(seed: &[u8; 32]) -> Result<String> {
    Ok(redoubt_node::keypair_from_seed(seed)?
        .public()
        .to_peer_id()
        .to_base58())
}

/// Byte `j` of value `i` (a pattern neither constant nor trivially compressible).
fn value(i: usize) -> Vec<u8> {
    (0..MIB).map(|j| (i ^ (j >> 3) ^ j) as u8).collect()
}

/// `store-build`: the serving vault of `mib` values at `path`, or the empty pulling vault.
pub(crate) fn build(path: &Path, mib: usize, reader: bool) -> Result<()> {
    if reader {
        build_reader(path)
    } else {
        build_server(path, mib)
    }
}

/// Builds the serving vault: `mib` values of 1 MiB, readable by the reader.
fn build_server(path: &Path, mib: usize) -> Result<()> {
    let mut snapshot = Snapshot::new(Identity::from_seed(SERVER_SEED));
    snapshot.access.grant(
        peer(&READER_SEED)?.as_bytes(),
        CLIENT,
        Rights {
            read: true,
            write: false,
        },
    )?;
    for i in 0..mib {
        let loc = Location::new("big", format!("r{i}"))?;
        snapshot
            .instance
            .write(CLIENT, &loc, SecretValue::new(value(i)))?;
    }
    Store::create_from_snapshot(
        path,
        &snapshot,
        &Password::new(PASSWORD.to_vec()),
        KdfParams::insecure_fast(),
    )?;
    Ok(())
}

/// Builds an empty pulling vault that lets the server write the bench client.
fn build_reader(path: &Path) -> Result<()> {
    let identity = Identity::from_seed(READER_SEED);
    let mut snapshot = Snapshot {
        instance: Instance::new(identity.node_id()),
        identity,
        access: AccessTable::default(),
    };
    snapshot.access.grant(
        peer(&SERVER_SEED)?.as_bytes(),
        CLIENT,
        Rights {
            read: false,
            write: true,
        },
    )?;
    Store::create_from_snapshot(
        path,
        &snapshot,
        &Password::new(PASSWORD.to_vec()),
        KdfParams::insecure_fast(),
    )?;
    Ok(())
}

fn open(path: &Path) -> Result<Store> {
    Ok(Store::open(
        path,
        &Password::new(PASSWORD.to_vec()),
        &KdfLimits::default(),
    )?)
}

/// A `Vm…` field of /proc/self/status, in MiB.
fn status_mib(field: &str) -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("{field} not in /proc/self/status"))?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("no value")?
        .parse()?;
    Ok(kib / 1024.0)
}

/// Resets the peak resident set (`VmHWM`) to the current one (Linux: `clear_refs` 5), so the
/// peak read later is the peak of what follows, not of the set-up before.
fn reset_peak() -> Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `store-serve`: opens the vault at `path`, serves it on loopback, prints its address, then
/// answers each line on stdin with one JSON line of its memory (idle, current and peak since the
/// last line), until stdin closes.
pub(crate) fn serve_child(path: &Path) -> Result<()> {
    let start_rss = status_mib("VmRSS")?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = open(path)?;
        let records = store.len();
        let keypair = redoubt_node::keypair_from_seed(&SERVER_SEED)?;
        let config = NodeConfig::new(keypair).listen_on("/ip4/127.0.0.1/tcp/0".parse()?);
        let (handle, _) = spawn(config, Vault::new(store)).await?;
        let opened_rss = status_mib("VmRSS")?;
        reset_peak()?;
        let mut idle = opened_rss;
        println!("{}", handle.listen_addrs()[0]);
        std::io::stdout().flush()?;
        let mut lines =
            tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tokio::io::stdin()));
        while lines.next_line().await?.is_some() {
            let now = status_mib("VmRSS")?;
            println!(
                "{}",
                json!({"side": "responder", "records": records,
                       "start_rss_mib": round(start_rss), "idle_rss_mib": round(idle),
                       "rss_mib": round(now), "peak_rss_mib": round(status_mib("VmHWM")?)})
            );
            std::io::stdout().flush()?;
            reset_peak()?;
            idle = status_mib("VmRSS")?;
        }
        handle.shutdown().await;
        Ok(())
    })
}

/// `store-pull`: opens the (empty) vault at `path`, pulls everything from `addr` into it (or,
/// with `verify_only`, verifies every record and drops it: the network path alone), and prints
/// the pull's seconds and its memory.
pub(crate) fn pull_child(path: &Path, addr: &str, verify_only: bool) -> Result<()> {
    let addr: Multiaddr = addr.parse()?;
    let start_rss = status_mib("VmRSS")?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = open(path)?;
        let keypair = redoubt_node::keypair_from_seed(&READER_SEED)?;
        let mut config = NodeConfig::new(keypair);
        config.quota = Quota {
            records_per_client: u64::MAX,
            bytes_per_client: u64::MAX,
            bytes_total: u64::MAX,
        };
        let (node, _) = spawn(config, Vault::new(store)).await?;
        let idle = status_mib("VmRSS")?;
        reset_peak()?;
        let start = Instant::now();
        let mode = Mode::Full {
            client: CLIENT.to_vec(),
        };
        let out = if verify_only {
            node.pull_into(&addr, mode, Box::new(|_: &[u8], _| {}))
                .await?
        } else {
            node.pull(&addr, mode).await?
        };
        let seconds = start.elapsed().as_secs_f64();
        let peak = status_mib("VmHWM")?;
        let held = node.read(|v| v.store().len() as usize);
        let vault = node.stop().await?;
        drop(vault);
        // What a fresh process finds in the file: every pulled record was committed.
        let reopened = open(path)?.len();
        let committed = if verify_only {
            out.records
        } else {
            reopened as u64
        };
        println!(
            "{}",
            json!({"side": "requester", "added": out.report.added, "held": held,
                   "received": out.records, "verify_only": verify_only,
                   "committed": committed, "seconds": seconds,
                   "start_rss_mib": round(start_rss), "idle_rss_mib": round(idle),
                   "peak_rss_mib": round(peak)})
        );
        Ok(())
    })
}

/// `tcp-source`: accepts connections on loopback (it prints the port) and writes `mib` MiB of
/// the same values to each, then closes it; ends when stdin closes.
pub(crate) fn tcp_source_child(mib: usize) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let values: Vec<Vec<u8>> = (0..mib.min(16)).map(value).collect();
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    for conn in listener.incoming() {
        let mut conn = conn?;
        conn.set_nodelay(true)?;
        for i in 0..mib {
            conn.write_all(&values[i % values.len()])?;
        }
    }
    Ok(())
}

/// Reads everything from the TCP source at `port`: seconds and bytes.
fn tcp_copy(port: u16) -> Result<(f64, usize)> {
    let start = Instant::now();
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.set_nodelay(true)?;
    let mut buf = vec![0u8; MIB];
    let mut total = 0;
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    Ok((start.elapsed().as_secs_f64(), total))
}

/// A child process of this benchmark, its stdin and stdout piped.
struct Kid {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Kid {
    fn spawn(args: &[&str]) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let out = BufReader::new(child.stdout.take().context("child stdout")?);
        Ok(Self { child, out })
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        ensure!(!line.is_empty(), "child ended without an answer");
        Ok(line.trim().to_string())
    }

    fn ask(&mut self) -> Result<Value> {
        let stdin = self.child.stdin.as_mut().context("child stdin")?;
        writeln!(stdin)?;
        stdin.flush()?;
        Ok(serde_json::from_str(&self.line()?)?)
    }

    fn finish(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let status = self.child.wait()?;
        ensure!(status.success(), "child failed: {status}");
        Ok(())
    }
}

/// Runs one `store-pull` child into a fresh vault at `path`: its JSON line.
fn pull_once(path: &Path, addr: &str, verify_only: bool) -> Result<Value> {
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    build_reader(path)?;
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["store-pull", "--addr", addr, "--path"])
        .arg(path)
        .args(verify_only.then_some("--verify-only"))
        .stderr(Stdio::inherit())
        .output()?;
    ensure!(out.status.success(), "store-pull failed: {}", out.status);
    let line = String::from_utf8(out.stdout)?;
    Ok(serde_json::from_str(line.trim())?)
}

fn work_dir(dir: Option<PathBuf>) -> Result<tempfile::TempDir> {
    Ok(match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir()?,
    })
}

fn f(v: &Value, key: &str) -> Result<f64> {
    v[key].as_f64().with_context(|| format!("no {key} in {v}"))
}

/// `stream-store`: `runs` pulls of `mib` MiB between two store-backed vaults in separate
/// processes, each beside a plain loopback TCP copy of the same number of bytes (alternated, so
/// both see the same load); medians.
pub(crate) fn stream(mib: usize, runs: usize, dir: Option<PathBuf>) -> Result<()> {
    let tmp = work_dir(dir)?;
    let server_path = tmp.path().join("serve.redb");
    build_server(&server_path, mib)?;
    let mut server = Kid::spawn(&["store-serve", "--path", &server_path.to_string_lossy()])?;
    let addr = server.line()?;
    let mut source = Kid::spawn(&["tcp-source", "--mib", &mib.to_string()])?;
    let port: u16 = source.line()?.parse()?;
    let bytes = (mib * MIB) as f64;
    let (mut tcp, mut pull, mut verify) = (Vec::new(), Vec::new(), Vec::new());
    let mbps = |v: &Value| Ok::<_, anyhow::Error>(bytes / f(v, "seconds")? / 1e6);
    for run in 0..runs {
        let (secs, got) = tcp_copy(port)?;
        ensure!(got == mib * MIB, "tcp copy moved {got} bytes");
        tcp.push(secs);
        let mut outs = Vec::new();
        for verify_only in [false, true] {
            let out = pull_once(&tmp.path().join("pull.redb"), &addr, verify_only)?;
            ensure!(
                out["committed"].as_u64() == Some(mib as u64),
                "incomplete pull: {out}"
            );
            outs.push(out);
        }
        pull.push(f(&outs[0], "seconds")?);
        verify.push(f(&outs[1], "seconds")?);
        eprintln!(
            "run {run}: tcp {:.0} MB/s, pull into the store {:.0} MB/s, pull verify-only {:.0} MB/s",
            bytes / secs / 1e6,
            mbps(&outs[0])?,
            mbps(&outs[1])?
        );
    }
    server.ask()?;
    server.finish()?;
    source.finish()?;
    let tcp_mbps = bytes / median(tcp) / 1e6;
    let pull_mbps = bytes / median(pull) / 1e6;
    let verify_mbps = bytes / median(verify) / 1e6;
    println!(
        "{}",
        json!({"scheme": "tcp-loopback-copy", "mib": mib, "runs": runs, "mb_per_s": tcp_mbps})
    );
    println!(
        "{}",
        json!({"scheme": "redoubt-stream-store", "mib": mib, "runs": runs,
               "mb_per_s": pull_mbps, "ratio": pull_mbps / tcp_mbps})
    );
    println!(
        "{}",
        json!({"scheme": "redoubt-stream-verify-only", "mib": mib, "runs": runs,
               "mb_per_s": verify_mbps, "ratio": verify_mbps / tcp_mbps})
    );
    eprintln!(
        "stream-store {mib} MiB, separate processes, from the store, verified and dropped (the \
         network path alone): {verify_mbps:.0} MB/s vs {tcp_mbps:.0} MB/s ({:.2}x)",
        verify_mbps / tcp_mbps
    );
    eprintln!(
        "stream-store {mib} MiB, separate processes, store to store: {pull_mbps:.0} MB/s vs \
         {tcp_mbps:.0} MB/s plain loopback TCP ({:.2}x)",
        pull_mbps / tcp_mbps
    );
    Ok(())
}

/// `rss --store`: one pull of `mib` MiB between two store-backed vaults in separate processes;
/// the resident memory of each side above its idle (vault open, node started).
pub(crate) fn rss(mib: usize, dir: Option<PathBuf>) -> Result<()> {
    let tmp = work_dir(dir)?;
    let server_path = tmp.path().join("serve.redb");
    build_server(&server_path, mib)?;
    let mut server = Kid::spawn(&["store-serve", "--path", &server_path.to_string_lossy()])?;
    let addr = server.line()?;
    let pulled = pull_once(&tmp.path().join("pull.redb"), &addr, false)?;
    let served = server.ask()?;
    server.finish()?;
    for (side, v) in [("requester", &pulled), ("responder", &served)] {
        let above = f(v, "peak_rss_mib")? - f(v, "idle_rss_mib")?;
        println!(
            "{}",
            json!({"scheme": format!("store-{side}"), "mib": mib, "figures": v,
                   "peak_above_idle_mib": round(above)})
        );
        eprintln!(
            "rss --store {mib} MiB, {side}: idle {} MiB, peak {} MiB, {:.1} MiB above idle",
            v["idle_rss_mib"], v["peak_rss_mib"], above
        );
    }
    Ok(())
}
