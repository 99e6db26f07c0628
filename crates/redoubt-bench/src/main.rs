//! Redoubt's benchmarks. Each prints one JSON object per line on stdout and measures a baseline
//! in the same run, because the machines it runs on are noisy; ratios go to stderr.
//!
//! `cargo run --release -p redoubt-bench -- local-sync --n 100000 --d 1000`
//! `cargo run --release -p redoubt-bench -- snapshot --n 100000`
//! `cargo run --release -p redoubt-bench -- pull --n 10000 --n 100000 --d 0 --d 1000`
//! `cargo run --release -p redoubt-bench -- stream --mib 256`
//! `cargo run --release -p redoubt-bench -- rss --mib 1024 [--store]`
//! `cargo run --release -p redoubt-bench -- stream-store --mib 256`
//! `cargo run --release -p redoubt-bench -- reconcile --n 1000000 --d 100`
//! `cargo run --release -p redoubt-bench -- store --n 1000000`
//! `cargo run --release -p redoubt-bench -- cli-sync --n 1000000 --dir DIR`
//! `cargo run --release -p redoubt-bench -- shared-storage --n 10000 --n 1000000`
//! `cargo run --release -p redoubt-bench -- agents --agents 2,5 --writes 200 --idle-secs 60`

#![forbid(unsafe_code)]

