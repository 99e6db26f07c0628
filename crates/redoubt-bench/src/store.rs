//! `store`: what one change costs on disk, and what opening and holding a vault costs, in the
//! redb-backed `redoubt_store::Store` (scheme `store`) against today's format, one sealed
//! snapshot file rewritten whole per change (scheme `snapshot`), in the same run.
//!
//! Bytes written are the process's `write_bytes` from `/proc/self/io` (what it sent to the
//! block layer: counted per 4 KiB page when the page is dirtied, so fsync'd data and metadata
//! pages count, a page rewritten before writeback counts once), taken around the one call.
//! `wchar` (bytes handed to `write`-like calls) comes after, for reference. On tmpfs
//! `write_bytes` stays 0: put `--dir` on a real disk.
//!
//! Opening runs in a fresh child process (`store-open`), once per run, so that its time and its
//! resident memory (`VmRSS` of `/proc/self/status` right after the open) are those of a node that
//! just opened the vault, not of the process that built it. The file is in the page cache then.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, ensure};
use redoubt_snapshot::{KdfParams, SealKey, Snapshot, VaultFile};
use redoubt_store::{KdfLimits, Store};
use redoubt_vault::{
    ClientId, Instance, Location, MergeBounds, MergePolicy, MergeReport, NodeId, Record,
    SecretValue,
};
use serde_json::{Value, json};

use crate::{median, ms, record_path, value, vault_path};

/// The one client every record lives in.
const CLIENT: &[u8] = b"bench";
/// The password of every vault the bench makes.
const PASSWORD: &[u8] = b"benchmark password";
/// Sync sizes measured: a merge bringing this many new records.
const MERGE_SIZES: [usize; 2] = [1, 100];

/// Which schemes to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Schemes {
    /// The redb-backed store.
    Store,
    /// Today's snapshot file, rewritten whole per change.
    Snapshot,
    /// Both, store first.
    Both,
}

/// One vault format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scheme {
    /// The redb-backed store.
    Store,
    /// Today's snapshot file.
    Snapshot,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Snapshot => "snapshot",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Self::Store => "vault.redb",
            Self::Snapshot => "vault.rdb",
        }
    }
}

