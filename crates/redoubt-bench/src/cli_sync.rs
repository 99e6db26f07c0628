//! `cli-sync`: an end-to-end `redoubt sync` that moves d = 1 record between two vaults of N
//! records through the CLI binary, and the same sync in this process split by step (KDF alone,
//! open, node start, sync, stop and close).
//!
//! The two vaults (`a-N.rdb`, `b-N.rdb`, in `--dir`, kept for later runs) hold the same N
//! records of 64 bytes spread over four clients (N / 4 each: the default quota refuses a
//! client past 10^6 records, and the CLI has no option to raise it) and grant each other read
//! and write on all four; the sync names no client, so it reconciles all N records. They use the
//! default Argon2id parameters, since the target is the KDF plus 100 ms. `redoubt serve` holds
//! B for the whole run (its open is not timed). Before each timed sync, one new record is put
//! into A (untimed), so each sync pushes exactly one record and pulls none.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, ensure};
use redoubt_node::{
    NodeConfig, Vault,
    libp2p::Multiaddr,
    spawn,
    store::{KdfLimits, KdfParams, Password, Store},
};
use redoubt_protocol::Mode;
use redoubt_snapshot::{Identity, SealKey, Snapshot};
use redoubt_vault::{Instance, Location, Rights, SecretValue, SyncConfig};
use serde_json::json;

use crate::{median, ms, record_path, value, vault_path};

/// The clients, N / 4 records each.
const CLIENTS: [&str; 4] = ["bench-0", "bench-1", "bench-2", "bench-3"];
const PASSWORD: &[u8] = b"bench";
const SEED_A: [u8; 32] = [10; 32];
const SEED_B: [u8; 32] = [11; 32];

/// The peer id (text) of the node whose identity seed is `seed`.
pub(crate) fn peer(seed: &[u8; 32]) -> Result<String> {
    Ok(redoubt_node::keypair_from_seed(seed)?
        .public()
        .to_peer_id()
        .to_base58())
}

pub(crate) fn password() -> Password {
    Password::new(PASSWORD.to_vec())
}

/// Builds A and B in `dir` unless both are there already.
fn build(dir: &Path, n: usize) -> Result<(PathBuf, PathBuf)> {
    let (a, b) = (
        dir.join(format!("a-{n}.rdb")),
        dir.join(format!("b-{n}.rdb")),
    );
    if a.exists() && b.exists() {
        eprintln!(
            "cli-sync n={n}: reusing {} and {}",
            a.display(),
            b.display()
        );
        return Ok((a, b));
    }
    let start = Instant::now();
    let all = Rights {
        read: true,
        write: true,
    };
    let mut sa = Snapshot::new(Identity::from_seed(SEED_A));
    let mut sb = Snapshot::new(Identity::from_seed(SEED_B));
    for client in CLIENTS {
        sa.access
            .grant(peer(&SEED_B)?.as_bytes(), client.as_bytes(), all)?;
        sb.access
            .grant(peer(&SEED_A)?.as_bytes(), client.as_bytes(), all)?;
    }
    for i in 0..n {
        let loc = Location::new(vault_path(i), record_path(i))?;
        let client = CLIENTS[i % CLIENTS.len()].as_bytes();
        sa.instance
            .write(client, &loc, SecretValue::new(value(i, 0)))?;
    }
    let mut copy = Instance::new(sb.identity.node_id());
    copy.sync_from(&sa.instance, &SyncConfig::full())?;
    sb.instance = copy;
    for (path, snapshot) in [(&a, &sa), (&b, &sb)] {
        let _ = std::fs::remove_file(path);
        Store::create_from_snapshot(path, snapshot, &password(), KdfParams::default())?;
    }
    eprintln!(
        "cli-sync n={n}: two vaults built in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok((a, b))
}

/// Puts one new record into the vault at `path` (untimed set-up of each run).
fn put_one(path: &Path, tag: &str) -> Result<()> {
    let mut store = Store::open(path, &password(), &KdfLimits::default())?;
    let loc = Location::new("new", tag)?;
    store.put(CLIENTS[0].as_bytes(), &loc, SecretValue::new(value(0, 9)))?;
    Ok(())
}

/// A running `redoubt serve` or `redoubt agent`, killed on drop.
pub(crate) struct Serve(pub(crate) Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `redoubt` binary at `bin` on `vault`, with its password and no logs.
pub(crate) fn cli(bin: &Path, vault: &Path) -> Command {
    let mut c = Command::new(bin);
    c.env("REDOUBT_VAULT", vault)
        .env(
            "REDOUBT_PASSWORD",
            String::from_utf8_lossy(PASSWORD).as_ref(),
        )
        .env_remove("REDOUBT_INSECURE_TEST_KDF")
        .env_remove("REDOUBT_CLIENT")
        .env("RUST_LOG", "off");
    c
}

fn serve(bin: &Path, vault: &Path) -> Result<(Serve, String)> {
    let mut command = cli(bin, vault);
    command
        .args(["serve", "--no-discovery"])
        .stderr(Stdio::null());
    listening(command)
}

/// Spawns `command` (`redoubt serve` or `agent`) and waits for the address it prints first.
pub(crate) fn listening(mut command: Command) -> Result<(Serve, String)> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("its stdout")?).read_line(&mut line)?;
    let child = Serve(child);
    let addr = line
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line: {line:?}"))?
        .trim()
        .to_string();
    Ok((child, addr))
}