mod agents;
mod cli_sync;
mod local_sync;
mod reconcile;
mod remote;
mod shared_storage;
mod snapshot;
mod store;
mod stream_store;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Redoubt benchmarks, each beside a baseline measured in the same run.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Local sync of N records, D of them edited at the source, against iota_stronghold 2.1's
    /// `Client::sync_with` on the same data.
    LocalSync {
        /// Records.
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        /// Records that differ.
        #[arg(long, default_value_t = 1_000)]
        d: usize,
        /// Skip Stronghold (it takes tens of seconds at n = 100 000).
        #[arg(long)]
        no_stronghold: bool,
    },
    /// Snapshot save and load of N records, against Stronghold's snapshot commit and load.
    Snapshot {
        /// Records.
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        /// Skip Stronghold.
        #[arg(long)]
        no_stronghold: bool,
    },
    /// One pull over libp2p on loopback for each N and D: time, and bytes on the wire counted
    /// by a TCP proxy; the same merge done in memory is the baseline.
    Pull {
        /// Records (repeatable) [default: 10000, 100000, 1000000].
        #[arg(long = "n")]
        ns: Vec<usize>,
        /// Records that differ (repeatable) [default: 0, 1, 100, 1000].
        #[arg(long = "d")]
        ds: Vec<usize>,
        /// Timed pulls per case (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Sync through shared storage (a folder): bytes and requests of a sync carrying D changes
    /// into a remote of N records, of one with nothing new, and catching up after C changes;
    /// the baseline is the whole vault file (what the source design uploads every time).
    SharedStorage {
        /// Records (repeatable) [default: 10000].
        #[arg(long = "n")]
        ns: Vec<usize>,
        /// Changes carried by one sync (repeatable) [default: 1, 100].
        #[arg(long = "d")]
        ds: Vec<usize>,
        /// Changes a device is behind by when it catches up.
        #[arg(long, default_value_t = 10_000)]
        catch_up: usize,
    },
    /// The pull's protocol work alone: both state machines in memory, timed by phase.
    SansIo {
        /// Records.
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
        /// Records that differ.
        #[arg(long, default_value_t = 0)]
        d: usize,
    },
    /// Reconciliation of two replicas of N records differing in D (half on each side): our
    /// sketch protocol, the all-shapes protocol and the negentropy crate on the same sets.
    Reconcile {
        /// Records on each side (repeatable) [default: 1000000].
        #[arg(long = "n")]
        ns: Vec<usize>,
        /// Records that differ (repeatable) [default: 100].
        #[arg(long = "d")]
        ds: Vec<usize>,
        /// Skip the all-shapes protocol (it sends 100 bytes per record).
        #[arg(long)]
        no_all_shapes: bool,
        /// Also run ours on this many independent pairs and report the spread.
        #[arg(long, default_value_t = 1)]
        trials: usize,
        /// Where the differences sit in time.
        #[arg(long, value_enum, default_value = "spread")]
        layout: reconcile::Layout,
    },
    /// Complement stream throughput on one core against raw ChaCha20-Poly1305 on one core.
    Stream {
        /// MiB to stream, in 1 MiB values.
        #[arg(long, default_value_t = 256)]
        mib: usize,
    },
    /// Complement stream throughput between two vaults on files (redb stores), requester and
    /// responder in separate processes, against a plain loopback TCP copy of the same bytes.
    StreamStore {
        /// MiB to stream, in 1 MiB values.
        #[arg(long, default_value_t = 256)]
        mib: usize,
        /// Pulls (each beside one TCP copy; medians reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Where the vault files are made (a temporary directory inside, removed after)
        /// [default: the system temp dir].
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Peak resident memory of a requester pulling MIB MiB, in separate processes; with
    /// `--store`, both sides on vault files and each side's peak above its idle.
    Rss {
        /// MiB of complement.
        #[arg(long, default_value_t = 1024)]
        mib: usize,
        /// Serve from and pull into vaults on files (redb stores).
        #[arg(long)]
        store: bool,
        /// With `--store`: where the vault files are made [default: the system temp dir].
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// (Internal to `stream-store` and `rss --store`.) Serves the vault at PATH.
    #[command(hide = true)]
    StoreServe {
        #[arg(long)]
        path: std::path::PathBuf,
    },
    /// (Internal to `stream-store` and `rss --store`.) Pulls from ADDR into the vault at PATH.
    #[command(hide = true)]
    StorePull {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        path: std::path::PathBuf,
        #[arg(long)]
        verify_only: bool,
    },
    /// (For profiling `stream-store` by hand.) Builds the serving vault (MIB values of 1 MiB)
    /// at PATH, or with `--reader` the empty pulling vault.
    #[command(hide = true)]
    StoreBuild {
        #[arg(long)]
        path: std::path::PathBuf,
        #[arg(long, default_value_t = 0)]
        mib: usize,
        #[arg(long)]
        reader: bool,
    },
    /// (Internal to `stream-store`.) Writes MIB MiB to each TCP connection.
    #[command(hide = true)]
    TcpSource {
        #[arg(long)]
        mib: usize,
    },
    /// Bytes written and time of one put and of merges bringing 1 and 100 records, time to open
    /// (and the KDF alone) and resident memory after opening, for a vault of N records: the
    /// redb store against today's snapshot file rewritten whole per change.
    Store {
        /// Records (64-byte values, one client).
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        /// Which schemes to measure.
        #[arg(long, value_enum, default_value = "both")]
        scheme: store::Schemes,
        /// Timed runs per figure (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Where the vaults are made (a temporary directory inside, removed after): a real
        /// disk, since bytes written are block writes [default: the system temp dir].
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// An end-to-end `redoubt sync` (the CLI binary) of d = 1 between two vaults of N records,
    /// and the same sync in this process split by step.
    CliSync {
        /// Records in each vault (64-byte values, four clients).
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
        /// Timed syncs (medians reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Where the two vaults are kept between runs (`a-N.rdb`, `b-N.rdb`).
        #[arg(long)]
        dir: std::path::PathBuf,
        /// The `redoubt` binary [default: beside this one].
        #[arg(long)]
        cli: Option<std::path::PathBuf>,
    },
    /// `redoubt agent` processes on loopback syncing by themselves: latency from a put on one
    /// to the value readable on the others, idle CPU and wakeups, and sessions for a burst;
    /// a socket round trip and one explicit sync session are the baselines.
    Agents {
        /// Agent counts to run, comma-separated (each a full mesh).
        #[arg(long, value_delimiter = ',', default_value = "2,5")]
        agents: Vec<usize>,
        /// Writes timed for latency.
        #[arg(long, default_value_t = 200)]
        writes: usize,
        /// Seconds of idle measured.
        #[arg(long, default_value_t = 60)]
        idle_secs: u64,
        /// Puts in the burst.
        #[arg(long, default_value_t = 1000)]
        burst: usize,
        /// The `redoubt` binary [default: beside this one].
        #[arg(long)]
        cli: Option<std::path::PathBuf>,
    },
    /// (Internal to `store`.) Opens one vault in a fresh process and prints its figures.
    #[command(hide = true)]
    StoreOpen {
        #[arg(long, value_enum)]
        scheme: store::Scheme,
        #[arg(long)]
        path: std::path::PathBuf,
        #[arg(long)]
        n: usize,
    },
    /// (Internal to `rss`.) A server holding MIB MiB; prints its address.
    #[command(hide = true)]
    RssServe {
        #[arg(long)]
        mib: usize,
    },
    /// (Internal to `rss`.) A requester that reports its peak memory.
    #[command(hide = true)]
    RssPull {
        #[arg(long)]
        addr: String,
        #[arg(long, conflicts_with = "into_vault")]
        verify_only: bool,
        #[arg(long)]
        into_vault: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Bench::LocalSync {
            n,
            d,
            no_stronghold,
        } => local_sync::run(n, d, !no_stronghold),
        Bench::Snapshot { n, no_stronghold } => snapshot::run(n, !no_stronghold),
        Bench::Pull { ns, ds, runs } => {
            let ns = if ns.is_empty() {
                vec![10_000, 100_000, 1_000_000]
            } else {
                ns
            };
            let ds = if ds.is_empty() {
                vec![0, 1, 100, 1000]
            } else {
                ds
            };
            remote::pull(&ns, &ds, runs.max(1))
        }
        Bench::Reconcile {
            ns,
            ds,
            no_all_shapes,
            trials,
            layout,
        } => {
            let ns = if ns.is_empty() { vec![1_000_000] } else { ns };
            let ds = if ds.is_empty() { vec![100] } else { ds };
            reconcile::run(&ns, &ds, !no_all_shapes, trials, layout)
        }
        Bench::Stream { mib } => remote::stream(mib),
        Bench::SansIo { n, d } => remote::sans_io(n, d),
        Bench::SharedStorage { ns, ds, catch_up } => {
            let ns = if ns.is_empty() { vec![10_000] } else { ns };
            let ds = if ds.is_empty() { vec![1, 100] } else { ds };
            shared_storage::run(&ns, &ds, catch_up)
        }
        Bench::Rss { mib, store, dir } => {
            if store {
                stream_store::rss(mib, dir)
            } else {
                remote::rss(mib)
            }
        }
        Bench::Agents {
            agents,
            writes,
            idle_secs,
            burst,
            cli,
        } => agents::run(
            &agents,
            &agents::Options {
                writes,
                idle_secs,
                burst,
                cli,
            },
        ),
        Bench::CliSync { n, runs, dir, cli } => cli_sync::run(n, runs.max(1), &dir, cli),
        Bench::StreamStore { mib, runs, dir } => stream_store::stream(mib, runs.max(1), dir),
        Bench::StoreServe { path } => stream_store::serve_child(&path),
        Bench::StorePull {
            addr,
            path,
            verify_only,
        } => stream_store::pull_child(&path, &addr, verify_only),
        Bench::StoreBuild { path, mib, reader } => stream_store::build(&path, mib, reader),
        Bench::TcpSource { mib } => stream_store::tcp_source_child(mib),
        Bench::RssServe { mib } => remote::rss_serve(mib),
        Bench::Store {
            n,
            scheme,
            runs,
            dir,
        } => store::run(n, scheme, runs, dir),
        Bench::StoreOpen { scheme, path, n } => store::open_child(scheme, &path, n),
        Bench::RssPull {
            addr, into_vault, ..
        } => remote::rss_pull(&addr, into_vault),
    }
}

/// A deterministic 64-byte value for record `i`, version `version`.
pub(crate) fn value(i: usize, version: u8) -> Vec<u8> {
    let mut out = [0u8; 64];
    let mut xof = blake3::Hasher::new();
    xof.update(&(i as u64).to_le_bytes());
    xof.update(&[version]);
    xof.finalize_xof().fill(&mut out);
    out.to_vec()
}

/// Vault path of record `i` (records spread over 10 vaults).
pub(crate) fn vault_path(i: usize) -> String {
    format!("vault-{}", i % 10)
}

/// Record path of record `i`.
pub(crate) fn record_path(i: usize) -> String {
    format!("record-{i}")
}

/// Writes records `range` (at `version`) into a Stronghold client, as the Redoubt side does.
pub(crate) fn stronghold_write(
    client: &iota_stronghold::Client,
    range: std::ops::Range<usize>,
    version: u8,
) -> Result<()> {
    for i in range {
        let loc = iota_stronghold::Location::generic(vault_path(i), record_path(i));
        client
            .vault(vault_path(i))
            .write_secret(loc, zeroize::Zeroizing::new(value(i, version)))?;
    }
    Ok(())
}

/// Milliseconds in a duration, as a float.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of some samples.
pub(crate) fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