/// `store --n N`: populates a vault of `n` records in each scheme under a temporary directory in
/// `dir`, measures put, merges, open, KDF and resident memory, prints one line per figure, and
/// removes the vaults.
pub(crate) fn run(n: usize, schemes: Schemes, runs: usize, dir: Option<PathBuf>) -> Result<()> {
    ensure!(n > 0, "--n must be at least 1");
    let runs = runs.max(1);
    let dir = match dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let schemes: &[Scheme] = match schemes {
        Schemes::Store => &[Scheme::Store],
        Schemes::Snapshot => &[Scheme::Snapshot],
        Schemes::Both => &[Scheme::Store, Scheme::Snapshot],
    };

    let start = Instant::now();
    let mut snapshot = Snapshot::generate()?;
    for i in 0..n {
        let loc = Location::new(vault_path(i), record_path(i))?;
        snapshot
            .instance
            .write(CLIENT, &loc, SecretValue::new(value(i, 0)))?;
    }
    eprintln!(
        "store n={n}: {n} records built in memory in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    // The store is built from the snapshot as it is; the snapshot scheme then changes it.
    if schemes.contains(&Scheme::Store) {
        let start = Instant::now();
        changes_store(
            &dir.path().join(Scheme::Store.file_name()),
            &snapshot,
            n,
            runs,
        )?;
        eprintln!(
            "store n={n}: scheme store populated and changed in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    if schemes.contains(&Scheme::Snapshot) {
        let start = Instant::now();
        changes_snapshot(
            &dir.path().join(Scheme::Snapshot.file_name()),
            snapshot,
            n,
            runs,
        )?;
        eprintln!(
            "store n={n}: scheme snapshot populated and changed in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }

    for &scheme in schemes {
        let path = dir.path().join(scheme.file_name());
        opens(scheme, &path, n, runs)?;
    }
    Ok(())
}

/// Builds the store from `snapshot` (one transaction), then measures put and merges.
fn changes_store(path: &Path, snapshot: &Snapshot, n: usize, runs: usize) -> Result<()> {
    let password = redoubt_store::Password::new(PASSWORD.to_vec());
    let mut store = Store::create_from_snapshot(path, snapshot, &password, KdfParams::default())?;
    let file_bytes = std::fs::metadata(path)?.len();

    let mut samples = Samples::default();
    for run in 0..runs {
        let (loc, new) = put_target(n, run)?;
        samples.time(|| store.put(CLIENT, &loc, new).map(drop))?;
    }
    samples.emit("store", n, "put", &[("file_bytes", json!(file_bytes))]);

    for d in MERGE_SIZES {
        let mut samples = Samples::default();
        for run in 0..runs {
            let batch = incoming(d, run)?;
            let report = samples.time(|| {
                store.merge_records(CLIENT, batch, MergePolicy::Newest, &MergeBounds::now())
            })?;
            check_merge(&report, d)?;
        }
        samples.emit("store", n, &format!("merge_d{d}"), &[]);
    }
    Ok(())
}

/// Writes `snapshot` as a snapshot file (untimed), then measures put and merges, each a change
/// to the in-memory instance followed by a save of the whole file, as the CLI does today.
fn changes_snapshot(path: &Path, mut snapshot: Snapshot, n: usize, runs: usize) -> Result<()> {
    let password = redoubt_snapshot::Password::new(PASSWORD.to_vec());
    let file = VaultFile::lock_exclusive(path)?;
    let key = file.create(&snapshot, &password, KdfParams::default())?;
    let file_bytes = std::fs::metadata(path)?.len();

    let mut samples = Samples::default();
    for run in 0..runs {
        let (loc, new) = put_target(n, run)?;
        samples.time(|| -> Result<()> {
            snapshot.instance.write(CLIENT, &loc, new)?;
            Ok(file.save(&snapshot, &key)?)
        })?;
    }
    samples.emit("snapshot", n, "put", &[("file_bytes", json!(file_bytes))]);

    for d in MERGE_SIZES {
        let mut samples = Samples::default();
        for run in 0..runs {
            let batch = incoming(d, run)?;
            let report = samples.time(|| -> Result<MergeReport> {
                let bounds = MergeBounds::now();
                let mut report = MergeReport::default();
                for record in batch {
                    let one = snapshot.instance.merge_record_within(
                        CLIENT,
                        record,
                        MergePolicy::Newest,
                        &bounds,
                    )?;
                    report.add(&one);
                }
                file.save(&snapshot, &key)?;
                Ok(report)
            })?;
            check_merge(&report, d)?;
        }
        samples.emit("snapshot", n, &format!("merge_d{d}"), &[]);
    }
    Ok(())
}

/// The location and new value of the put of run `run`: an existing record, spread over the
/// vault.
fn put_target(n: usize, run: usize) -> Result<(Location, SecretValue)> {
    let i = (run * 7919 + n / 2) % n;
    let loc = Location::new(vault_path(i), record_path(i))?;
    let version = u8::try_from(run % 250 + 1)?;
    Ok((loc, SecretValue::new(value(i, version))))
}

/// `d` new records written by another node, as a sync from it brings them (built untimed).
fn incoming(d: usize, run: usize) -> Result<Vec<Record>> {
    let mut other = Instance::new(NodeId::from_bytes([2; 16]));
    for k in 0..d {
        let loc = Location::new("incoming", format!("d{d}-run{run}-{k}"))?;
        other.write(CLIENT, &loc, SecretValue::new(value(k, 7)))?;
    }
    Ok(other
        .records(&ClientId::from_path(CLIENT))
        .cloned()
        .collect())
}

fn check_merge(report: &MergeReport, d: usize) -> Result<()> {
    ensure!(
        report.added == d as u64,
        "a merge of {d} new records added {}",
        report.added
    );
    Ok(())
}

/// Runs `store-open` `runs` times and prints the KDF, open and resident-memory figures.
fn opens(scheme: Scheme, path: &Path, n: usize, runs: usize) -> Result<()> {
    let exe = std::env::current_exe()?;
    let mut lines = Vec::new();
    for _ in 0..runs {
        let out = Command::new(&exe)
            .args([
                "store-open",
                "--scheme",
                scheme.name(),
                "--n",
                &n.to_string(),
            ])
            .arg("--path")
            .arg(path)
            .output()?;
        ensure!(
            out.status.success(),
            "store-open {} failed: {}\n{}",
            scheme.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let line: Value = serde_json::from_slice(&out.stdout).context("store-open output")?;
        lines.push(line);
    }
    let field = |name: &str| -> Result<Vec<f64>> {
        lines
            .iter()
            .map(|l| l[name].as_f64().with_context(|| format!("no {name}")))
            .collect()
    };
    let (kdf, open, rss) = (
        median(field("kdf_ms")?),
        median(field("open_ms")?),
        median(field("rss_mib")?),
    );
    // Per run, then the median: the KDF's own noise (tens of ms) is shared within a process.
    let beyond: Vec<f64> = field("open_ms")?
        .iter()
        .zip(field("kdf_ms")?)
        .map(|(open, kdf)| open - kdf)
        .collect();
    let name = scheme.name();
    let runs_json = json!(runs);
    emit(
        name,
        n,
        "kdf",
        None,
        Some(kdf),
        None,
        &[("runs", runs_json.clone())],
    );
    emit(
        name,
        n,
        "open",
        Some(median(field("bytes_written")?) as u64),
        Some(open),
        None,
        &[
            ("beyond_kdf_ms", json!(round(median(beyond), 1))),
            ("runs", runs_json.clone()),
        ],
    );
    emit(
        name,
        n,
        "rss",
        None,
        None,
        Some(rss),
        &[
            ("idle_rss_mib", json!(median(field("idle_rss_mib")?))),
            ("peak_rss_mib", json!(median(field("peak_rss_mib")?))),
            ("runs", runs_json),
        ],
    );
    Ok(())
}

/// `store-open` (internal): in this fresh process, times the KDF alone (the default parameters,
/// as both schemes use), then opens the vault at `path` (its KDF included) and prints one JSON
/// line with both times, the open's bytes written and the resident memory after it.
pub(crate) fn open_child(scheme: Scheme, path: &Path, n: usize) -> Result<()> {
    let start = Instant::now();
    let _key = SealKey::generate(
        &redoubt_snapshot::Password::new(PASSWORD.to_vec()),
        KdfParams::default(),
    )?;
    let kdf = ms(start.elapsed());
    let idle = status_mib("VmRSS")?;

    let before = io_counters()?;
    let start = Instant::now();
    // Each arm reports while it still holds what it opened.
    match scheme {
        Scheme::Store => {
            let password = redoubt_store::Password::new(PASSWORD.to_vec());
            let store = Store::open(path, &password, &KdfLimits::default())?;
            opened(n, kdf, idle, &before, start, store.len() as usize)
        }
        Scheme::Snapshot => {
            let password = redoubt_snapshot::Password::new(PASSWORD.to_vec());
            let (snapshot, _) = VaultFile::lock_shared(path)?.load(&password)?;
            opened(n, kdf, idle, &before, start, snapshot.instance.len())
        }
    }
}

/// Prints a child's figures, right after its open (which began at `start`) returned.
fn opened(
    n: usize,
    kdf: f64,
    idle: f64,
    before: &Io,
    start: Instant,
    records: usize,
) -> Result<()> {
    let open = ms(start.elapsed());
    let after = io_counters()?;
    ensure!(records >= n, "opened {records} records, expected {n}");
    let rss = status_mib("VmRSS")?;
    let peak = status_mib("VmHWM")?;
    println!(
        "{}",
        json!({"kdf_ms": kdf, "open_ms": open, "records": records,
               "bytes_written": after.write_bytes - before.write_bytes,
               "idle_rss_mib": idle, "rss_mib": rss, "peak_rss_mib": peak})
    );
    Ok(())
}

/// Timed samples of one operation: milliseconds and the bytes it wrote.
#[derive(Default)]
struct Samples {
    ms: Vec<f64>,
    write_bytes: Vec<f64>,
    wchar: Vec<f64>,
}

impl Samples {
    /// Runs `op` once, recording its time and the bytes it wrote.
    fn time<T, E>(&mut self, op: impl FnOnce() -> Result<T, E>) -> Result<T>
    where
        anyhow::Error: From<E>,
    {
        let before = io_counters()?;
        let start = Instant::now();
        let out = op()?;
        let elapsed = ms(start.elapsed());
        let after = io_counters()?;
        self.ms.push(elapsed);
        self.write_bytes
            .push((after.write_bytes - before.write_bytes) as f64);
        self.wchar.push((after.wchar - before.wchar) as f64);
        Ok(out)
    }

    /// Prints the medians.
    fn emit(self, scheme: &str, n: usize, op: &str, extra: &[(&str, Value)]) {
        let runs = self.ms.len();
        let mut more = vec![
            ("wchar", json!(median(self.wchar) as u64)),
            ("runs", json!(runs)),
        ];
        more.extend(extra.iter().cloned());
        emit(
            scheme,
            n,
            op,
            Some(median(self.write_bytes) as u64),
            Some(median(self.ms)),
            None,
            &more,
        );
    }
}

/// Prints one figure: the keys `scheme, n, op, bytes_written, ms, rss_mib` in this order (null
/// where the figure does not measure it), then `extra`.
fn emit(
    scheme: &str,
    n: usize,
    op: &str,
    bytes_written: Option<u64>,
    ms: Option<f64>,
    rss_mib: Option<f64>,
    extra: &[(&str, Value)],
) {
    let fields = [
        ("scheme", json!(scheme)),
        ("n", json!(n)),
        ("op", json!(op)),
        ("bytes_written", json!(bytes_written)),
        ("ms", json!(ms.map(|ms| round(ms, 3)))),
        ("rss_mib", json!(rss_mib.map(|mib| round(mib, 1)))),
    ];
    let body: Vec<String> = fields
        .iter()
        .chain(extra)
        .map(|(key, value)| format!("{}:{value}", json!(key)))
        .collect();
    println!("{{{}}}", body.join(","));
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// The process's `/proc/self/io` write counters.
struct Io {
    wchar: u64,
    write_bytes: u64,
}

fn io_counters() -> Result<Io> {
    let text = std::fs::read_to_string("/proc/self/io").context("reading /proc/self/io")?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .with_context(|| format!("{name} not in /proc/self/io"))?
            .trim()
            .parse()
            .with_context(|| format!("{name} in /proc/self/io"))
    };
    Ok(Io {
        wchar: field("wchar:")?,
        write_bytes: field("write_bytes:")?,
    })
}

/// A `Vm…` line of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("{field} not in /proc/self/status"))?
        .split_whitespace()
        .next()
        .context("no value")?
        .parse()?;
    Ok(round(kib as f64 / 1024.0, 1))
}