/// The `redoubt` binary: `cli`, or the one beside this one.
pub(crate) fn binary(cli: Option<PathBuf>) -> Result<PathBuf> {
    let bin = match cli {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("redoubt"),
    };
    ensure!(
        bin.exists(),
        "{} not found: build it (cargo build --release -p redoubt-cli) or pass --cli",
        bin.display()
    );
    Ok(bin)
}

/// One sync in this process, as the CLI does it, timed by step.
struct Split {
    kdf: f64,
    open: f64,
    start: f64,
    sync: f64,
    close: f64,
}

fn split(path: &Path, addr: &Multiaddr) -> Result<Split> {
    let t = Instant::now();
    let _key = SealKey::generate(
        &redoubt_snapshot::Password::new(PASSWORD.to_vec()),
        KdfParams::default(),
    )?;
    let kdf = ms(t.elapsed());
    let t = Instant::now();
    let store = Store::open(path, &password(), &KdfLimits::default())?;
    let open = ms(t.elapsed());
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let t = Instant::now();
        let keypair = redoubt_node::keypair_from_seed(store.identity().expose_seed())?;
        let (handle, _) = spawn(NodeConfig::new(keypair), Vault::new(store)).await?;
        let start = ms(t.elapsed());
        let t = Instant::now();
        let mode = Mode::Import { clients: vec![] };
        let out = handle.sync(addr, mode, None).await?;
        let sync = ms(t.elapsed());
        ensure!(
            out.pushed.added == 1 && out.pulled.report.added == 0,
            "expected one record pushed: {out:?}"
        );
        let t = Instant::now();
        drop(handle.stop().await?);
        let close = ms(t.elapsed());
        Ok(Split {
            kdf,
            open,
            start,
            sync,
            close,
        })
    })
}

/// `cli-sync`: see the module docs.
pub(crate) fn run(n: usize, runs: usize, dir: &Path, bin: Option<PathBuf>) -> Result<()> {
    let bin = binary(bin)?;
    std::fs::create_dir_all(dir)?;
    let (a, b) = build(dir, n)?;
    let (_server, addr) = serve(&bin, &b)?;
    let multiaddr: Multiaddr = addr.parse()?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let (mut total, mut splits) = (Vec::new(), Vec::new());
    for run in 0..runs {
        put_one(&a, &format!("cli-{stamp}-{run}"))?;
        let t = Instant::now();
        let out = cli(&bin, &a)
            .args(["sync", &addr, "--json"])
            .stderr(Stdio::inherit())
            .output()?;
        let wall = ms(t.elapsed());
        ensure!(out.status.success(), "redoubt sync failed: {}", out.status);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        ensure!(
            report["pushed"]["added"] == 1,
            "expected one record pushed: {report}"
        );
        total.push(wall);
        put_one(&a, &format!("split-{stamp}-{run}"))?;
        let s = split(&a, &multiaddr)?;
        eprintln!(
            "run {run}: redoubt sync {wall:.0} ms; in process: KDF {:.0}, open {:.0}, node start \
             {:.1}, sync {:.1}, stop and close {:.1} ms",
            s.kdf, s.open, s.start, s.sync, s.close
        );
        splits.push(s);
    }
    let med = |f: fn(&Split) -> f64| median(splits.iter().map(f).collect());
    let (kdf, open, start, sync, close) = (
        med(|s| s.kdf),
        med(|s| s.open),
        med(|s| s.start),
        med(|s| s.sync),
        med(|s| s.close),
    );
    let wall = median(total);
    println!(
        "{}",
        json!({"scheme": "redoubt-cli-sync", "n": n, "d": 1, "runs": runs, "ms": wall,
               "kdf_ms": kdf, "beyond_kdf_ms": wall - kdf})
    );
    println!(
        "{}",
        json!({"scheme": "in-process-split", "n": n, "d": 1, "runs": runs, "kdf_ms": kdf,
               "open_ms": open, "open_beyond_kdf_ms": open - kdf, "node_start_ms": start,
               "sync_ms": sync, "stop_close_ms": close})
    );
    eprintln!(
        "cli-sync n={n} d=1: redoubt sync {wall:.0} ms = KDF {kdf:.0} ms + {:.0} ms (target: \
         KDF + 100 ms); in process: open beyond the KDF {:.0} ms, node start {start:.1} ms, sync \
         {sync:.1} ms, stop and close {close:.1} ms",
        wall - kdf,
        open - kdf
    );
    Ok(())
}
